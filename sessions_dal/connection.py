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

import functools
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

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
    "COMMITTED_NOTE",
    "MAX_BUSY_TIMEOUT",
    "MIN_SQLITE_VERSION",
    "SYNCHRONOUS_LEVELS",
    "Connection",
    "Database",
    "open_connection",
    "open_read_only",
    "write_call",
]

# RETURNING (used by pop_item) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 16 * 1024
"""SQLite page cache per connection, in KiB."""

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


MAX_BUSY_TIMEOUT = 2_147_483.0
"""The longest ``busy_timeout`` SQLite can honour, in seconds: it counts in
milliseconds in a C ``int``, and a longer wait would silently become none."""

# Connections left behind in a child process after fork(): closing them there
# could checkpoint or delete the parent's WAL, and letting the garbage
# collector close them would do the same, so they are kept here, unused.
_ABANDONED_AFTER_FORK: list[sqlite3.Connection] = []


def open_connection(
    path: str,
    *,
    busy_timeout: float,
    synchronous: str,
    inspect: Callable[[sqlite3.Connection], object],
) -> sqlite3.Connection:
    """Open and configure the connection a read-write :class:`Database` uses.

    The connection runs in explicit transaction mode (``autocommit=True`` on
    Python 3.12+, ``isolation_level=None`` before): sqlite3 never opens a
    transaction behind our back, on any Python version. Foreign keys are on,
    the journal is WAL, and ``busy_timeout`` (seconds) bounds every lock wait.

    ``inspect`` runs first, before anything is written, and raises to refuse
    the file: switching to WAL rewrites header bytes, and a refused file
    (newer schema, foreign tables) must stay byte-identical.
    """
    conn = _connect(path, path, busy_timeout, uri=False)
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


def open_read_only(
    path: str,
    *,
    busy_timeout: float,
    inspect: Callable[[sqlite3.Connection], object],
) -> tuple[sqlite3.Connection, bool]:
    """Open ``path`` so that nothing is ever written to it or beside it.

    A missing file is an error, not a new database. A WAL file that no
    connection has open (no ``-shm`` beside it) is opened ``immutable``: a
    plain read-only open would create its ``-wal`` and ``-shm`` files.
    ``inspect`` runs before the first read and may refuse the file. Returns
    the connection and whether it is immutable (see :func:`shm_appeared`).
    """
    if not os.path.exists(path):
        raise DatabaseError(
            f"no database at {path!r}: a read-only repository never creates one; "
            "check the path"
        )
    immutable = _needs_immutable(path)
    options = "mode=ro&immutable=1" if immutable else "mode=ro"
    uri = f"file:{quote(os.path.abspath(path))}?{options}"
    conn = _connect(uri, path, busy_timeout, uri=True)
    try:
        with translate_errors(path, busy_timeout):
            # Temporary tables (see migrations.inspect_read_only) stay in memory,
            # never in a file.
            conn.execute("PRAGMA temp_store = MEMORY")
            inspect(conn)
    except BaseException:
        conn.close()
        raise
    return conn, immutable


def _needs_immutable(path: str) -> bool:
    """Whether ``path`` is a WAL database with no ``-shm`` file beside it."""
    if os.path.exists(path + "-shm"):
        return False
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    # Bytes 18 and 19 of the header are 2 in WAL mode.
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == b"\x02\x02"


def shm_appeared(path: str) -> Callable[[], bool]:
    """A check that turns true once another connection opens ``path`` in WAL mode."""
    shm = path + "-shm"
    return lambda: os.path.exists(shm)


def _connect(target: str, path: str, busy_timeout: float, *, uri: bool) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise UnsupportedSQLiteError(
            f"sessions_dal needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer, "
            f"but Python's sqlite3 uses SQLite {sqlite3.sqlite_version}; "
            "install a Python built against a newer SQLite"
        )
    with translate_errors(path, busy_timeout):
        if sys.version_info >= (3, 12):
            return sqlite3.connect(
                target, timeout=busy_timeout, check_same_thread=False, autocommit=True,
                uri=uri,
            )
        return sqlite3.connect(
            target, timeout=busy_timeout, check_same_thread=False, isolation_level=None,
            uri=uri,
        )


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

    Interrupts: a ``KeyboardInterrupt`` (or any exception a signal handler
    raises) may arrive after any call returns. Every path that takes the lock
    or opens a transaction undoes both before the exception leaves it, so the
    repository stays usable and the database unchanged. The one window Python
    leaves (an exception at the very entry of ``__exit__``) is repaired by the
    next call of the same thread, which finds the lock still its own and the
    transaction open, and rolls it back.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        busy_timeout: float,
        tables: Tables | None = None,
        reopen: Callable[[], sqlite3.Connection] | None = None,
        *,
        reopen_when: Callable[[], bool] | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self.tables = tables or Tables()
        self._conn: Connection | None = Connection(conn, self.tables.sql)
        # SQLite opens a file it cannot write read-only, and that connection
        # stays read-only after the file becomes writable again; so a
        # read-only error marks it stale and the next call opens a new one.
        self._reopen = reopen
        self._stale = False
        # An immutable read-only connection must be replaced once another
        # connection starts writing the file (see open_read_only).
        self._reopen_when = reopen_when
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
        leaves the database exactly as it was. The one exception, an interrupt
        arriving after ``COMMIT`` returned, is told apart by :func:`write_call`.
        """
        if self.read_only:
            raise ReadOnlyDatabaseError(
                f"the repository for {self.path!r} was opened with read_only=True; "
                "open it without read_only to change it"
            )
        return _Writing(self)

    def snapshot(self) -> AbstractContextManager[Connection]:
        """``with db.snapshot() as conn:`` runs reads that all see one point in time.

        A deferred transaction on a connection of its own, rolled back at the
        end, so it neither writes nor holds up the repository's other calls.
        A ``:memory:`` database has no second connection: its snapshot holds
        the repository's lock until the block ends.
        """
        if self._reopen is None:
            return _Writing(self, "BEGIN", "ROLLBACK")
        self._enter(None)  # checks process and closed state, under the lock
        try:
            raw = self._reopen()
        finally:
            self._leave(None)
        return _Snapshot(Connection(raw, self.tables.sql), self)

    def close(self) -> None:
        """Close the connection; later calls raise :class:`RepositoryClosedError`."""
        if os.getpid() != self._pid:
            # In a child after fork(): the lock may be held by a parent thread
            # that does not exist here, and the connection is the parent's.
            if self._conn is not None:
                _ABANDONED_AFTER_FORK.append(self._conn.raw)
                self._conn = None
            return
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.raw.close()

    def _open_conn(self) -> Connection:
        if self._conn is None:
            raise RepositoryClosedError(
                f"the repository for {self.path!r} is closed; open a new SessionRepository"
            )
        if self._reopen is not None and (
            self._stale or (self._reopen_when is not None and self._reopen_when())
        ):
            with translate_errors(self.path, self.busy_timeout):
                fresh = self._reopen()
            self._conn.raw.close()
            self._conn = Connection(fresh, self.tables.sql)
            self._stale = False
            self._reopen_when = None
        return self._conn

    def _enter(self, begin: str | None) -> Connection:
        """Take the lock, repair what an interrupted call left, and begin if asked.

        On any failure (an interrupt included) the lock is released and no
        transaction is left open before the exception propagates.
        """
        self._check_process()
        lock = self._lock
        try:
            # No call nests inside another, so owning the lock already means a
            # call of this thread was interrupted before it could let go.
            if not lock._is_owned():  # type: ignore[attr-defined]
                lock.acquire()
            conn = self._open_conn()
            raw = conn.raw
            if raw.in_transaction:  # left open by an interrupted call: undo it
                raw.execute("ROLLBACK")
            if begin is not None:
                raw.execute(begin)
        except BaseException as exc:
            self._leave(exc)
        return conn

    def _leave(self, failure: BaseException | None) -> None:
        """Roll back whatever is still open, release the lock, raise ``failure`` if any."""
        try:
            conn = self._conn
            if conn is not None and conn.raw.in_transaction:
                conn.raw.execute("ROLLBACK")
        except sqlite3.Error as rollback_failure:
            failure = failure or rollback_failure
        finally:
            if self._lock._is_owned():  # type: ignore[attr-defined]
                self._lock.release()
        if failure is not None:
            self._fail(failure)

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


COMMITTED_NOTE = "sessions_dal: this arrived after the write was committed; it was not undone"
"""The note an exception carries when it interrupted a write call whose
transaction had already committed (see :func:`write_call`)."""

# Per thread: whether the write call running in it has committed.
_call = threading.local()

_F = TypeVar("_F", bound=Callable[..., Any])


def write_call(method: _F) -> _F:
    """Mark a public method that writes, so an exception tells whether the write stayed.

    A write call that raises has changed nothing, with one exception: an
    interrupt (``KeyboardInterrupt``, or whatever a signal handler raises)
    arriving after its ``COMMIT`` succeeded. Such an exception carries
    :data:`COMMITTED_NOTE` in ``exc.__notes__``: the write is in the
    database. Without that note, it is not.
    """

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        _call.committed = False
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            if _call.committed and COMMITTED_NOTE not in getattr(exc, "__notes__", ()):
                _add_note(exc, COMMITTED_NOTE)
            raise

    return call  # type: ignore[return-value]


def _add_note(exc: BaseException, note: str) -> None:
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # the attribute add_note() fills in, for callers on 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined]


# Hand-written context managers rather than @contextmanager generators: they
# wrap every call, and the generator machinery cost more than the raw
# sqlite3 work of a small read (benchmarks/RESULTS.md, W3).


class _Reading:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Connection:
        return self._db._enter(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db._leave(exc if isinstance(exc, sqlite3.Error) else None)


class _Writing:
    __slots__ = ("_begin", "_db", "_end", "_raw")

    # IMMEDIATE takes the write lock now, waiting up to the busy timeout,
    # instead of failing later when a read upgrades.
    def __init__(self, db: Database, begin: str = "BEGIN IMMEDIATE", end: str = "COMMIT"
                 ) -> None:
        self._db = db
        self._begin = begin
        self._end = end

    def __enter__(self) -> Connection:
        conn = self._db._enter(self._begin)
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
                raw.execute(self._end)
                _call.committed = self._end == "COMMIT"
        except BaseException as end_failure:
            failure = end_failure
            # Not an SQLite error: something arrived once COMMIT had returned.
            if not isinstance(end_failure, sqlite3.Error) and not raw.in_transaction:
                _call.committed = self._end == "COMMIT"
        finally:
            # Rolls back what is still open (SQLite may already have, e.g. on
            # SQLITE_FULL) and releases the lock, even if interrupted again.
            self._db._leave(None)
        # The block's own exceptions propagate as they are, SQLite's translated.
        if failure is not None and (failure is not exc or isinstance(exc, sqlite3.Error)):
            self._db._fail(failure)


class _Snapshot:
    """A private connection in one read transaction; closed at the end."""

    __slots__ = ("_conn", "_db")

    def __init__(self, conn: Connection, db: Database) -> None:
        self._conn = conn
        self._db = db

    def __enter__(self) -> Connection:
        try:
            self._conn.raw.execute("BEGIN")
        except BaseException as exc:
            self._conn.raw.close()
            self._db._fail(exc)
        return self._conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing ends the read transaction; nothing was written to keep.
        self._conn.raw.close()
        if isinstance(exc, sqlite3.Error):
            self._db._fail(exc)


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
