"""SQLite connections, and the one place of the backend that owns transactions.

A :class:`Database` holds a single ``sqlite3`` connection and a lock. Every
read runs under :meth:`Database.read` and every write under
:meth:`Database.write`, which issues ``BEGIN IMMEDIATE`` itself and commits or
rolls back; nothing else begins, commits or rolls back. ``sqlite3`` errors
become the library's errors here, and nowhere else.

Threading model: one connection per repository, shared by all threads and
serialised by a lock. SQLite serialises writers anyway, so a second connection
per thread would add setup cost and ``:memory:`` special cases for little gain;
processes coordinate through WAL and the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

from ..._interrupts import call_state
from ...errors import (
    DatabaseError,
    DatabaseLockedError,
    DiskFullError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    Remedy,
    RepositoryClosedError,
    UnsupportedSQLiteError,
)

__all__ = [
    "CACHE_KIB",
    "MAX_BUSY_TIMEOUT",
    "MIN_SQLITE_VERSION",
    "SYNCHRONOUS_LEVELS",
    "Database",
    "Fingerprint",
    "Opened",
    "in_read_transaction",
    "open_connection",
    "open_read_only",
    "translate_errors",
]

# RETURNING (used by pop_item) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 16 * 1024
"""SQLite page cache per connection, in KiB."""

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
# SQLITE_READONLY_RECOVERY and SQLITE_READONLY_ROLLBACK: a read-only connection
# met a hot journal or WAL that must be recovered first.
_NEEDS_RECOVERY = (_SQLITE_READONLY | 1 << 8, _SQLITE_READONLY | 3 << 8)


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

    The connection runs with ``isolation_level=None`` (and legacy transaction
    control, said explicitly on Python 3.12+): sqlite3 never opens a
    transaction behind our back, on any Python version. Foreign keys are on,
    the journal is WAL, and ``busy_timeout`` (seconds) bounds every lock wait.

    ``inspect`` runs first, before anything is written, and raises to refuse
    the file: switching to WAL rewrites header bytes, and a refused file
    (newer schema, foreign tables) must stay byte-identical.
    """
    if path != ":memory:" and not path.startswith("file:"):
        _check_kind(path, allow_devices=False)
        _check_writable(path)
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
            # Deleted cells and freed pages are zeroed, not left for a hex
            # editor (many builds default to this; not all do).
            conn.execute("PRAGMA secure_delete = ON")
            _enable_wal(conn, busy_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


Fingerprint = Callable[[], object]
"""Returns something that differs once a file has changed."""
Opened = tuple[sqlite3.Connection, Fingerprint | None]
"""A fresh connection, and the fingerprint to watch if it cannot see changes."""


def open_read_only(
    path: str,
    *,
    busy_timeout: float,
    inspect: Callable[[sqlite3.Connection], object],
) -> Opened:
    """Open ``path`` so that nothing is ever written to it or beside it.

    A missing file is an error, not a new database. A WAL file whose ``-wal``
    is absent or empty holds everything in the file itself; a plain read-only
    open would still create ``-wal`` and ``-shm`` beside it, so it is opened
    ``immutable`` instead. The fingerprint returned with the connection tells
    when it must be replaced: for an immutable one, once the file changes at
    all; for any other, once the path names another file (replaced, moved).
    ``inspect`` runs before the first read and may refuse the file.
    """
    if not os.path.exists(path):
        raise DatabaseError(
            f"no database at {path!r}: a read-only repository never creates one; "
            "check the path"
        )
    _check_kind(path, allow_devices=True)
    real = os.path.realpath(path)
    try:
        immutable = _needs_immutable(path, real)
    except OSError as exc:
        raise DatabaseError(
            f"cannot read database {path!r} ({exc.strerror or exc}): check that this process "
            "may read the file"
        ) from None
    options = "mode=ro&immutable=1" if immutable else "mode=ro"
    conn = _connect(f"file:{quote(real)}?{options}", path, busy_timeout, uri=True)
    try:
        with translate_errors(path, busy_timeout):
            # Temporary tables (see _schema.inspect_read_only) stay in memory,
            # never in a file.
            conn.execute("PRAGMA temp_store = MEMORY")
            inspect(conn)
    except BaseException:
        conn.close()
        raise
    return conn, (_fingerprint(real) if immutable else _identity(real))


def _needs_immutable(path: str, real: str) -> bool:
    """Whether ``real`` is a WAL database with nothing in a ``-wal`` file beside it."""
    if not os.path.isfile(real):
        return False
    with open(real, "rb") as file:
        header = file.read(20)
    # Bytes 18 and 19 of the header are 2 in WAL mode.
    if not header.startswith(b"SQLite format 3\x00") or header[18:20] != b"\x02\x02":
        return False
    if _size(real + "-wal") <= 0:
        return True
    if os.path.exists(real + "-shm"):
        return False  # a WAL and its index: read them as any reader does
    raise DatabaseError(
        f"{path!r} has changes in its -wal file but no -shm index beside it (a copied "
        "or crashed database): reading it would mean writing that index; open it "
        "read-write once to recover it, then read it"
    )


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def _identity(real: str) -> Fingerprint:
    """Which file ``real`` names: changes when the file is replaced or moved away."""

    def identity() -> object:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    return identity


def _fingerprint(real: str) -> Fingerprint:
    """What changes when a writer touches the file: its identity, size, time, WAL size."""

    def fingerprint() -> object:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, _size(real + "-wal"))

    return fingerprint


def _check_kind(path: str, *, allow_devices: bool) -> None:
    """Refuse what is not a database file: a directory, a pipe, a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise DatabaseError(f"{path!r} is a directory, not a database file; name a file in it")
    if not (stat.S_ISREG(mode) or (allow_devices and stat.S_ISCHR(mode))):
        raise DatabaseError(
            f"{path!r} is not a regular file (a pipe, a socket or a device), so it cannot "
            "hold a database; name a file"
        )


def _check_writable(path: str) -> None:
    """Refuse, before SQLite opens it, a file this process may read but not write.

    SQLite would open it read-only, and, the file being in WAL mode, leave
    ``-wal`` and ``-shm`` files beside it that it cannot remove (it cannot
    checkpoint); every write would then fail anyway.
    """
    effective = os.access in os.supports_effective_ids
    for suffix in ("", "-wal", "-shm"):
        name = path + suffix
        if os.path.exists(name) and not os.access(name, os.W_OK, effective_ids=effective):
            which = f"its {suffix} file" if suffix else "it"
            raise ReadOnlyDatabaseError(
                f"database {path!r} is read-only to this process ({which}, by mode or "
                "owner), so nothing was opened or created", Remedy.OPEN_READ_ONLY
            )


def _connect(target: str, path: str, busy_timeout: float, *, uri: bool) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise UnsupportedSQLiteError(
            f"sessions_dal needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer, "
            f"but Python's sqlite3 uses SQLite {sqlite3.sqlite_version}; "
            "install a Python built against a newer SQLite"
        )
    # isolation_level=None: sqlite3 never begins a transaction by itself, and
    # the connection's own context manager commits or rolls back (in C) only
    # what we began. Said explicitly on 3.12+, where the default may change.
    options: dict[str, Any] = {"isolation_level": None}
    if sys.version_info >= (3, 12):
        options["autocommit"] = sqlite3.LEGACY_TRANSACTION_CONTROL
    with translate_errors(path, busy_timeout):
        conn: sqlite3.Connection = sqlite3.connect(
            target, timeout=busy_timeout, check_same_thread=False, uri=uri, **options
        )
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


_T = TypeVar("_T")
_getpid = os.getpid
_EMPTY_WAL_WAIT = 0.1
"""Seconds :meth:`Database.empty_wal` waits for other connections to finish."""


class Database:
    """One connection, its lock, and the transactions run on it.

    Safe to share between threads: :meth:`read` and :meth:`write` hold the
    lock for the length of one piece of work, never across a ``yield`` to
    user code. The work gets the ``sqlite3`` connection.

    Interrupts: a ``KeyboardInterrupt`` (or any exception a signal handler
    raises) may arrive whenever a call returns or a Python function starts.
    So the lock is taken and released by a ``with`` on the lock itself, and
    the transaction is rolled back by a ``with`` on the ``sqlite3``
    connection: both exits run in C, where nothing can interrupt them, and no
    Python function runs between a failure and the rollback and release.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        busy_timeout: float,
        reopen: Callable[[], Opened] | None = None,
        *,
        fingerprint: Fingerprint | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = conn
        # SQLite opens a file it cannot write read-only, and that connection
        # stays read-only after the file becomes writable again; so a
        # read-only error marks it stale and the next call opens a new one.
        self._reopen = reopen
        self._stale = False
        # An immutable read-only connection (see open_read_only) sees the file
        # as it was: once the file changes, the next call opens a new one.
        self._fingerprint = fingerprint
        self._seen = None if fingerprint is None else fingerprint()
        # Whether a call must look before it uses the connection (hot path).
        self._care = fingerprint is not None
        self._lock = threading.RLock()
        self._pid = os.getpid()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._conn is None

    def read(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(conn, *args)`` under the lock, outside any transaction.

        A call made from inside another call of the same thread (an import's
        progress callback, say) runs inside that call's transaction.
        """
        # This prologue is repeated in write(), not shared: the lock must be
        # taken by a `with` in the frame that does the work (see the class).
        if _getpid() != self._pid:
            self._check_process()
        lock = self._lock
        nested = lock._is_owned()  # type: ignore[attr-defined]
        try:
            with lock:
                conn = self._conn
                if conn is None or self._care or (not nested and conn.in_transaction):
                    conn = self._ready(nested)
                if self._fingerprint is None or nested:
                    return work(conn, *args)
                return self._read_watched(conn, work, args)
        except sqlite3.Error as exc:
            self._fail(exc)

    def _read_watched(self, conn: sqlite3.Connection, work: Callable[..., _T],
                      args: tuple[Any, ...]) -> _T:
        """Read through a read-only connection that may not see the file change.

        If the file changed during the read (a writer checkpointed under an
        immutable connection, or the file was replaced), what was read may be
        torn: read again through a fresh connection.
        """
        for attempt in range(3):
            try:
                result = work(conn, *args)
            except sqlite3.Error:
                if attempt == 2 or not self._changed():
                    raise
            else:
                if attempt == 2 or not self._changed():
                    return result
            conn = self._ready(nested=False)  # reopens: the file changed
        raise AssertionError("not reached")  # pragma: no cover

    def fetchall(self, sql: str, parameters: Sequence[object] | Mapping[str, object] = ()
                 ) -> list[Any]:
        """Every row of one query, under the lock."""
        rows: list[Any] = self.read(_fetchall, sql, parameters)
        return rows

    def fetchone(self, sql: str, parameters: Sequence[object] | Mapping[str, object] = ()
                 ) -> Any:
        """The first row of one query (``None`` if there is none), under the lock."""
        rows = self.fetchall(sql, parameters)
        return rows[0] if rows else None

    def write(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(conn, *args)`` in one transaction: ``BEGIN IMMEDIATE``, then commit.

        Any exception, ``KeyboardInterrupt`` included, rolls the whole
        transaction back before it propagates, so a failed write leaves the
        database exactly as it was; the moment ``COMMIT`` returns is marked in
        :data:`sessions_dal._interrupts.call_state`.
        """
        if self.read_only:
            raise ReadOnlyDatabaseError(
                f"the repository for {self.path!r} was opened with read_only=True; "
                "open it without read_only to change it"
            )
        if _getpid() != self._pid:
            self._check_process()
        lock = self._lock
        nested = lock._is_owned()  # type: ignore[attr-defined]
        try:
            with lock:
                conn = self._conn
                if conn is None or self._care or (not nested and conn.in_transaction):
                    conn = self._ready(nested)
                if nested:
                    raise RuntimeError(
                        "a sessions_dal write cannot start inside another call of the same "
                        "repository (an import's lines or progress callback, an export's "
                        "output); make it after that call returns"
                    )
                # IMMEDIATE takes the write lock now, waiting up to the busy
                # timeout, instead of failing later when a read upgrades.
                with conn:  # its C-level exit rolls back on any exception
                    conn.execute("BEGIN IMMEDIATE")
                    result = work(conn, *args)
                    try:
                        conn.execute("COMMIT")
                    except BaseException as failure:
                        # Not SQLite's error: something arrived once COMMIT returned.
                        if not isinstance(failure, sqlite3.Error) and not conn.in_transaction:
                            call_state.token.committed = True
                        raise
                    call_state.token.committed = True
                return result
        except sqlite3.Error as exc:
            self._fail(exc)

    def empty_wal(self) -> None:
        """Best effort: copy the WAL into the file and truncate it to nothing.

        The WAL keeps pages as they were before a write, deleted texts
        included, until a checkpoint resets it. This runs on a connection of
        its own with a short timeout: if another connection is reading or
        writing at that moment, it gives up, and the next one (or the last
        close) finishes the job. Errors are ignored: the delete has committed.
        """
        with self._lock:
            if self._conn is None:
                return
            # The file SQLite has open, by its full name: never another one
            # (the working directory may have changed), and never created.
            try:
                file = self._conn.execute("PRAGMA database_list").fetchone()[2]
            except sqlite3.Error:
                return
        if not file:  # in memory
            return
        try:
            conn = sqlite3.connect(f"{Path(file).as_uri()}?mode=rw", uri=True,
                                   timeout=_EMPTY_WAL_WAIT, isolation_level=None)
        except (sqlite3.Error, ValueError):
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    def snapshot(self, work: Callable[[sqlite3.Connection, Callable[[], None]], _T]) -> _T:
        """Run ``work(conn, verify)`` on reads that all see one point in time.

        A read transaction on a connection of its own, so it neither writes
        nor holds up the repository's other calls. A ``:memory:`` database has
        no second connection: its snapshot holds the repository's lock.
        ``verify()`` raises if an immutable read-only connection saw the file
        change meanwhile (its reads may then be torn).
        """
        self._check_process()
        if self._reopen is None:
            result: _T = self.read(in_read_transaction, work)
            return result
        with self._lock:
            self._ready(nested=True)  # closed? (no reopen, no repair)
        verify = _nothing
        try:
            conn, fingerprint = self._reopen()
            try:
                verify = _verifier(self.path, fingerprint)
                conn.execute("BEGIN")
                return work(conn, verify)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            verify()  # a read torn by a writer: say so, rather than "damaged"
            self._fail(exc)

    def close(self) -> None:
        """Close the connection; later calls raise :class:`RepositoryClosedError`."""
        if os.getpid() != self._pid:
            # In a child after fork(): the lock may be held by a parent thread
            # that does not exist here, and the connection is the parent's.
            if self._conn is not None:
                _ABANDONED_AFTER_FORK.append(self._conn)
                self._conn = None
            return
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def _ready(self, nested: bool) -> sqlite3.Connection:
        """The open connection, renewed or repaired if needed (never when nested)."""
        conn = self._conn
        if conn is None:
            raise RepositoryClosedError(
                f"the repository for {self.path!r} is closed; open a new SessionRepository"
            )
        if nested:
            return conn
        if self._reopen is not None and (self._stale or self._changed()):
            with translate_errors(self.path, self.busy_timeout):
                fresh, self._fingerprint = self._reopen()
            conn.close()
            conn = self._conn = fresh
            self._stale = False
            self._seen = None if self._fingerprint is None else self._fingerprint()
            self._care = self._fingerprint is not None
        if conn.in_transaction:  # left by a rollback that failed: undo it now
            conn.rollback()
        return conn

    def _changed(self) -> bool:
        return self._fingerprint is not None and self._fingerprint() != self._seen

    def _fail(self, exc: sqlite3.Error) -> NoReturn:
        """Raise the library error an SQLite error stands for."""
        try:
            _raise_translated(exc, self.path, self.busy_timeout)
        except ReadOnlyDatabaseError:
            self._stale = self._care = True
            raise

    def _check_process(self) -> None:
        # A connection must not cross fork(): the child would share the
        # parent's file locks and could corrupt the database. Checked before
        # taking the lock, which a vanished parent thread may hold forever.
        if os.getpid() != self._pid:
            raise RepositoryClosedError(
                f"the repository for {self.path!r} was opened in process {self._pid} and "
                "cannot be used after fork(); open a new SessionRepository in this process"
            )


def _nothing() -> None:
    """A verifier for connections that cannot go stale."""


def _fetchall(conn: sqlite3.Connection, sql: str,
              parameters: Sequence[object] | Mapping[str, object]) -> list[Any]:
    return conn.execute(sql, parameters).fetchall()


def _verifier(path: str, fingerprint: Fingerprint | None) -> Callable[[], None]:
    if fingerprint is None:
        return _nothing
    seen = fingerprint()

    def verify() -> None:
        if fingerprint() != seen:
            raise DatabaseError(
                f"{path!r} was changed by a writer while this read-only repository read it "
                "without locks, so what was read may be inconsistent; run it again"
            )

    return verify


def in_read_transaction(
    conn: sqlite3.Connection, work: Callable[[sqlite3.Connection, Callable[[], None]], _T]
) -> _T:
    """Run ``work(conn, verify)`` in one read transaction of ``conn`` (``Database.read``'s)."""
    with conn:  # the C-level exit ends the read transaction whatever happens
        conn.execute("BEGIN")
        return work(conn, _nothing)


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
