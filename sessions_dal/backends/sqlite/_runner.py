"""The SQLite backend's transaction runner: the one place of it that owns transactions.

A :class:`Database` holds a single ``sqlite3`` connection and a lock. Every
read runs under :meth:`Database.read` and every write under
:meth:`Database.write`, which issues ``BEGIN IMMEDIATE`` itself and commits or
rolls back; nothing else begins, commits or rolls back. Its ``sqlite3``
errors become the library's errors through ``_errors``; the connection comes
from ``_opening``.

Threading model: one connection per repository, shared by all threads and
serialised by a lock. SQLite serialises writers anyway, so a second connection
per thread would add setup cost and ``:memory:`` special cases for little gain;
processes coordinate through WAL and the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..._interrupts import call_state
from ...errors import (
    DatabaseError,
    ReadOnlyDatabaseError,
    RepositoryClosedError,
)
from ._errors import _raise_translated, translate_errors
from ._opening import Fingerprint, Opened

__all__ = ["Database", "in_read_transaction"]

# Connections left behind in a child process after fork(): closing them there
# could checkpoint or delete the parent's WAL, and letting the garbage
# collector close them would do the same, so they are kept here, unused.
_ABANDONED_AFTER_FORK: list[sqlite3.Connection] = []


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
