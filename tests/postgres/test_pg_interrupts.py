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
from backends import PostgresBackend, url_with_schema

import sessions_dal
from sessions_dal import COMMITTED_NOTE, Session

PACKAGE = os.path.dirname(sessions_dal.__file__)


@pytest.fixture
def alarm_sends_sigint() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _interrupt_at_random(call: Callable[..., object], args: Callable[[int], tuple[Any, ...]],
                         rounds: int, seed: int) -> Iterator[tuple[int, bool | None]]:
    """Run ``call(*args(n))`` with a SIGINT on a timer; yield (n, whether the write stayed).

    ``None``: the interrupt landed in this test's own code, before or after the
    call; the library promised nothing then.
    """
    rng = random.Random(seed)
    for n in range(rounds):
        arguments = args(n)
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00001, 0.004))
        try:
            call(*arguments)
            signal.setitimer(signal.ITIMER_REAL, 0)
        except KeyboardInterrupt as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if _raised_inside_the_library(exc):
                yield n, COMMITTED_NOTE in getattr(exc, "__notes__", ())
            else:
                yield n, None
        else:
            yield n, True


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
        outcomes = set()
        for n, stayed in _interrupt_at_random(session.add_items, lambda n: ([n, -n],), 250, 7):
            after = [*expected, n, -n]
            found = session.get_items()
            if stayed is None:
                assert found in (expected, after), f"round {n}"
            else:
                assert found == (after if stayed else expected), f"round {n}"
                outcomes.add(stayed)
            expected = found
        assert outcomes == {True, False}  # both kinds of moment were hit
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
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt) as caught:
                session.add_items([2])
            # The statement was cancelled: not the 60 s the lock wait may take.
            assert time.monotonic() - started < 30
            assert COMMITTED_NOTE not in getattr(caught.value, "__notes__", ())
            holder.rollback()
            assert pg.snapshot() == before
            _still_serves(session)
    finally:
        holder.close()
