"""Export and import a database as JSON Lines, streaming, in constant memory.

One JSON object per line, each with a ``type``:

- ``{"type": "export", "format": 2, ...}``: the first line, saying what follows.
- ``{"type": "user", "user_id", "created_at"}``
- ``{"type": "session", "session_id", "user_id", "created_at", "updated_at", "metadata"}``:
  ``user_id`` is ``null`` for a session openai-agents wrote and no user owns.
- ``{"type": "history", "session_id", "layer", "replaced", "item"}``: what the
  session's compactions moved out of its view (``Session.compact``), layer by
  layer, in order; ``replaced``: an earlier layer's replacement, compacted in
  turn. They follow the session's record, before its items.
- ``{"type": "item", "session_id", "item"}``: the session's items follow it, in
  order; a compaction's replacement has ``"replaces": layer``.
- ``{"type": "end", "users", "sessions", "items"}``: the last line, with the
  counts (and ``"history"``, the history records', when there are any).

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
from typing import IO, Any, Protocol

from ._interrupts import COMMITTED_NOTE, CommitsSeen, add_note
from ._store import Exporter, IdTaken, Importer, SessionRow
from ._validate import MAX_JSON_LENGTH, check_id, corrupt_item, decode_metadata, encode_json
from ._version import __version__
from .errors import ImportFileError, Remedy

__all__ = ["FORMAT", "TransferCounts", "export_jsonl", "import_jsonl"]

FORMAT = 3
"""The export format this sessions_dal writes (and the newest it reads): 3 added
compacted history; a file of format 2 reads as before."""

_BATCH = 500  # items written per executemany


@dataclass
class TransferCounts:
    """How many records an export wrote or an import read."""

    users: int = 0
    sessions: int = 0
    items: int = 0
    history: int = 0
    """Items kept as compacted history (``Session.iter_history``)."""


Progress = Callable[[TransferCounts], None]


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


# -- export ----------------------------------------------------------------------


def write_export(reader: Exporter, out: IO[str], user_id: str | None,
                 progress: Progress | None, table: str) -> TransferCounts:
    """Write what ``reader`` (one snapshot) holds to ``out``; return the counts.

    ``table``: openai-agents' messages table, as a corrupt item's error names it.
    """
    counts = TransferCounts()
    report = _Reporter(progress, counts)
    for line in _export_lines(reader, user_id, counts, table):
        out.write(line)
        out.write("\n")
        report()
    return counts


def _export_lines(reader: Exporter, user_id: str | None, counts: TransferCounts, table: str
                  ) -> Iterator[str]:
    yield json.dumps({
        "type": "export", "format": FORMAT, "sessions_dal": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "user_id": user_id,
    })
    for user, user_created in reader.users(user_id):
        counts.users += 1
        yield json.dumps({"type": "user", "user_id": user, "created_at": _time(user_created)})
        for row in reader.sessions(user):
            counts.sessions += 1
            yield json.dumps({
                "type": "session", "session_id": row.session_id, "user_id": row.user_id,
                "created_at": _time(row.created_at), "updated_at": _time(row.updated_at),
                "metadata": _decoded_metadata(row),
            })
            yield from _export_items(reader, row.session_id, counts, table)
    if user_id is None:
        for session_id, created, updated in reader.unowned():
            counts.sessions += 1
            # openai-agents' own timestamp text, kept as it is stored.
            yield json.dumps({
                "type": "session", "session_id": session_id, "user_id": None,
                "created_at": created, "updated_at": updated, "metadata": {},
            })
            yield from _export_items(reader, session_id, counts, table)
    reader.verify()  # before the record that vouches for the whole file
    end = {"type": "end", "users": counts.users, "sessions": counts.sessions,
           "items": counts.items}
    if counts.history:
        end["history"] = counts.history
    yield json.dumps(end)


def _time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _decoded_metadata(row: SessionRow) -> Any:
    return decode_metadata(row.session_id, row.metadata)


def _export_items(reader: Exporter, session_id: str, counts: TransferCounts, table: str
                  ) -> Iterator[str]:
    for layer, replaced, text in reader.history(session_id):
        item = _decoded(text, "sessions_dal_history", session_id, layer)
        counts.history += 1
        yield json.dumps({"type": "history", "session_id": session_id, "layer": layer,
                          "replaced": replaced, "item": item})
    replacements = reader.replacements(session_id)
    prefix = json.dumps({"type": "item", "session_id": session_id})[:-1] + ', "item": '
    for row_id, text in reader.items(session_id):
        item = _decoded(text, table, session_id, row_id)
        counts.items += 1
        replaces = replacements.get(row_id)
        if replaces is None:
            yield prefix + json.dumps(item) + "}"
        else:
            yield prefix + json.dumps(item) + f', "replaces": {replaces}}}'


def _decoded(text: str, table: str, session_id: str, row: int) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise corrupt_item(table, session_id, row, exc, ", then export again") from exc
    # Re-encoded by the caller so each record stays on one line whatever the
    # stored text; NaN and Infinity (which openai-agents may store) stay as
    # Python's json writes and reads them.


# -- import ----------------------------------------------------------------------


def read_import(writer: Importer, lines: Iterable[str], replace: bool, require_end: bool,
                progress: Progress | None) -> TransferCounts:
    """Read an export from ``lines`` and hand its records to ``writer``; return the counts.

    Runs inside the store's import transaction: any exception undoes it all.
    """
    counts = TransferCounts()
    report = _Reporter(progress, counts)
    importer = _Records(writer, replace)
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
            importer.item(number, record)
            counts.items += 1
        elif kind == "history":
            importer.history(number, record)
            counts.history += 1
        elif kind == "session":
            importer.session(number, record)
            counts.sessions += 1
        elif kind == "user":
            user = check_id(f"line {number}: user_id", record.get("user_id"))
            writer.add_user(user, _parse_time(number, record, "created_at"))
            counts.users += 1
        elif kind == "export":
            _check_header(number, record)
            importer.format = record["format"]
        elif kind == "end":
            end = record
        else:
            raise ValueError(
                f"line {number}: unknown record type {kind!r}; "
                "expected 'user', 'session', 'history', 'item' or 'end'"
            )
        report()
    importer.end_session()
    _check_end(number, end, counts, require_end)
    return counts


class _Records:
    """The sessions and items of an import, handed on in batches of items."""

    def __init__(self, writer: Importer, replace: bool) -> None:
        self.writer = writer
        self.replace = replace
        self.current: str | None = None
        self.pending: list[str] = []
        self.seen: set[str] = set()  # one file may not hold a session twice
        self.compacted: list[tuple[int, bool, str]] = []  # the current session's history
        self.marks: list[tuple[int, int]] = []  # (its n-th item, the layer it replaces)
        self.count = 0  # the current session's items so far
        self.layer = 0  # the current session's last history layer so far
        self.format = FORMAT  # the file's, once its header is read

    def item(self, number: int, record: dict[str, Any]) -> None:
        if self.current is None or record.get("session_id") != self.current or (
            "item" not in record
        ):
            raise ValueError(
                f"line {number}: an item must follow its session's record "
                f"(expected session_id {self.current!r})"
            )
        # Whatever json could read is stored as json writes it, as openai-agents
        # stores items: an import restores what the source database held, NaN
        # or nesting sessions_dal itself would refuse to write included.
        text = json.dumps(record["item"])
        if len(text) > MAX_JSON_LENGTH:
            raise ValueError(f"line {number}: the item is longer than the database stores")
        if "replaces" in record:
            self.marks.append((self.count, _layer(number, record.get("replaces"))))
        self.count += 1
        self._history_done()
        self.pending.append(text)
        if len(self.pending) >= _BATCH:
            self.flush()

    def history(self, number: int, record: dict[str, Any]) -> None:
        if self.format < 3:
            raise ValueError(f"line {number}: a history record in a file of export format "
                             f"{self.format} (history came with format 3)")
        if (self.current is None or record.get("session_id") != self.current
                or self.count):
            raise ValueError(
                f"line {number}: a history record must follow its session's record, before "
                f"its items (expected session_id {self.current!r})"
            )
        if "item" not in record:
            raise ValueError(f"line {number}: a history record needs its item")
        replaced = record.get("replaced", False)
        if not isinstance(replaced, bool):
            raise ValueError(f"line {number}: replaced must be true or false")
        text = json.dumps(record["item"])
        if len(text) > MAX_JSON_LENGTH:
            raise ValueError(f"line {number}: the item is longer than the database stores")
        layer = _layer(number, record.get("layer"))
        if layer < self.layer:
            raise ValueError(f"line {number}: history layers must come in order")
        self.layer = layer
        self.compacted.append((layer, replaced, text))
        if len(self.compacted) >= _BATCH:
            self._history_done()

    def _history_done(self) -> None:
        if self.compacted and self.current is not None:
            self.writer.add_history(self.current, self.compacted)
        self.compacted = []

    def flush(self) -> None:
        self._history_done()
        if self.pending and self.current is not None:
            self.writer.add_items(self.current, self.pending)
        self.pending = []

    def end_session(self) -> None:
        self.flush()
        if self.marks and self.current is not None:
            self.writer.mark_replacements(self.current, self.marks)
        self.marks = []
        self.count = self.layer = 0

    def session(self, number: int, record: dict[str, Any]) -> None:
        self.end_session()
        if "user_id" not in record:
            raise ValueError(
                f"line {number}: a session record needs user_id (null for an unowned session)"
            )
        owner = record["user_id"]
        if owner is None:
            # Written by openai-agents, whose ids are any text: kept as they are.
            session_id = record.get("session_id")
            if not isinstance(session_id, str):
                raise TypeError(f"line {number}: session_id must be a str")
        else:
            session_id = check_id(f"line {number}: session_id", record.get("session_id"))
        if session_id in self.seen:
            raise ValueError(f"line {number}: session {session_id!r} appears twice in the file")
        self.seen.add(session_id)
        if owner is None:
            if record.get("metadata"):
                raise ValueError(f"line {number}: an unowned session has no metadata")
            times = (_agents_column(number, record, "created_at"),
                     _agents_column(number, record, "updated_at"))
            row = SessionRow(session_id, None, "{}", _EPOCH, _EPOCH)
        else:
            user = check_id(f"line {number}: user_id", owner)
            metadata = record.get("metadata", {})
            if not isinstance(metadata, dict):
                raise ValueError(f"line {number}: metadata must be a JSON object")
            meta_text = encode_json(f"line {number}: metadata", metadata)
            row = SessionRow(session_id, user, meta_text,
                             _parse_time(number, record, "created_at"),
                             _parse_time(number, record, "updated_at"))
            times = (None, None)
        try:
            self.writer.add_session(row, self.replace, times)
        except IdTaken:
            raise IdTaken(session_id, f"line {number}") from None
        self.current = session_id


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _layer(number: int, value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"line {number}: a layer must be a whole number from 1, got {value!r}")
    return value


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
            raise ImportFileError(
                f"the file ends after line {last_line} without the closing 'end' record, so it "
                "is incomplete (cut short?); nothing was imported", Remedy.IMPORT_WITHOUT_END
            )
        return
    found = {"users": counts.users, "sessions": counts.sessions, "items": counts.items}
    if counts.history or "history" in end:
        found["history"] = counts.history
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
        parsed = datetime.fromisoformat(value)  # type: ignore[arg-type]
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


def _agents_column(number: int, record: dict[str, Any], key: str) -> object:
    """An unowned session's time: openai-agents' own value, as the export kept it."""
    value: object = record.get(key)
    if value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool)):
        return value
    raise ValueError(
        f"line {number}: {key} of an unowned session must be openai-agents' timestamp "
        f"(e.g. '2026-01-02 03:04:05') or null, got {value!r}"
    )


# -- the functions of 0.1 ---------------------------------------------------------


class _Repository(Protocol):
    """What the functions of 0.1 call: a SessionRepository (not named: it sits above)."""

    def export_to(self, out: IO[str], *, user_id: str | None = None,
                  progress: Progress | None = None) -> TransferCounts: ...

    def import_from(self, lines: Iterable[str], *, replace: bool = False,
                    require_end: bool = True, progress: Progress | None = None
                    ) -> TransferCounts: ...


def export_jsonl(repo: _Repository, out: IO[str], *, user_id: str | None = None,
                 progress: Progress | None = None) -> TransferCounts:
    """``repo.export_to(out, ...)``: the function of sessions_dal 0.1."""
    return repo.export_to(out, user_id=user_id, progress=progress)


def import_jsonl(repo: _Repository, lines: Iterable[str], *, replace: bool = False,
                 require_end: bool = True, progress: Progress | None = None
                 ) -> TransferCounts:
    """``repo.import_from(lines, ...)``: the function of sessions_dal 0.1.

    An interrupt that lands here after the import committed carries
    ``COMMITTED_NOTE``, as one in ``import_from`` does.
    """
    seen = CommitsSeen()
    try:
        with seen:
            return repo.import_from(lines, replace=replace, require_end=require_end,
                                    progress=progress)
    except BaseException as exc:
        if seen.token.committed and COMMITTED_NOTE not in getattr(exc, "__notes__", ()):
            add_note(exc, COMMITTED_NOTE)
        raise
