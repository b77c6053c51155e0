"""PostgreSQL connections: a pool, the transaction runner, and psycopg's errors translated.

A :class:`Database` holds a ``psycopg_pool.ConnectionPool`` of autocommit
connections, so every transaction is explicit: :meth:`Database.write` issues
``BEGIN`` and ``COMMIT`` itself, and rolls back on any exception before the
connection goes back to the pool. Reads run statement by statement; a
snapshot runs in one ``REPEATABLE READ READ ONLY`` transaction.

Threads share the pool (``pool_size`` connections); a call holds one
connection for one transaction (an export, for its whole snapshot).
``busy_timeout`` becomes the server's ``lock_timeout``: a call waiting for a
row lock longer raises :class:`DatabaseLockedError`. While a connection is
lent, signal handlers are held back (:class:`_Hold`), so that an exception
they raise never lands inside psycopg's or the pool's bookkeeping.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..._interrupts import call_state
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

# psycopg_pool warns as it discards each connection a server restart broke;
# the call that met it retries or raises our own error, which says enough.
# With no handler anywhere, Python would print those warnings on stderr
# (logging's last resort): this handler stops only that. An app that sets
# up logging still gets them.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when opening a repository (unless the URL's
``connect_timeout`` says otherwise)."""


# libpq's words for an option it cannot use (no password in them).
_BAD_OPTION = re.compile(r"(invalid \w+ value: \"[^\"]*\"|bad value for \w+: '[^']*')")


def _parse(url: str) -> dict[str, Any]:
    """The URL's parts, or ``ValueError`` saying what is wrong (never quoting the URL)."""
    if _misread(url):
        raise ValueError(
            "path is not a valid PostgreSQL URL: its user or password holds an '@' or a "
            "'/' as it is, which moves the host and database into the password; write "
            "them percent-encoded (@ as %40, / as %2F, : as %3A)"
        )
    problem = None
    try:
        return psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # libpq quotes the part it cannot read, which may hold the password.
        problem = _reason(exc).split(":")[0].split(" in URI")[0]
    raise ValueError(
        f"path is not a valid PostgreSQL URL ({problem}); the form is "
        "postgresql://user[:password]@host[:port]/database[?option=value&...]"
    )


def _misread(url: str) -> bool:
    """Whether libpq would read part of the password as the host, port or database.

    A password with an unencoded ``/`` ends the host part early (the rest of
    the password becomes the database name), and a second ``@`` puts the end
    of the password into the host name: messages would then show it.
    """
    rest = url.split("://", 1)[-1].split("?", 1)[0]
    netloc, _, path = rest.partition("/")
    return netloc.count("@") > 1 or "@" in path


def describe(url: str) -> str:
    """The URL without its password, as messages show it."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    if _misread(url) or not all(part.isdigit() for part in
                                str(info.get("port") or "0").split(",")):
        return "postgresql://…"  # the parts may hold pieces of the password
    host = info.get("host", "") or ""
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    # The options (a search_path, say) tell apart two repositories on one database.
    options = f"?options={info['options']}" if info.get("options") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '') or ''}{options}"


# Set on every connection, session-wide, in one statement:
# - search_path: pg_catalog, pg_temp. Every table of ours is named with its
#   schema (see _sql.py), so no name, function or operator resolves to one
#   another role created in a schema it may write to; pg_temp last, so that a
#   temporary table never stands in for ours.
# - default_transaction_isolation: read committed, which every write's lock
#   order is designed for (docs/concurrency.md); under repeatable read or
#   serializable, concurrent appends would fail instead of waiting their turn.
# - statement_timeout 0 (also set at connect, see Database): busy_timeout
#   (lock_timeout) bounds waiting; a large write, a prune or a migration must
#   not be cut short halfway through. idle_in_transaction_session_timeout 0:
#   an export's snapshot waits while the caller's code takes each line.
# - TimeZone is left as the connection starts: openai-agents' naive times are
#   local times of that zone (see _sql.py); timestamptz values come back in
#   it, and the store converts them to UTC.
# - DateStyle, IntervalStyle: ISO; times travel as text in keyset pages.
# - standard_conforming_strings on: the schema's literals hold backslashes;
#   quote_all_identifiers off: type names are compared as format_type spells them.
_PINNED = (
    "SELECT set_config('search_path', 'pg_catalog, pg_temp', false), "
    "set_config('default_transaction_isolation', 'read committed', false), "
    "set_config('statement_timeout', '0', false), "
    "set_config('idle_in_transaction_session_timeout', '0', false), "
    "set_config('lock_timeout', %s, false), "
    "set_config('DateStyle', 'ISO, MDY', false), "
    "set_config('IntervalStyle', 'postgres', false), "
    "set_config('standard_conforming_strings', 'on', false), "
    "set_config('quote_all_identifiers', 'off', false)"
)


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
        with _Hold() as hold, translate_errors(self.path, self.busy_timeout, self._wait):
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


# The C functions behind the signal module's: without its enum conversions, a
# hold costs about 2 µs instead of 100 (CPython; elsewhere, the module itself).
try:
    _signals: Any = importlib.import_module("_signal")
except ImportError:  # pragma: no cover
    _signals = signal
_SIGINT = int(signal.SIGINT)
# The signals an application may give a Python handler that raises (Ctrl-C's
# KeyboardInterrupt, a SIGTERM that exits, a SIGALRM timeout, ...).
_HELD = tuple(int(getattr(signal, name)) for name in (
    "SIGINT", "SIGTERM", "SIGALRM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGVTALRM",
    "SIGPROF") if hasattr(signal, name))

_HOLDS: list[_Hold] = []
"""The holds in force in the main thread, innermost last."""


class _Hold:
    """Hold signal handlers back while a call has a pooled connection.

    psycopg and psycopg_pool are Python: an exception raised by a signal
    handler in the middle of their bookkeeping would lose the connection for
    good (the pool counts it as lent forever) or leave it halfway through a
    reply. So while a call has a connection, the handlers of the signals in
    ``_HELD`` only record the signal; each is handed to its own handler (which
    may raise) once the connection is back in the pool, or earlier where
    stopping is clean: while the call waits for a pooled connection, or while
    the caller's own code runs (see :meth:`Database.running`). For Ctrl-C, whose handler is known to
    raise, the statement the server is running is also cancelled, so that the
    call ends at once. Signals reach the main thread only; elsewhere there is
    nothing to hold.
    """

    def __init__(self) -> None:
        self.conn: psycopg.Connection[Any] | None = None
        self.caught: list[tuple[int, Any]] = []
        self.previous: dict[int, Any] = {}
        self.callers_code = False
        """The caller's code is running (an export's output, an import's input)."""
        self.active = False
        """Put in place and not yet over: only then are signals held."""

    def __enter__(self) -> _Hold:
        if threading.current_thread() is not threading.main_thread():
            return self
        # A handler may raise at any moment, so putting the hold in place and
        # taking it away may each stop halfway. What that leaves (a hold
        # in _HOLDS or a handler of a hold that is over) passes signals on,
        # as if it were not there, and is cleared here, at the next call.
        if _HOLDS and not _HOLDS[-1].active:
            _HOLDS[:] = [hold for hold in _HOLDS if hold.active]
        try:
            for number in _HELD:
                previous = _signals.getsignal(number)
                while isinstance(getattr(previous, "__self__", None), _Hold) and not (
                        previous.__self__.active):
                    previous = previous.__self__.previous[number]
                if callable(previous):  # SIG_IGN, SIG_DFL: nothing runs in Python
                    self.previous[number] = previous
                    _signals.signal(number, self._catch)
            if self.previous:
                self.active = True  # from here on, signals are only recorded
                _HOLDS.append(self)
        except BaseException:
            # signal.signal() runs the handlers of pending signals first, and
            # one may raise (a SIGALRM timeout): no connection is lent yet.
            self.active = False
            self._uninstall()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.active:
            return
        # The connection is back in the pool: signals go to their handlers
        # again, first those held, in order (the first may raise).
        self.active = False
        try:
            self.deliver()
        finally:
            if self in _HOLDS:
                _HOLDS.remove(self)
            self._uninstall()

    def _uninstall(self) -> None:
        first: BaseException | None = None
        for number, previous in self.previous.items():
            while _signals.getsignal(number) == self._catch:
                try:
                    _signals.signal(number, previous)
                except BaseException as exc:  # a pending signal's handler ran, and raised
                    first = first or exc
        if first is not None:
            raise first

    def _catch(self, number: int, frame: Any) -> None:
        if self.callers_code or not self.active:
            # Nothing of ours is half done, or no connection is lent (the
            # hold is being put in place, or is over): the handler runs now.
            self.previous[number](number, frame)
            return
        self.caught.append((number, frame))
        conn = self.conn
        if (number == _SIGINT and self.previous[number] is signal.default_int_handler
                and conn is not None and not conn.closed
                and conn.info.transaction_status == TransactionStatus.ACTIVE):
            # If the cancel fails, the statement runs to its end: a delay, no harm.
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=CONNECT_TIMEOUT)

    def deliver(self) -> None:
        """Hand the held signals to their handlers, in order (the first may raise)."""
        while self.caught:
            number, frame = self.caught.pop(0)
            self.previous[number](number, frame)


@contextmanager
def translate_errors(path: str, busy_timeout: float, wait: float | None = None
                     ) -> Iterator[None]:
    """Re-raise psycopg's errors as the library's (``wait``: for a pooled connection)."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailableError(
            f"no connection to {path} within {wait or busy_timeout:g}s (the server is "
            "unreachable, or every pooled connection is busy): check the server, or raise "
            "pool_size or busy_timeout"
        ) from exc
    except psycopg.Error as exc:
        interrupt = _interrupt_behind(exc)
        if interrupt is not None:
            raise interrupt from None
        _raise_translated(exc, path, busy_timeout)


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The interrupt psycopg turned into this error, if it did.

    A ``KeyboardInterrupt`` during ``executemany`` surfaces as "cannot exit
    pipeline mode while busy", with the interrupt as its context: the caller
    pressed Ctrl-C, and must see that, not a database error.
    """
    seen = exc.__context__
    while seen is not None:
        if not isinstance(seen, Exception):
            return seen
        seen = seen.__context__
    return None


def _raise_translated(exc: psycopg.Error, path: str, busy_timeout: float) -> NoReturn:
    state = exc.sqlstate
    if isinstance(exc, pg_errors.DeadlockDetected):
        raise DatabaseLockedError(
            f"database {path}: this call and another connection each waited for rows the "
            f"other held ({state}, a deadlock; PostgreSQL cancelled this one); nothing was "
            "changed: retry"
        ) from exc
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.SerializationFailure)):
        raise DatabaseLockedError(
            f"database {path} is locked: another connection held rows this call needs for "
            f"longer than busy_timeout={busy_timeout}s ({state}); retry, or open the "
            "repository with a larger busy_timeout"
        ) from exc
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        raise ReadOnlyDatabaseError(
            f"database {path} cannot be written ({exc.diag.message_primary or exc}): the "
            "server is a read-only standby, or default_transaction_read_only is on for the "
            "database or role; nothing was changed"
        ) from exc
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        raise ReadOnlyDatabaseError(
            f"database {path}: this role may not do what the call needs "
            f"({exc.diag.message_primary or exc}); the tables' owner can give it an app's "
            "rights with 'sessions-dal grant ROLE --apply'; nothing was changed"
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
            f"lost the connection to {path} ({_reason(exc)}): the "
            "server restarted, stopped or dropped it; a write that was under way may or may "
            "not have committed (read it back); the next call reconnects"
        ) from exc
    if isinstance(exc, pg_errors.InvalidSchemaName):
        raise DatabaseError(
            f"PostgreSQL error on {path}: {_reason(exc)} ({state}): the schema the URL's "
            "search_path names does not exist; create it (CREATE SCHEMA name) or fix "
            "options=-csearch_path"
        ) from exc
    raise DatabaseError(f"PostgreSQL error on {path}: {_reason(exc)} ({state})") from exc


def _reason(exc: BaseException) -> str:
    """The driver's message on one line (libpq's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
