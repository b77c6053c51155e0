"""Ctrl-C at random moments of PostgreSQL writes: nothing lost, nothing leaked, the truth told.

A timer sends SIGINT a few microseconds to milliseconds into each call, so the
``KeyboardInterrupt`` lands anywhere: in sessions_dal, in psycopg waiting for
the server, in psycopg_pool lending or taking back the connection. After each
one the stored items must be exactly what the exception says (with
``COMMITTED_NOTE``: the write stayed; without: it did not), and the pool of
one connection must still serve the next call.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from backends import PostgresBackend, url_with_schema, wait_for_lock_waits

import sessions_dal
from sessions_dal import COMMITTED_NOTE, Session

# Signal handlers raise in these tests: see the fixture.
pytestmark = pytest.mark.usefixtures("signals_are_safe")

PACKAGE = os.path.dirname(sessions_dal.__file__)


@pytest.fixture
def alarm_sends_sigint() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    # Ctrl-C raising KeyboardInterrupt, as in a terminal, however the tests were
    # started: a shell without job control starts background commands (`cmd &`)
    # with SIGINT ignored, and Python keeps it so.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_when(ready: Callable[[], object]) -> threading.Thread:
    """Ctrl-C from outside, as soon as ``ready()`` is true: once the call under
    test has reached the moment the test is about (an event, not a delay)."""

    def send() -> None:
        deadline = time.monotonic() + 120
        while not ready():
            if time.monotonic() > deadline:
                return  # the test's own assertions say what never happened
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _interrupt_at_random(call: Callable[..., object], args: Callable[[int], tuple[Any, ...]],
                         rounds: int, seed: int) -> Iterator[tuple[int, bool | None]]:
    """Run ``call(*args(n))`` with a SIGINT on a timer; yield (n, whether the write stayed).

    ``None``: the interrupt landed in this test's own code, before or after the
    call; the library promised nothing then.
    """
    rng = random.Random(seed)
    for n in range(rounds):
        arguments = args(n)
        stayed: bool | None = True
        timer = threading.Timer(rng.uniform(0.00001, 0.004), os.kill,
                                (os.getpid(), signal.SIGINT))
        try:
            try:
                timer.start()  # the signal may come before start() returns
                call(*arguments)
            except KeyboardInterrupt as exc:
                stayed = (COMMITTED_NOTE in getattr(exc, "__notes__", ())
                          if _raised_inside_the_library(exc) else None)
                if stayed is not None:
                    INTERRUPTED_INSIDE.append(n)
            finally:
                timer.cancel()
                timer.join()  # the signal is sent by now, or never will be
            _nothing()  # a SIGINT sent as the call returned is handled here
            _nothing()
        except KeyboardInterrupt:
            pass  # it came after the call had returned: the call's outcome stands
        yield n, stayed


def _nothing() -> None:
    """A call: Python handles pending signals when a function starts."""


INTERRUPTED_INSIDE: list[int] = []
"""Rounds whose interrupt the library raised (so the test did test something)."""


def _raised_inside_the_library(exc: BaseException) -> bool:
    frames = exc.__traceback__
    while frames is not None:
        if frames.tb_frame.f_code.co_filename.startswith(PACKAGE):
            return True
        frames = frames.tb_next
    return False


def test_ctrl_c_during_appends(pg: PostgresBackend, alarm_sends_sigint: None) -> None:
    with pg.open(pool_size=1, busy_timeout=5) as repo:
        session = repo.create_session("alice", session_id="s1")
        expected: list[int] = []
        INTERRUPTED_INSIDE.clear()
        for n, stayed in _interrupt_at_random(session.add_items, lambda n: ([n, -n],), 250, 7):
            after = [*expected, n, -n]
            found = session.get_items()
            if stayed is None:
                assert found in (expected, after), f"round {n}"
            else:
                assert found == (after if stayed else expected), f"round {n}"
            expected = found
        assert len(INTERRUPTED_INSIDE) > 10  # the interrupts did land in the library
        _still_serves(session)


def test_ctrl_c_during_pops(pg: PostgresBackend, alarm_sends_sigint: None) -> None:
    with pg.open(pool_size=1, busy_timeout=5) as repo:
        session = repo.create_session("alice", session_id="s1")
        expected = list(range(300))
        session.add_items(expected)
        for n, stayed in _interrupt_at_random(session.pop_item, lambda n: (), 250, 11):
            found = session.get_items()
            if stayed is None:
                assert found in (expected, expected[:-1]), f"round {n}"
            else:
                assert found == (expected[:-1] if stayed else expected), f"round {n}"
            expected = found
        _still_serves(session)


def test_ctrl_c_during_metadata_merges(pg: PostgresBackend, alarm_sends_sigint: None
                                       ) -> None:
    with pg.open(pool_size=1, busy_timeout=5) as repo:
        repo.create_session("alice", session_id="s1")
        expected: dict[str, int] = {}
        for n, stayed in _interrupt_at_random(
                repo.update_metadata, lambda n: ("alice", "s1", {f"k{n}": n}), 200, 13):
            after = {**expected, f"k{n}": n}
            session = repo.get_session("alice", "s1")
            assert session is not None
            if stayed is None:
                assert session.metadata in (expected, after), f"round {n}"
            else:
                assert session.metadata == (after if stayed else expected), f"round {n}"
            expected = session.metadata


def _still_serves(session: Session) -> None:
    # With a pool of one, a connection lost by an interrupt would time this out.
    session.add_items(["after"])
    assert session.get_items()[-1] == "after"


def test_ctrl_c_while_waiting_for_a_lock_answers_at_once(pg: PostgresBackend,
                                                        alarm_sends_sigint: None) -> None:
    with pg.open() as setup:
        setup.create_session("alice", session_id="s1").add_items([1])
    before = pg.snapshot()
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' FOR UPDATE")
        with pg.open(busy_timeout=60, pool_size=1) as repo:
            session = repo.get_session("alice", "s1")
            assert session is not None
            _sigint_when(lambda: wait_for_lock_waits(pg))
            # KeyboardInterrupt, not the DatabaseLockedError of a 60 s wait: the
            # statement was cancelled.
            with pytest.raises(KeyboardInterrupt) as caught:
                session.add_items([2])
            assert COMMITTED_NOTE not in getattr(caught.value, "__notes__", ())
            holder.rollback()
            assert pg.snapshot() == before
            _still_serves(session)
    finally:
        holder.close()


class Timeout(Exception):
    """What an application's SIGALRM handler raises."""


def test_another_signal_handler_that_raises_leaks_no_connection(
    pg: PostgresBackend, alarm_sends_sigint: None,
) -> None:
    def alarm(number: int, frame: object) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    rng = random.Random(5)
    try:
        with pg.open(pool_size=1, busy_timeout=5) as repo:
            session = repo.create_session("alice")
            expected: list[int] = []
            for n in range(150):
                try:
                    try:
                        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00001, 0.003))
                        session.add_items([n])
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    _nothing()
                except Timeout:
                    pass
                found = session.get_items()
                assert found in (expected, [*expected, n]), f"round {n}"
                expected = found
            _still_serves(session)
        # Wherever the timeouts landed, Ctrl-C is the application's again.
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_a_sigint_handler_that_does_not_raise_lets_the_call_finish(
    pg: PostgresBackend, alarm_sends_sigint: None,
) -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: seen.append(number))
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        with pg.open(busy_timeout=30) as repo:
            session = repo.create_session("alice", session_id="s1")
            holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' "
                           "FOR UPDATE")

            def interrupt_then_let_go() -> None:
                wait_for_lock_waits(pg)  # the append waits for the lock
                os.kill(os.getpid(), signal.SIGINT)
                holder.rollback()

            threading.Thread(target=interrupt_then_let_go, daemon=True).start()
            session.add_items([1])  # waits for the lock; the signal must not break it
            assert session.get_items() == [1]
            assert seen == [signal.SIGINT]  # handed over once the call was done
    finally:
        signal.signal(signal.SIGINT, previous)
        holder.close()


def test_ctrl_c_while_waiting_for_a_free_connection(pg: PostgresBackend,
                                                    alarm_sends_sigint: None) -> None:
    with pg.open(pool_size=1, busy_timeout=30) as repo:
        session = repo.create_session("alice", session_id="s1")
        holder = psycopg.connect(url_with_schema(pg.schema))
        try:
            holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' FOR UPDATE")
            # Another thread's write waits for that lock, holding the only connection.
            busy = threading.Thread(target=session.add_items, args=([1],))
            busy.start()
            wait_for_lock_waits(pg)
            pool = repo._store._db._pool  # type: ignore[attr-defined]
            _sigint_when(lambda: pool.get_stats().get("requests_waiting", 0) > 0)
            # KeyboardInterrupt, not the error of a 30 s wait for a connection.
            with pytest.raises(KeyboardInterrupt) as caught:
                session.add_items([2])
            assert COMMITTED_NOTE not in getattr(caught.value, "__notes__", ())
        finally:
            holder.close()  # ends its transaction: the waiting write goes on
        busy.join(30)
        assert session.get_items() == [1]


def test_ctrl_c_while_an_import_waits_for_its_input(pg: PostgresBackend,
                                                   alarm_sends_sigint: None) -> None:
    never, waiting = threading.Event(), threading.Event()

    def lines() -> Iterator[str]:
        yield '{"type": "user", "user_id": "bob", "created_at": "2026-01-01T00:00:00+00:00"}\n'
        waiting.set()
        never.wait(120)  # a pipe with nothing more to read yet
        yield '{"type": "end", "users": 1, "sessions": 0, "items": 0}\n'

    with pg.open() as repo:
        _sigint_when(waiting.is_set)
        with pytest.raises(KeyboardInterrupt):  # else it would finish, 120 s later
            repo.import_from(lines(), require_end=False)
        assert repo.get_users() == []


class _RaisesOnce:
    """The signal module, except that its ``k``-th ``signal()`` call raises first.

    ``signal.signal()`` runs the handlers of pending signals before it changes
    one; an application's handler may raise there (a SIGALRM timeout).
    """

    def __init__(self, real: Any, k: int) -> None:
        self.real, self.k, self.calls = real, k, 0

    def getsignal(self, number: int) -> Any:
        return self.real.getsignal(number)

    def signal(self, number: int, handler: Any) -> Any:
        self.calls += 1
        if self.calls == self.k:
            raise Timeout
        return self.real.signal(number, handler)


def test_a_handler_raising_while_signals_are_held_or_released_leaves_them_as_they_were(
    pg: PostgresBackend, alarm_sends_sigint: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def alarm(number: int, frame: object) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        _every_moment_of_holding(pg, monkeypatch)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _every_moment_of_holding(pg: PostgresBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessions_dal.backends.postgres import _signals as signals_module

    handlers = {number: signal.getsignal(number) for number in signals_module._HELD}
    with pg.open(pool_size=1) as repo:
        session = repo.create_session("alice", session_id="s1")
        real = signals_module._signals
        counting = _RaisesOnce(real, 0)
        monkeypatch.setattr(signals_module, "_signals", counting)
        session.add_items([0])
        calls = counting.calls  # holding, then releasing, SIGINT and SIGALRM
        assert calls == 4
        for k in range(1, calls + 1):
            monkeypatch.setattr(signals_module, "_signals", _RaisesOnce(real, k))
            with pytest.raises(Timeout):
                session.add_items([k])
            monkeypatch.undo()
            assert {n: signal.getsignal(n) for n in signals_module._HELD} == handlers, k
            assert signals_module._HOLDS == [], k
            # Ctrl-C still works, and the pool of one still serves.
            with pytest.raises(KeyboardInterrupt):  # raised as raise_signal returns
                signal.raise_signal(signal.SIGINT)
            _still_serves(session)
