"""Export and import a database as JSON Lines, streaming, in constant memory.

One JSON object per line, each with a ``type``:

- ``{"type": "user", "user_id", "created_at"}``
- ``{"type": "session", "session_id", "user_id", "created_at", "updated_at", "metadata"}``
- ``{"type": "item", "session_id", "item"}``: the session's items follow it, in order.

Users come in ``user_id`` order and each user's sessions in creation order, so
an import re-creates the same listing order. Timestamps are ISO 8601 UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timezone
from typing import IO, Any

from ._validate import check_id, encode_json
from .connection import Connection
from .errors import CorruptItemError, SessionExistsError
from .repository import SessionRepository
from .session import parse_timestamp

__all__ = ["TransferCounts", "export_jsonl", "import_jsonl"]

_PAGE = 500
_USERS = "SELECT user_id, created_at FROM agent_users WHERE user_id > ? ORDER BY user_id LIMIT ?"
_ONE_USER = "SELECT user_id, created_at FROM agent_users WHERE user_id = ?"
_SESSIONS = (
    "SELECT session_id, user_id, created_at, updated_at, metadata, seq FROM agent_user_sessions "
    "WHERE user_id = ? AND (created_at, seq) > (?, ?) ORDER BY created_at, seq LIMIT ?"
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
    """Write every user (or just ``user_id``) with their sessions and items to ``out``."""
    counts = TransferCounts()
    for line in _export_lines(repo, user_id, counts):
        out.write(line)
        out.write("\n")
        if progress is not None and (counts.sessions + counts.items) % 1000 == 0:
            progress(counts)
    return counts


def _export_lines(
    repo: SessionRepository, user_id: str | None, counts: TransferCounts
) -> Iterator[str]:
    db = repo._db
    for user, user_created in _export_users(repo, user_id):
        counts.users += 1
        yield json.dumps({"type": "user", "user_id": user, "created_at": user_created})
        after: tuple[str, int] = ("", 0)
        while True:
            with db.read() as conn:
                sessions = conn.execute(_SESSIONS, (user, *after, _PAGE)).fetchall()
            for session_id, owner, created, updated, metadata, _ in sessions:
                counts.sessions += 1
                yield json.dumps({
                    "type": "session", "session_id": session_id, "user_id": owner,
                    "created_at": created, "updated_at": updated,
                    "metadata": json.loads(metadata),
                })
                for item in _export_items(repo, session_id):
                    counts.items += 1
                    yield item
            if len(sessions) < _PAGE:
                break
            after = (sessions[-1][2], sessions[-1][5])


def _export_users(repo: SessionRepository, user_id: str | None) -> Iterator[tuple[str, str]]:
    if user_id is not None:
        with repo._db.read() as conn:
            yield from conn.execute(_ONE_USER, (check_id("user_id", user_id),)).fetchall()
        return
    after = ""
    while True:
        with repo._db.read() as conn:
            users = conn.execute(_USERS, (after, _PAGE)).fetchall()
        yield from users
        if len(users) < _PAGE:
            return
        after = users[-1][0]


def _export_items(repo: SessionRepository, session_id: str) -> Iterator[str]:
    prefix = json.dumps({"type": "item", "session_id": session_id})[:-1] + ', "item": '
    after = 0
    while True:
        with repo._db.read() as conn:
            rows = conn.execute(_ITEMS, (session_id, after, _PAGE)).fetchall()
        for row_id, text in rows:
            try:
                item = json.loads(text)
            except (ValueError, TypeError) as exc:
                raise CorruptItemError(
                    f"item {row_id} of session {session_id!r} (agent_messages.id = {row_id}) "
                    f"is not valid JSON ({exc}); repair or delete that row, then export again"
                ) from exc
            # Re-encoded so each record stays on one line whatever the stored text.
            yield prefix + json.dumps(item) + "}"
        if len(rows) < _PAGE:
            return
        after = rows[-1][0]


def import_jsonl(
    repo: SessionRepository,
    lines: Iterable[str],
    *,
    replace: bool = False,
    progress: Progress | None = None,
) -> TransferCounts:
    """Import what :func:`export_jsonl` wrote, in one transaction.

    A session that already exists raises
    :class:`~sessions_dal.errors.SessionExistsError` and nothing is imported,
    unless ``replace=True``, which deletes it (with its items) first. A
    malformed line raises ``ValueError`` naming its line number; nothing is
    imported then either.
    """
    counts = TransferCounts()
    current: str | None = None
    pending: list[tuple[str, str]] = []
    with repo._db.write() as conn:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = _parse(number, line)
            kind = record.get("type")
            if kind == "item":
                if current is None or record.get("session_id") != current or "item" not in record:
                    raise ValueError(
                        f"line {number}: an item must follow its session's record "
                        f"(expected session_id {current!r})"
                    )
                pending.append((current, encode_json(f"line {number}: item", record["item"])))
                counts.items += 1
                if len(pending) >= _PAGE:
                    conn.executemany(_INSERT_ITEM, pending)
                    pending.clear()
            elif kind == "session":
                conn.executemany(_INSERT_ITEM, pending)
                pending.clear()
                current = _import_session(conn, number, record, replace)
                counts.sessions += 1
            elif kind == "user":
                user = check_id(f"line {number}: user_id", record.get("user_id"))
                created = _timestamp(number, record, "created_at")
                conn.execute(_INSERT_USER, (user, created))
                counts.users += 1
            else:
                raise ValueError(
                    f"line {number}: unknown record type {kind!r}; "
                    "expected 'user', 'session' or 'item'"
                )
            if progress is not None and (counts.sessions + counts.items) % 1000 == 0:
                progress(counts)
        conn.executemany(_INSERT_ITEM, pending)
    return counts


def _parse(number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"line {number} is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"line {number} is not a JSON object")
    return record


def _timestamp(number: int, record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    try:
        parsed = parse_timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"line {number}: {key} must be an ISO 8601 timestamp, got {value!r}"
        ) from None
    if parsed.utcoffset() is None:
        raise ValueError(f"line {number}: {key} {value!r} has no time zone")
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _import_session(
    conn: Connection, number: int, record: dict[str, Any], replace: bool
) -> str:
    session_id = check_id(f"line {number}: session_id", record.get("session_id"))
    user = check_id(f"line {number}: user_id", record.get("user_id"))
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"line {number}: metadata must be a JSON object")
    meta_text = encode_json(f"line {number}: metadata", metadata)
    created = _timestamp(number, record, "created_at")
    updated = _timestamp(number, record, "updated_at")
    if conn.execute(_EXISTS, (session_id, session_id)).fetchone() is not None:
        if not replace:
            raise SessionExistsError(
                f"line {number}: session {session_id!r} already exists in the database; "
                "nothing was imported (import with replace to overwrite it)"
            )
        for statement in _DELETE:
            conn.execute(statement, (session_id,))
    conn.execute(_INSERT_USER, (user, created))
    conn.execute(_INSERT_AGENT_SESSION, (session_id,))
    conn.execute(_INSERT_OWNED, (session_id, user, meta_text, created, updated))
    return session_id
