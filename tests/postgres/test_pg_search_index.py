"""The search index against writers interleaved with ours, on PostgreSQL's row locks.

SQLite runs one writer at a time, so there nothing can land between a claim's
statements; here another transaction can, and these tests force it to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from backends import PostgresBackend, url_with_schema

from sessions_dal import SessionRepository


def _wait_for_lock_wait(pg: PostgresBackend, marker: str) -> None:
    """Return once a backend is waiting for a lock in a statement containing ``marker``.

    Polls the server's view of what waits (a condition, not a guess at a
    duration); fails if it never happens.
    """
    for _ in range(600):
        if pg._query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND query LIKE %s", f"%{marker}%"):
            return
        time.sleep(0.05)
    raise AssertionError(f"no statement with {marker!r} ever waited for a lock")


@contextmanager
def _agents_append_open(pg: PostgresBackend, session_id: str, text: str) -> Iterator[Any]:
    """SQLAlchemySession's add_items, stopped before its COMMIT: it holds the
    session's agent_sessions row, and its item (indexed by our trigger) is in."""
    conn = psycopg.connect(url_with_schema(pg.schema))
    try:
        conn.execute("SELECT 1 FROM agent_sessions WHERE session_id = %s FOR UPDATE",
                     [session_id])
        conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s)",
                     [session_id, text])
        yield conn
    finally:
        conn.close()


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_an_item_committed_while_a_claim_waits_is_found_by_the_new_owner(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    pg.write_like_agents("s", ['{"content": "older zebra"}'])
    with _agents_append_open(pg, "s", '{"content": "newer zebra"}') as agents:
        # The claim takes the ownership row (its trigger gives the items it
        # can see the owner's lexemes), then waits for agent_sessions' row.
        claimer, errors = _in_thread(lambda: repo.claim_session("alice", "s"))
        _wait_for_lock_wait(pg, "FOR UPDATE")
        agents.commit()  # the append's item was indexed as nobody's
        claimer.join(30)
    assert not errors and not claimer.is_alive()
    found = sorted(hit.item["content"] for hit in repo.search("alice", "zebra"))
    assert found == ["newer zebra", "older zebra"]
    assert repo.check() == []


def test_a_reindex_waits_for_writers_in_progress_and_loses_none_of_their_writes(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra one", "zebra two"])
    with _agents_append_open(pg, "s", '{"content": "zebra three"}') as agents:
        agents.execute("DELETE FROM agent_messages WHERE message_data = '\"zebra one\"'")
        # The writer's triggers hold the index table; the reindex's batch waits for it.
        reindexer, errors = _in_thread(repo.reindex)
        _wait_for_lock_wait(pg, "sessions_dal_search\" IN SHARE ROW EXCLUSIVE")
        agents.commit()
        reindexer.join(30)
    assert not errors and not reindexer.is_alive()
    assert sorted((hit.item for hit in repo.search("alice", "zebra")), key=str) == [
        "zebra two", {"content": "zebra three"}]
    assert repo.check() == []
