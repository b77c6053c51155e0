"""``sqlite3``'s errors become the library's errors here, and nowhere else.

SQLite's result codes (from the exception, or on Python 3.10 from its message)
decide which :class:`~sessions_dal.errors.DatabaseError` a failure is, and each
message says what to do about it. Both the opening of a file (``_opening``)
and the transaction runner (``_runner``) translate through this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from ...errors import (
    DatabaseError,
    DatabaseLockedError,
    DiskFullError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
)

__all__ = ["translate_errors"]

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
# SQLITE_READONLY_RECOVERY and SQLITE_READONLY_ROLLBACK: a read-only connection
# met a hot journal or WAL that must be recovered first.
_NEEDS_RECOVERY = (_SQLITE_READONLY | 1 << 8, _SQLITE_READONLY | 3 << 8)


@contextmanager
def translate_errors(path: str, busy_timeout: float) -> Iterator[None]:
    """Re-raise ``sqlite3`` errors as :class:`DatabaseError` subclasses."""
    try:
        yield
    except sqlite3.Error as exc:
        _raise_translated(exc, path, busy_timeout)


def _raise_translated(exc: sqlite3.Error, path: str, busy_timeout: float) -> NoReturn:
    code = _primary_code(exc)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        raise DatabaseLockedError(
            f"database {path!r} is locked: another connection held it for longer than "
            f"busy_timeout={busy_timeout}s; retry, or open the repository with a "
            "larger busy_timeout"
        ) from exc
    if getattr(exc, "sqlite_errorcode", None) in _NEEDS_RECOVERY:
        raise ReadOnlyDatabaseError(
            f"database {path!r} holds an unfinished transaction (in its -journal or -wal "
            "file, left by a crash) that only a writer can roll back; open it read-write "
            "once to recover it, then read it"
        ) from exc
    if code == _SQLITE_READONLY:
        raise ReadOnlyDatabaseError(
            f"database {path!r} cannot be written ({exc}): make the file and its "
            "directory writable by this process; nothing was changed"
        ) from exc
    if code == _SQLITE_FULL:
        raise DiskFullError(
            f"database {path!r} is full ({exc}): free disk space (or raise "
            "max_page_count) and retry; nothing was written"
        ) from exc
    if code in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
        raise NotADatabaseError(
            f"{path!r} is not an SQLite database, or it is damaged ({exc}); "
            "open another path, or restore the file from a backup"
        ) from exc
    if code == _SQLITE_CANTOPEN:
        raise DatabaseError(
            f"cannot open database {path!r} ({exc}): check that the file (for a new one, "
            "its directory) exists and that this process may read it, and to write, "
            "write it and its directory"
        ) from exc
    raise DatabaseError(f"SQLite error on {path!r}: {exc}") from exc


# Python 3.10's sqlite3 exceptions carry no result code; fall back to the
# message text, which SQLite fixes per primary code.
_CODE_BY_MESSAGE = (
    ("database is locked", _SQLITE_BUSY),
    ("database table is locked", _SQLITE_LOCKED),
    ("readonly database", _SQLITE_READONLY),
    ("database or disk is full", _SQLITE_FULL),
    ("file is not a database", _SQLITE_NOTADB),
    ("database disk image is malformed", _SQLITE_CORRUPT),
    ("unable to open database file", _SQLITE_CANTOPEN),
)


def _primary_code(exc: sqlite3.Error) -> int | None:
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    message = str(exc)
    for text, value in _CODE_BY_MESSAGE:
        if text in message:
            return value
    return None
