"""Export and import a database as JSON Lines, streaming, in constant memory.

One JSON object per line, each with a ``type``:

- ``{"type": "export", "format": 2, ...}``: the first line, saying what follows.
- ``{"type": "user", "user_id", "created_at"}``
- ``{"type": "session", "session_id", "user_id", "created_at", "updated_at", "metadata"}``:
  ``user_id`` is ``null`` for a session openai-agents wrote and no user owns.
- ``{"type": "item", "session_id", "item"}``: the session's items follow it, in order.
- ``{"type": "end", "users", "sessions", "items"}``: the last line, with the counts.

Users come in ``user_id`` order, each followed by their sessions in creation
order; unowned sessions come after every user. An import re-creates the same
listing order. Timestamps are ISO 8601 UTC. The whole export reads one
snapshot of the database, so it is a consistent copy even while other
connections write.

Import refuses a file without its ``end`` record (a copy cut short) unless
told the file predates it (``require_end=False``: exports of sessions_dal 0.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from . import __version__
from ._validate import MAX_JSON_DEPTH, MAX_JSON_LENGTH, check_id, encode_json, json_depth
from .connection import Connection, write_call
from .errors import CorruptItemError, SessionExistsError
from .repository import SessionRepository, _metadata
from .session import parse_timestamp

__all__ = ["FORMAT", "TransferCounts", "export_jsonl", "import_jsonl"]

FORMAT = 2
"""The export format this sessions_dal writes (and the newest it reads)."""

_PAGE = 500
_USERS = "SELECT user_id, created_at FROM agent_users WHERE user_id > ? ORDER BY user_id LIMIT ?"
_ONE_USER = "SELECT user_id, created_at FROM agent_users WHERE user_id = ?"
_SESSIONS = (
    "SELECT session_id, user_id, created_at, updated_at, metadata, seq FROM agent_user_sessions "
    "WHERE user_id = ? AND (created_at, seq) > (?, ?) ORDER BY created_at, seq LIMIT ?"
)
# In rowid order, so that an import re-creates the order unowned sessions
# list in (created_at, then rowid).
_UNOWNED = (
    "SELECT rowid, session_id, created_at, updated_at FROM agent_sessions a WHERE rowid > ? "
    "AND NOT EXISTS (SELECT 1 FROM agent_user_sessions o WHERE o.session_id = a.session_id) "
    "ORDER BY rowid LIMIT ?"
)
_ITEMS = (
    "SELECT id, message_data FROM agent_messages WHERE session_id = ? AND id > ? "
    "ORDER BY id LIMIT ?"
)
_INSERT_USER = (
    "INSERT INTO agent_users (user_id, created_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING"
)
_EXISTS = (
    "SELECT 1 FROM agent_sessions WHERE session_id = ? "
    "UNION ALL SELECT 1 FROM agent_user_sessions WHERE session_id = ?"
)
_DELETE = (
    "DELETE FROM agent_messages WHERE session_id = ?",
    "DELETE FROM agent_sessions WHERE session_id = ?",
    "DELETE FROM agent_user_sessions WHERE session_id = ?",
)
_INSERT_AGENT_SESSION = "INSERT INTO agent_sessions (session_id) VALUES (?)"
_INSERT_UNOWNED = (
    "INSERT INTO agent_sessions (session_id, created_at, updated_at) VALUES (?, ?, ?)"
)
_INSERT_OWNED = (
    "INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_INSERT_ITEM = "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)"


@dataclass
class TransferCounts:
    """How many records an export wrote or an import read."""

    users: int = 0
    sessions: int = 0
    items: int = 0


Progress = Callable[[TransferCounts], None]


def export_jsonl(
    repo: SessionRepository,
    out: IO[str],
    *,
    user_id: str | None = None,
    progress: Progress | None = None,
) -> TransferCounts:
    """Write every user (or just ``user_id``) with their sessions and items to ``out``.

    A full export also writes the sessions no user owns. Everything comes from
    one snapshot of the database: writes made meanwhile are either all in the
    export or not at all. The snapshot uses a connection of its own, so the
    repository's other calls go on meanwhile (except on ``:memory:``).
    """
    if user_id is not None:
        check_id("user_id", user_id)
    counts = TransferCounts()
    report = _Reporter(progress, counts)

    def write_all(conn: Connection) -> None:
        for line in _export_lines(conn, user_id, counts):
            out.write(line)
            out.write("\n")
            report()

    repo._db.snapshot(write_all)
    return counts


class _Reporter:
    """Calls ``progress`` each time another 1,000 sessions and items are done."""

    __slots__ = ("counts", "next", "progress")

    def __init__(self, progress: Progress | None, counts: TransferCounts) -> None:
        self.progress, self.counts, self.next = progress, counts, 1000

    def __call__(self) -> None:
        done = self.counts.sessions + self.counts.items
        if self.progress is not None and done >= self.next:
            self.next = done + 1000
            self.progress(self.counts)


def _export_lines(conn: Connection, user_id: str | None, counts: TransferCounts) -> Iterator[str]:
    yield json.dumps({
        "type": "export", "format": FORMAT, "sessions_dal": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "user_id": user_id,
    })
    for user, user_created in _export_users(conn, user_id):
        counts.users += 1
        yield json.dumps({"type": "user", "user_id": user, "created_at": user_created})
        after: tuple[str, int] = ("", 0)
        while True:
            sessions = conn.execute(_SESSIONS, (user, *after, _PAGE)).fetchall()
            for session_id, owner, created, updated, metadata, _ in sessions:
                counts.sessions += 1
                yield json.dumps({
                    "type": "session", "session_id": session_id, "user_id": owner,
                    "created_at": created, "updated_at": updated,
                    "metadata": _metadata(session_id, metadata),
                })
                yield from _export_items(conn, session_id, counts)
            if len(sessions) < _PAGE:
                break
            after = (sessions[-1][2], sessions[-1][5])
    if user_id is None:
        yield from _export_unowned(conn, counts)
    conn.verify()  # before the record that vouches for the whole file
    yield json.dumps({"type": "end", "users": counts.users, "sessions": counts.sessions,
                      "items": counts.items})


def _export_users(conn: Connection, user_id: str | None) -> Iterator[tuple[str, str]]:
    if user_id is not None:
        yield from conn.execute(_ONE_USER, (user_id,)).fetchall()
        return
    after = ""
    while True:
        users = conn.execute(_USERS, (after, _PAGE)).fetchall()
        yield from users
        if len(users) < _PAGE:
            return
        after = users[-1][0]


def _export_unowned(conn: Connection, counts: TransferCounts) -> Iterator[str]:
    after = 0
    while True:
        sessions = conn.execute(_UNOWNED, (after, _PAGE)).fetchall()
        for _, session_id, created, updated in sessions:
            counts.sessions += 1
            # openai-agents' own timestamp text, kept as it is stored.
            yield json.dumps({
                "type": "session", "session_id": session_id, "user_id": None,
                "created_at": created, "updated_at": updated, "metadata": {},
            })
            yield from _export_items(conn, session_id, counts)
        if len(sessions) < _PAGE:
            return
        after = sessions[-1][0]


def _export_items(conn: Connection, session_id: str, counts: TransferCounts) -> Iterator[str]:
    prefix = json.dumps({"type": "item", "session_id": session_id})[:-1] + ', "item": '
    after = 0
    while True:
        rows = conn.execute(_ITEMS, (session_id, after, _PAGE)).fetchall()
        for row_id, text in rows:
            try:
                item = json.loads(text)
            except (ValueError, TypeError, RecursionError) as exc:
                raise CorruptItemError(
                    f"item {row_id} of session {session_id!r} (agent_messages.id = {row_id}) "
                    f"is not valid JSON ({exc}); repair or delete that row, then export again"
                ) from exc
            # Re-encoded so each record stays on one line whatever the stored
            # text; NaN and Infinity (which openai-agents may store) stay as
            # Python's json writes and reads them.
            counts.items += 1
            yield prefix + json.dumps(item) + "}"
        if len(rows) < _PAGE:
            return
        after = rows[-1][0]


@write_call
def import_jsonl(
    repo: SessionRepository,
    lines: Iterable[str],
    *,
    replace: bool = False,
    require_end: bool = True,
    progress: Progress | None = None,
) -> TransferCounts:
    """Import what :func:`export_jsonl` wrote, in one transaction: all of it or nothing.

    A session that already exists raises
    :class:`~sessions_dal.errors.SessionExistsError` and nothing is imported,
    unless ``replace=True``, which deletes it (with its items) first. A
    malformed line raises ``ValueError`` naming its line number, and so does
    a file that stops before its ``end`` record (it was cut short) or whose
    counts disagree with that record; nothing is imported then either. Files
    from sessions_dal 0.1 have no ``end`` record: pass ``require_end=False``.

    Items are stored as they were exported, including ``NaN``/``Infinity``
    that openai-agents may have written; metadata is checked as
    :meth:`~sessions_dal.SessionRepository.update_metadata` checks it.
    """
    counts = TransferCounts()
    repo._db.write(_import, lines, counts, _Importer(replace), require_end,
                   _Reporter(progress, counts))
    return counts


def _import(conn: Connection, lines: Iterable[str], counts: TransferCounts,
            importer: _Importer, require_end: bool, report: _Reporter) -> None:
    end: dict[str, Any] | None = None
    number = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(number, line)
        if end is not None:
            raise ValueError(f"line {number}: a record after the 'end' record")
        kind = record.get("type")
        if kind == "item":
            importer.item(conn, number, record)
            counts.items += 1
        elif kind == "session":
            importer.session(conn, number, record)
            counts.sessions += 1
        elif kind == "user":
            user = check_id(f"line {number}: user_id", record.get("user_id"))
            conn.execute(_INSERT_USER, (user, _timestamp(number, record, "created_at")))
            counts.users += 1
        elif kind == "export":
            _check_header(number, record)
        elif kind == "end":
            end = record
        else:
            raise ValueError(
                f"line {number}: unknown record type {kind!r}; "
                "expected 'user', 'session', 'item' or 'end'"
            )
        report()
    importer.flush(conn)
    _check_end(number, end, counts, require_end)


class _Importer:
    """The sessions and items of an import, written in batches of items."""

    def __init__(self, replace: bool) -> None:
        self.replace = replace
        self.current: str | None = None
        self.pending: list[tuple[str, str]] = []
        self.seen: set[str] = set()  # one file may not hold a session twice

    def item(self, conn: Connection, number: int, record: dict[str, Any]) -> None:
        if self.current is None or record.get("session_id") != self.current or (
            "item" not in record
        ):
            raise ValueError(
                f"line {number}: an item must follow its session's record "
                f"(expected session_id {self.current!r})"
            )
        # Whatever json could read (NaN included) is stored as json writes it,
        # as openai-agents stores items; but never deeper than any item
        # sessions_dal writes, so that it reads back from any caller.
        item = record["item"]
        if json_depth(item) > MAX_JSON_DEPTH:
            raise ValueError(
                f"line {number}: the item is nested more than {MAX_JSON_DEPTH} levels deep"
            )
        text = json.dumps(item)
        if len(text) > MAX_JSON_LENGTH:
            raise ValueError(f"line {number}: the item is longer than SQLite stores")
        self.pending.append((self.current, text))
        if len(self.pending) >= _PAGE:
            self.flush(conn)

    def flush(self, conn: Connection) -> None:
        conn.executemany(_INSERT_ITEM, self.pending)
        self.pending.clear()

    def session(self, conn: Connection, number: int, record: dict[str, Any]) -> None:
        self.flush(conn)
        session_id = check_id(f"line {number}: session_id", record.get("session_id"))
        if "user_id" not in record:
            raise ValueError(
                f"line {number}: a session record needs user_id (null for an unowned session)"
            )
        owner = record["user_id"]
        if session_id in self.seen:
            raise ValueError(f"line {number}: session {session_id!r} appears twice in the file")
        self.seen.add(session_id)
        if conn.execute(_EXISTS, (session_id, session_id)).fetchone() is not None:
            if not self.replace:
                raise SessionExistsError(
                    f"line {number}: session {session_id!r} already exists in the database; "
                    "nothing was imported; to overwrite it, import with replace=True "
                    "(sessions-dal import --replace)"
                )
            for statement in _DELETE:
                conn.execute(statement, (session_id,))
        if owner is None:
            if record.get("metadata"):
                raise ValueError(f"line {number}: an unowned session has no metadata")
            created = _agents_column(number, record, "created_at")
            updated = _agents_column(number, record, "updated_at")
            conn.execute(_INSERT_UNOWNED, (session_id, created, updated))
        else:
            user = check_id(f"line {number}: user_id", owner)
            metadata = record.get("metadata", {})
            if not isinstance(metadata, dict):
                raise ValueError(f"line {number}: metadata must be a JSON object")
            meta_text = encode_json(f"line {number}: metadata", metadata)
            created = _timestamp(number, record, "created_at")
            updated = _timestamp(number, record, "updated_at")
            conn.execute(_INSERT_USER, (user, created))
            conn.execute(_INSERT_AGENT_SESSION, (session_id,))
            conn.execute(_INSERT_OWNED, (session_id, user, meta_text, created, updated))
        self.current = session_id


def _check_header(number: int, record: dict[str, Any]) -> None:
    version = record.get("format")
    if number != 1:
        raise ValueError(f"line {number}: the 'export' record must be the first line")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT:
        raise ValueError(
            f"line 1: export format {version!r} is not one this sessions_dal reads (up to "
            f"{FORMAT}); upgrade sessions_dal (pip install -U sessions-dal)"
        )


def _check_end(
    last_line: int, end: dict[str, Any] | None, counts: TransferCounts, require_end: bool
) -> None:
    if end is None:
        if require_end:
            raise ValueError(
                f"the file ends after line {last_line} without the closing 'end' record, so it "
                "is incomplete (cut short?); nothing was imported. An export from "
                "sessions_dal 0.1 has no such record: import it with require_end=False "
                "(sessions-dal import --no-end-record)"
            )
        return
    found = {"users": counts.users, "sessions": counts.sessions, "items": counts.items}
    stated = {key: end.get(key) for key in found}
    if stated != found or any(type(value) is not int for value in stated.values()):
        raise ValueError(
            f"the 'end' record counts {stated}, but the file holds {found}: it was changed "
            "or cut; nothing was imported"
        )


def _parse(number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"line {number} is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"line {number} is nested too deeply to read") from None
    if not isinstance(record, dict):
        raise ValueError(f"line {number} is not a JSON object")
    return record


def _parse_time(number: int, record: dict[str, Any], key: str) -> datetime:
    value = record.get(key)
    try:
        parsed = parse_timestamp(value)  # type: ignore[arg-type]
        if parsed.utcoffset() is None:
            raise ValueError(f"line {number}: {key} {value!r} has no time zone")
        return parsed.astimezone(timezone.utc)
    except (TypeError, OverflowError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("line "):
            raise
        raise ValueError(
            f"line {number}: {key} must be an ISO 8601 timestamp with a time zone, "
            f"within years 1-9999 in UTC, got {value!r}"
        ) from None


def _timestamp(number: int, record: dict[str, Any], key: str) -> str:
    return _parse_time(number, record, key).isoformat(timespec="microseconds")


def _agents_column(number: int, record: dict[str, Any], key: str) -> str | None:
    """An unowned session's time: openai-agents' own text, as the export kept it."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64 or "\x00" in value:
        raise ValueError(
            f"line {number}: {key} of an unowned session must be openai-agents' timestamp "
            f"text (e.g. '2026-01-02 03:04:05') or null, got {value!r}"
        )
    return value
