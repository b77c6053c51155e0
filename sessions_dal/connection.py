"""Opening connections, and the one place that owns transactions.

A :class:`Database` holds a single ``sqlite3`` connection and a lock. Every
read runs under :meth:`Database.read` and every write under
:meth:`Database.write`, which issues ``BEGIN IMMEDIATE`` itself and commits or
rolls back; nothing else in the package begins, commits or rolls back.

Threading model: one connection per repository, shared by all threads and
serialised by a lock. SQLite serialises writers anyway, so a second connection
per thread would add setup cost and ``:memory:`` special cases for little gain;
processes coordinate through WAL and the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import NoReturn

from .errors import (
    DatabaseError,
    DatabaseLockedError,
    DiskFullError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    RepositoryClosedError,
    UnsupportedSQLiteError,
)
from .tables import Tables

__all__ = [
    "CACHE_KIB",
    "MIN_SQLITE_VERSION",
    "SYNCHRONOUS_LEVELS",
    "Connection",
    "Database",
    "open_connection",
]

# RETURNING (used by pop_item) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 16 * 1024
"""SQLite page cache per connection, in KiB."""

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def open_connection(
    path: str,
    *,
    busy_timeout: float,
    synchronous: str,
    inspect: Callable[[sqlite3.Connection], None],
) -> sqlite3.Connection:
    """Open and configure the connection a :class:`Database` uses.

    The connection runs in explicit transaction mode (``autocommit=True`` on
    Python 3.12+, ``isolation_level=None`` before): sqlite3 never opens a
    transaction behind our back, on any Python version. Foreign keys are on,
    the journal is WAL, and ``busy_timeout`` (seconds) bounds every lock wait.

    ``inspect`` runs first, before anything is written, and raises to refuse
    the file: switching to WAL rewrites header bytes, and a refused file
    (newer schema, foreign tables) must stay byte-identical.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise UnsupportedSQLiteError(
            f"sessions_dal needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer, "
            f"but Python's sqlite3 uses SQLite {sqlite3.sqlite_version}; "
            "install a Python built against a newer SQLite"
        )
    with translate_errors(path, busy_timeout):
        if sys.version_info >= (3, 12):
            conn = sqlite3.connect(
                path, timeout=busy_timeout, check_same_thread=False, autocommit=True
            )
        else:
            conn = sqlite3.connect(
                path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
            )
    try:
        with translate_errors(path, busy_timeout):
            inspect(conn)
            conn.execute("PRAGMA foreign_keys = ON")
            # SQLite's default 2 MB page cache spills a large add_items to the
            # WAL mid-transaction; 16 MB (filled only as pages are used) keeps a
            # 10,000-item call in memory (benchmarks/RESULTS.md, W5).
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            # Whitelisted by the caller; PRAGMA values cannot be bound.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            _enable_wal(conn, busy_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    # Changing the journal mode takes an exclusive lock without consulting the
    # busy handler, so processes opening a new file together see "database is
    # locked" at once. Retry until the busy timeout, as a normal lock wait would.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if _primary_code(exc) not in (_SQLITE_BUSY, _SQLITE_LOCKED):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class Connection:
    """The ``sqlite3`` connection as the package uses it.

    Statements are written with openai-agents' default table names;
    ``execute`` rewrites them for this database's names (see
    :class:`~sessions_dal.tables.Tables`) before they reach SQLite.
    """

    __slots__ = ("_rewrite", "raw")

    def __init__(self, raw: sqlite3.Connection, rewrite: Callable[[str], str]) -> None:
        self.raw = raw
        self._rewrite = rewrite

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one statement with bound ``parameters``."""
        return self.raw.execute(self._rewrite(sql), parameters)

    def executemany(self, sql: str, seq: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        """Run one statement once per parameter sequence."""
        return self.raw.executemany(self._rewrite(sql), seq)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection."""
        return self.raw.in_transaction


class Database:
    """One connection, its lock, and the transactions run on it.

    Safe to share between threads: every use holds the lock for the length of
    one read or one write transaction, never across a ``yield`` to user code.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        busy_timeout: float,
        tables: Tables | None = None,
        reopen: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.tables = tables or Tables()
        self._conn: Connection | None = Connection(conn, self.tables.sql)
        # SQLite opens a file it cannot write read-only, and that connection
        # stays read-only after the file becomes writable again; so a
        # read-only error marks it stale and the next call opens a new one.
        self._reopen = reopen
        self._stale = False
        self._lock = threading.RLock()
        self._pid = os.getpid()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._conn is None

    def read(self) -> _Reading:
        """``with db.read() as conn:`` runs reads under the lock; no transaction is held."""
        return _Reading(self)

    def write(self) -> _Writing:
        """``with db.write() as conn:`` runs one transaction: ``BEGIN IMMEDIATE``, then commit.

        Any exception inside the block, ``KeyboardInterrupt`` included, rolls
        the whole transaction back before it propagates, so a failed write
        leaves the database exactly as it was.
        """
        return _Writing(self)

    def close(self) -> None:
        """Close the connection; later calls raise :class:`RepositoryClosedError`."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.raw.close()

    def _open_conn(self) -> Connection:
        if self._conn is None:
            raise RepositoryClosedError(
                f"the repository for {self.path!r} is closed; open a new SessionRepository"
            )
        if self._stale and self._reopen is not None:
            with translate_errors(self.path, self.busy_timeout):
                fresh = self._reopen()
            self._conn.raw.close()
            self._conn = Connection(fresh, self.tables.sql)
            self._stale = False
        return self._conn

    def _enter(self) -> Connection:
        """Take the lock and return the open connection; on failure, release it."""
        self._check_process()
        self._lock.acquire()
        try:
            return self._open_conn()
        except BaseException as exc:
            self._lock.release()
            self._fail(exc)

    def _fail(self, exc: BaseException) -> NoReturn:
        """Re-raise ``exc``; an SQLite error as the library error it stands for."""
        if isinstance(exc, sqlite3.Error):
            try:
                _raise_translated(exc, self.path, self.busy_timeout)
            except ReadOnlyDatabaseError:
                self._stale = True
                raise
        raise exc

    def _check_process(self) -> None:
        # A connection must not cross fork(): the child would share the
        # parent's file locks and could corrupt the database. Checked before
        # taking the lock, which a vanished parent thread may hold forever.
        if os.getpid() != self._pid:
            raise RepositoryClosedError(
                f"the repository for {self.path!r} was opened in process {self._pid} and "
                "cannot be used after fork(); open a new SessionRepository in this process"
            )


# Hand-written context managers rather than @contextmanager generators: they
# wrap every call, and the generator machinery cost more than the raw
# sqlite3 work of a small read (benchmarks/RESULTS.md, W3).


class _Reading:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Connection:
        return self._db._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db._lock.release()
        if isinstance(exc, sqlite3.Error):
            self._db._fail(exc)


class _Writing:
    __slots__ = ("_db", "_raw")

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Connection:
        db = self._db
        conn = db._enter()
        try:
            # IMMEDIATE takes the write lock now, waiting up to the busy
            # timeout, instead of failing later when a read upgrades.
            conn.raw.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            db._lock.release()
            db._fail(exc)
        self._raw = conn.raw
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raw, failure = self._raw, exc
        try:
            if failure is None:
                try:
                    raw.execute("COMMIT")
                except BaseException as commit_failure:
                    failure = commit_failure
            # SQLite may already have rolled back (e.g. on SQLITE_FULL).
            if failure is not None and raw.in_transaction:
                raw.execute("ROLLBACK")
        except sqlite3.Error as rollback_failure:
            failure = failure or rollback_failure
        finally:
            self._db._lock.release()
        # The block's own exceptions propagate as they are, SQLite's translated.
        if failure is not None and (failure is not exc or isinstance(exc, sqlite3.Error)):
            self._db._fail(failure)


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
            f"cannot open database {path!r} ({exc}): check that its directory "
            "exists and is writable"
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
