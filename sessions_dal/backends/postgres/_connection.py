"""PostgreSQL connections: a pool, the transaction runner, and psycopg's errors translated.

A :class:`Database` holds a ``psycopg_pool.ConnectionPool`` of autocommit
connections, so every transaction is explicit: :meth:`Database.write` issues
``BEGIN`` and ``COMMIT`` itself, and rolls back on any exception before the
connection goes back to the pool. Reads run statement by statement; a
snapshot runs in one ``REPEATABLE READ READ ONLY`` transaction.

Threads share the pool (``pool_size`` connections); a call holds one
connection for one transaction, never across a ``yield`` to user code.
``busy_timeout`` becomes the server's ``lock_timeout``: a call waiting for a
row lock longer raises :class:`DatabaseLockedError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..._store import call_state
from ...errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ReadOnlyDatabaseError,
    RepositoryClosedError,
)

__all__ = ["CONNECT_TIMEOUT", "Database", "describe"]

_T = TypeVar("_T")
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the server when opening a repository."""


def describe(url: str) -> str:
    """The URL without its password, as messages show it."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    host = info.get("host", "") or ""
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '') or ''}"


class Database:
    """A pool of connections to one database, and the transactions run on it."""

    def __init__(self, url: str, *, busy_timeout: float, pool_size: int, read_only: bool,
                 configure: Callable[[psycopg.Connection[Any]], None]) -> None:
        self.url = url
        self.path = describe(url)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._extra_configure = configure
        self._pid = os.getpid()
        self._busy = threading.local()  # per thread: inside a write of this database
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=max(busy_timeout, 1.0),
            # Checked as lent: a connection the server dropped (restart, killed
            # backend) is replaced instead of failing the call.
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True}, configure=self._configure,
            name="sessions_dal",
        )
        try:
            with translate_errors(self.path, busy_timeout):
                self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except BaseException:
            self._pool.close()
            self._pool = None
            raise

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT set_config('lock_timeout', %s, false)",
                     [f"{round(self.busy_timeout * 1000)}ms"])
        self._extra_configure(conn)
        if self.read_only:
            conn.execute("SELECT set_config('default_transaction_read_only', 'on', false)")

    @property
    def closed(self) -> bool:
        return self._pool is None

    def close(self) -> None:
        """Close the pool; later calls raise :class:`RepositoryClosedError`."""
        pool, self._pool = self._pool, None
        # In a child after fork() the pool's threads and connections are the
        # parent's: leave them alone.
        if pool is not None and os.getpid() == self._pid:
            pool.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if os.getpid() != self._pid:
            raise RepositoryClosedError(
                f"the repository for {self.path} was opened in process {self._pid} and "
                "cannot be used after fork(); open a new SessionRepository in this process"
            )
        pool = self._pool
        if pool is None:
            raise RepositoryClosedError(
                f"the repository for {self.path} is closed; open a new SessionRepository"
            )
        with translate_errors(self.path, self.busy_timeout), pool.connection() as conn:
            yield conn

    def read(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(conn, *args)``: each statement on its own, no transaction held."""
        with self._connection() as conn:
            return work(conn, *args)

    def fetchall(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """Every row of one query."""
        with self._connection() as conn:
            return conn.execute(sql, parameters).fetchall()

    def fetchone(self, sql: str, parameters: Sequence[object] = ()) -> Any:
        """The first row of one query (``None`` if there is none)."""
        with self._connection() as conn:
            return conn.execute(sql, parameters).fetchone()

    def write(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(conn, *args)`` in one transaction: ``BEGIN``, then ``COMMIT``.

        Any exception rolls it back before the connection goes back to the
        pool. The moment ``COMMIT`` returns is marked in
        :data:`sessions_dal._store.call_state`.
        """
        if self.read_only:
            raise ReadOnlyDatabaseError(
                f"the repository for {self.path} was opened with read_only=True; "
                "open it without read_only to change it"
            )
        if getattr(self._busy, "writing", False):
            # Another pooled connection would wait forever for the rows the
            # outer transaction holds.
            raise RuntimeError(
                "a sessions_dal write cannot start inside another call of the same "
                "repository (an import's lines or progress callback, an export's "
                "output); make it after that call returns"
            )
        self._busy.writing = True
        try:
            with self._connection() as conn:
                return _in_transaction(conn, work, args)
        finally:
            self._busy.writing = False

    def snapshot(self, work: Callable[[psycopg.Connection[Any], Callable[[], None]], _T]
                 ) -> _T:
        """Run ``work(conn, verify)`` in one read-only snapshot (REPEATABLE READ)."""
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return work(conn, _nothing)
            finally:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")


def _nothing() -> None:
    """A server's snapshot cannot be torn: nothing to verify."""


def _in_transaction(conn: psycopg.Connection[Any], work: Callable[..., _T],
                    args: tuple[Any, ...]) -> _T:
    conn.execute("BEGIN")
    try:
        result = work(conn, *args)
        try:
            conn.execute("COMMIT")
        except BaseException as failure:
            # Not the server's error: something arrived once COMMIT returned.
            if (not isinstance(failure, psycopg.Error)
                    and conn.info.transaction_status == TransactionStatus.IDLE):
                call_state.token.committed = True
            raise
        call_state.token.committed = True
        return result
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def translate_errors(path: str, busy_timeout: float) -> Iterator[None]:
    """Re-raise psycopg's errors as the library's."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailableError(
            f"no connection to {path} within {busy_timeout:g}s (the server is unreachable, "
            "or every pooled connection is busy): check the server, or raise pool_size or "
            "busy_timeout"
        ) from exc
    except psycopg.Error as exc:
        _raise_translated(exc, path, busy_timeout)


def _raise_translated(exc: psycopg.Error, path: str, busy_timeout: float) -> NoReturn:
    state = exc.sqlstate
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected,
                        pg_errors.SerializationFailure)):
        raise DatabaseLockedError(
            f"database {path} is locked: another connection held rows this call needs for "
            f"longer than busy_timeout={busy_timeout}s ({state}); retry, or open the "
            "repository with a larger busy_timeout"
        ) from exc
    if isinstance(exc, (pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientPrivilege)):
        raise ReadOnlyDatabaseError(
            f"database {path} cannot be written ({exc.diag.message_primary or exc}): the "
            "server is read-only, or this role may not write; nothing was changed"
        ) from exc
    if isinstance(exc, pg_errors.DiskFull):
        raise DiskFullError(
            f"database {path} is full ({exc.diag.message_primary}): free disk space on the "
            "server and retry; nothing was written"
        ) from exc
    if ((state is not None and state.startswith(("08", "57P")))
            or (state is None and isinstance(exc, (psycopg.OperationalError,
                                                  psycopg.InterfaceError)))):
        raise DatabaseUnavailableError(
            f"lost the connection to {path} ({str(exc).strip() or type(exc).__name__}): the "
            "server restarted, stopped or dropped it; a write that was under way may or may "
            "not have committed (read it back); the next call reconnects"
        ) from exc
    raise DatabaseError(f"PostgreSQL error on {path}: {str(exc).strip()} ({state})") from exc
