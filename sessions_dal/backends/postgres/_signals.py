"""Signal handlers held back while a call has a pooled connection.

An exception a signal handler raises (Ctrl-C's ``KeyboardInterrupt``, a
SIGALRM timeout) must never land inside psycopg's or the pool's
bookkeeping: :class:`Hold` records the signal instead, and hands it on once
the connection is back in the pool (``_runner`` puts one in place around
each call).
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ._opening import CONNECT_TIMEOUT

__all__ = ["Hold"]

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

_HOLDS: list[Hold] = []
"""The holds in force in the main thread, innermost last."""


class Hold:
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

    def __enter__(self) -> Hold:
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
                while isinstance(getattr(previous, "__self__", None), Hold) and not (
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
