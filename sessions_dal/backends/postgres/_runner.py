"""PostgreSQL's transaction runner: a pool, and the transactions run on it.

A :class:`Database` holds a ``psycopg_pool.ConnectionPool`` of autocommit
connections, so every transaction is explicit: :meth:`Database.write` issues
``BEGIN`` and ``COMMIT`` itself, and rolls back on any exception before the
connection goes back to the pool. Reads run statement by statement; a
snapshot runs in one ``REPEATABLE READ READ ONLY`` transaction.

Threads share the pool (``pool_size`` connections); a call holds one
connection for one transaction (an export, for its whole snapshot).
``busy_timeout`` becomes the server's ``lock_timeout``: a call waiting for a
row lock longer raises :class:`DatabaseLockedError`. While a connection is
lent, signal handlers are held back (:class:`~._signals.Hold`), so that an
exception they raise never lands inside psycopg's or the pool's bookkeeping.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..._interrupts import call_state
from ...errors import (
    DatabaseUnavailableError,
    ReadOnlyDatabaseError,
    RepositoryClosedError,
)
from ._errors import _interrupt_behind, _reason, translate_errors
from ._opening import _BAD_OPTION, _PINNED, CONNECT_TIMEOUT, _parse, describe
from ._signals import _HOLDS, Hold

__all__ = ["Database"]

_T = TypeVar("_T")

# psycopg_pool warns as it discards each connection a server restart broke;
# the call that met it retries or raises our own error, which says enough.
# With no handler anywhere, Python would print those warnings on stderr
# (logging's last resort): this handler stops only that. An app that sets
# up logging still gets them.
logging.getLogger("psycopg").addHandler(logging.NullHandler())


class Database:
    """A pool of connections to one database, and the transactions run on it."""

    def __init__(self, url: str, *, busy_timeout: float, pool_size: int, read_only: bool,
                 configure: Callable[[psycopg.Connection[Any]], None],
                 first: Callable[[psycopg.Connection[Any]], None] = lambda conn: None
                 ) -> None:
        given = _parse(url)
        self.url = url
        self.path = describe(url)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._extra_configure = configure
        self._pid = os.getpid()
        self._busy = threading.local()  # per thread: inside a write of this database
        # How long a call waits for a free pooled connection.
        self._wait = max(busy_timeout, 1.0)
        # statement_timeout 0 from the start (the URL's options kept): a
        # server's timeout of a millisecond would cancel even the statement
        # that pins the rest (_PINNED).
        options = f"{given.get('options') or ''} -c statement_timeout=0".strip()
        # client_encoding UTF8: psycopg encodes and decodes text in it whatever the
        # server's or role's default (LATIN1, SQL_ASCII) would be.
        self._kwargs: dict[str, Any] = {"autocommit": True, "options": options,
                                        "client_encoding": "UTF8"}
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=self._wait,
            kwargs=self._kwargs, configure=self._configure, name="sessions_dal",
        )
        # One connection first, outside the pool: a wrong address, database or
        # password fails now with the server's reason, where the pool would
        # retry until its timeout and report only that.
        timeout: dict[str, Any] = (
            {} if "connect_timeout" in given else {"connect_timeout": CONNECT_TIMEOUT})
        with translate_errors(self.path, busy_timeout):
            try:
                probe = psycopg.connect(url, **self._kwargs, **timeout)
            except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
                bad_option = _BAD_OPTION.search(str(exc))
                if bad_option:
                    raise ValueError(
                        f"the URL's options are wrong ({bad_option.group(0)}): see "
                        "https://www.postgresql.org/docs/current/libpq-connect.html"
                        "#LIBPQ-PARAMKEYWORDS"
                    ) from None
                if exc.sqlstate is not None and not exc.sqlstate.startswith("08"):
                    raise
                raise DatabaseUnavailableError(
                    f"cannot connect to {self.path} ({_reason(exc)}): check the URL, and "
                    "that the server is running and accepts connections from here"
                ) from exc
            # Its checks too (a read-only repository's inspection happens in
            # configure): a database to refuse is refused here, not in the
            # pool's background thread. ``first`` sees the connection's
            # settings as the server and the URL made them.
            try:
                first(probe)
                self._configure(probe)
            finally:
                probe.close()
        self._pool.open(wait=False)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # What the statements rely on, whatever the server's, database's or
        # role's defaults (one round trip, see _PINNED). Whole milliseconds, at
        # least 1: lock_timeout 0 would mean "wait forever".
        conn.execute(_PINNED, [f"{max(1, math.ceil(self.busy_timeout * 1000))}ms"])
        self._extra_configure(conn)
        # Not pinned off: a server or database made read-only on purpose stays so.
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
        # The hold is outermost: Ctrl-C is answered once the connection is
        # back in the pool, never halfway through lending or returning it.
        with Hold() as hold, translate_errors(self.path, self.busy_timeout, self._wait):
            conn = hold.conn = self._checkout(pool)
            try:
                yield conn
            except BaseException as exc:
                interrupt = exc if not isinstance(exc, Exception) else _interrupt_behind(exc)
                if interrupt is not None:
                    # Another signal handler's exception, or one psycopg turned
                    # into an error: psycopg's state after it (a pipeline half
                    # done, a reply half read) is not to be trusted. Closed, the
                    # connection's open transaction is rolled back by the server.
                    conn.close()
                    if interrupt is not exc:
                        raise interrupt from None
                raise
            finally:
                hold.conn = None
                try:
                    _abandon(conn)  # nothing half done goes back to the pool
                finally:
                    pool.putconn(conn)

    @contextmanager
    def running(self, callers_code: bool) -> Iterator[None]:
        """Mark what runs inside a call: the caller's code, or ours again.

        An export's output and an import's input are the caller's code, and
        may block (a full pipe, a terminal waiting for a line): a signal that
        arrives there is handed to its handler at once, as nothing of ours is
        half done. Our statements in between are ours: signals wait for them.
        """
        hold = _HOLDS[-1] if (_HOLDS and threading.current_thread()
                              is threading.main_thread()) else None
        if hold is None:
            yield
            return
        before, hold.callers_code = hold.callers_code, callers_code
        try:
            if callers_code:
                hold.deliver()
            yield
        finally:
            hold.callers_code = before
            if before:
                hold.deliver()

    def _checkout(self, pool: ConnectionPool[psycopg.Connection[Any]]
                  ) -> psycopg.Connection[Any]:
        """A pooled connection, one the server has dropped replaced at once.

        Done here rather than by the pool's ``check``, which costs a round trip
        per call and sleeps 1, 2, 4 s between the dead connections it finds
        (after a server restart, every pooled connection is dead).
        """
        deadline = time.monotonic() + self._wait
        conn = self._getconn(pool, deadline)
        if _has_died(conn):
            conn.close()
            pool.putconn(conn)  # closed: the pool discards and replaces it
            pool.check()  # its idle neighbours most likely died with it
            conn = self._getconn(pool, deadline)
        return conn

    def _getconn(self, pool: ConnectionPool[psycopg.Connection[Any]], deadline: float
                 ) -> psycopg.Connection[Any]:
        hold = _HOLDS[-1] if (_HOLDS and threading.current_thread()
                              is threading.main_thread()) else None
        if hold is None:
            return pool.getconn(max(deadline - time.monotonic(), 0.001))
        # In slices: a signal that arrives while every connection is busy is
        # handled at once (nothing is lent yet), not when one comes free.
        while True:
            left = deadline - time.monotonic()
            try:
                return pool.getconn(max(min(left, 0.05), 0.001))
            except PoolTimeout:
                if left <= 0.05:
                    raise
                hold.deliver()

    def _run(self, body: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``body(conn)`` on a pooled connection; again on a fresh one if the first was dead.

        ``body`` raises :class:`_Dropped` only when the connection turned out
        dead before anything could have changed: the server dropped it while
        it sat in the pool, and said so too late for :func:`_has_died`.
        """
        try:
            with self._connection() as conn:
                return body(conn)
        except _Dropped:
            pass
        with self._connection() as conn:
            try:
                return body(conn)
            except _Dropped as twice:  # the server is gone: say so
                raise twice.__cause__ from None  # type: ignore[misc]

    def read(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(conn, *args)``: each statement on its own, no transaction held."""
        return self._run(lambda conn: _reading(conn, work, *args))

    def fetchall(self, sql: str, parameters: _Parameters = ()) -> list[Any]:
        """Every row of one query."""
        return self._run(lambda conn: _reading(conn, _fetchall, sql, parameters))

    def fetchone(self, sql: str, parameters: _Parameters = ()) -> Any:
        """The first row of one query (``None`` if there is none)."""
        return self._run(lambda conn: _reading(conn, _fetchone, sql, parameters))

    def write(self, work: Callable[..., _T], *args: Any,
              first: tuple[str, Mapping[str, object]] | None = None) -> _T:
        """Run ``work(conn, *args)`` in one transaction: ``BEGIN``, then ``COMMIT``.

        With ``first`` (a statement and its parameters), that statement is
        sent with the ``BEGIN`` in one round trip, and ``work(conn, cursor,
        *args)`` gets its cursor: a call whose work is one statement costs two
        round trips (that, and ``COMMIT``) instead of three.
        Any exception rolls it back before the connection goes back to the
        pool. The moment ``COMMIT`` returns is marked in
        :data:`sessions_dal._interrupts.call_state`.
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
            return self._run(lambda conn: self._in_transaction(conn, work, args, first))
        finally:
            self._busy.writing = False

    def _in_transaction(self, conn: psycopg.Connection[Any], work: Callable[..., _T],
                        args: tuple[Any, ...], first: tuple[str, Mapping[str, object]] | None
                        ) -> _T:
        committing = False
        try:
            # The transaction's id comes with BEGIN (no extra round trip): if an
            # interrupt leaves the COMMIT's fate unknown, the server can tell.
            if first is not None and _PIPELINE:
                xid, opened = _begin_with(conn, *first)
                result = work(conn, opened, *args)
            else:
                # Two statements in one message: never server-prepared, which
                # refuses them.
                cursor = _first(conn, "BEGIN; SELECT txid_current()")
                cursor.nextset()
                xid = cursor.fetchone()[0]  # type: ignore[index]
                if first is None:
                    result = work(conn, *args)
                else:
                    result = work(conn, conn.execute(*first), *args)
            committing = True
            conn.execute("COMMIT")
        except BaseException as failure:
            # Rolled back on the way out (see _connection), unless the
            # interrupted COMMIT got through.
            if (committing and not isinstance(failure, psycopg.Error)
                    and self._committed(conn, xid)):
                call_state.token.committed = True
            raise
        call_state.token.committed = True
        return result

    def _committed(self, conn: psycopg.Connection[Any], xid: int) -> bool:
        """Whether an interrupted COMMIT took effect (it may have just reached the server)."""
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            return True  # its reply was read: committed
        conn.close()  # the reply is still on its way, or lost
        deadline = time.monotonic() + max(self.busy_timeout, 5.0)
        try:
            with psycopg.connect(self.url, **self._kwargs,
                                 connect_timeout=CONNECT_TIMEOUT) as other:
                while True:
                    row = other.execute("SELECT txid_status(%s)", [xid]).fetchone()
                    if row is None or row[0] != "in progress" or time.monotonic() > deadline:
                        return row is not None and row[0] == "committed"
                    time.sleep(0.01)
        except psycopg.Error:
            return False  # the server cannot say: the caller is told nothing was kept

    def snapshot(self, work: Callable[[psycopg.Connection[Any], Callable[[], None]], _T]
                 ) -> _T:
        """Run ``work(conn, verify)`` in one read-only snapshot (REPEATABLE READ)."""
        def body(conn: psycopg.Connection[Any]) -> _T:
            _first(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return work(conn, _nothing)

        return self._run(body)  # _connection rolls the snapshot back at the end


class _Dropped(Exception):
    """The connection was found dead before the call changed anything: run it again."""


def _first(conn: psycopg.Connection[Any], statement: str) -> psycopg.Cursor[Any]:
    """A call's first statement, which nothing can have preceded (never prepared)."""
    try:
        return conn.execute(statement, prepare=False)
    except psycopg.OperationalError as exc:
        if conn.closed:
            raise _Dropped from exc
        raise


_Parameters = Sequence[object] | Mapping[str, object]

_PIPELINE = psycopg.Pipeline.is_supported()
"""Whether this libpq can send statements without waiting for each reply (libpq 14+)."""


def _begin_with(conn: psycopg.Connection[Any], statement: str,
                parameters: Mapping[str, object]) -> tuple[int, psycopg.Cursor[Any]]:
    """``BEGIN``, the transaction's id and a call's first statement, in one round trip.

    A connection found dead before ``BEGIN`` was answered was dropped while
    it sat in the pool: :class:`_Dropped` (the call runs again). One that
    dies later is a lost connection mid-write, as for any other statement.
    """
    begin: psycopg.Cursor[Any] | None = None
    try:
        with conn.pipeline():
            begin = conn.execute("BEGIN", prepare=False)
            xid = conn.execute("SELECT txid_current()", prepare=False)
            cursor = conn.execute(statement, parameters)
    except psycopg.OperationalError as exc:
        answered = begin is not None and begin.pgresult is not None and (
            begin.pgresult.status == pq.ExecStatus.COMMAND_OK)
        if conn.closed and not answered:
            raise _Dropped from exc
        raise
    return xid.fetchone()[0], cursor  # type: ignore[index]


def _reading(conn: psycopg.Connection[Any], work: Callable[..., _T], *args: Any) -> _T:
    """Run reads: should the connection turn out dead, they can simply run again."""
    try:
        return work(conn, *args)
    except psycopg.OperationalError as exc:
        if conn.closed:
            raise _Dropped from exc
        raise


def _fetchall(conn: psycopg.Connection[Any], sql: str, parameters: _Parameters
              ) -> list[Any]:
    return conn.execute(sql, parameters).fetchall()


def _fetchone(conn: psycopg.Connection[Any], sql: str, parameters: _Parameters) -> Any:
    return conn.execute(sql, parameters).fetchone()


def _nothing() -> None:
    """A server's snapshot cannot be torn: nothing to verify."""


def _has_died(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection was dropped by the server, asking the socket only.

    A server that stops, restarts or terminates a backend says so on the
    socket (a message, then end of file): an idle connection that has
    anything to read is gone. No round trip; a connection lost without a word
    (a network cut) shows only when used, and that call fails.
    """
    if conn.closed:
        return True
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        return True


def _abandon(conn: psycopg.Connection[Any]) -> None:
    """End a transaction that failed or was interrupted, keeping nothing of it.

    Raises nothing of its own (the exception on its way out is the one the
    caller sees), only an interrupt that arrives meanwhile.
    """
    if conn.closed:
        return
    if conn.info.transaction_status == TransactionStatus.ACTIVE:
        # Interrupted while the server runs a statement: closing is the only
        # clean way out; the server rolls the transaction back.
        conn.close()
        return
    if conn.info.transaction_status != TransactionStatus.IDLE:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            conn.close()
        except BaseException:
            conn.close()
            raise
