"""The search index against writers interleaved with ours, on PostgreSQL's row locks.

SQLite runs one writer at a time, so there nothing can land between a claim's
statements; here another transaction can, and these tests force it to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from backends import PostgresBackend, url_with_schema, wait_for_lock_waits

from sessions_dal import SessionRepository
from sessions_dal.backends.postgres import store as store_module


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
        wait_for_lock_waits(pg, marker="FOR UPDATE")
        agents.commit()  # the append's item was indexed as nobody's
        claimer.join(30)
    assert not errors and not claimer.is_alive()
    found = sorted(hit.item["content"] for hit in repo.search("alice", "zebra"))
    assert found == ["newer zebra", "older zebra"]
    assert repo.check() == []


def test_history_a_compaction_committed_while_a_claim_waited_is_found_by_the_new_owner(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    pg.write_like_agents("s", ['{"content": "older zebra"}', '"tail"'])
    conn = psycopg.connect(url_with_schema(pg.schema))
    try:  # a compaction of the unowned session, stopped before its COMMIT
        conn.execute("SELECT 1 FROM agent_sessions WHERE session_id = %s FOR UPDATE", ["s"])
        conn.execute("INSERT INTO sessions_dal_history (session_id, id, layer, message_data, "
                     "created_at, words) SELECT session_id, id, 1, message_data, created_at, "
                     "to_tsvector('simple', 'older zebra') FROM agent_messages "
                     "WHERE message_data LIKE '%%zebra%%'")
        conn.execute("DELETE FROM agent_messages WHERE message_data LIKE '%zebra%'")
        claimer, errors = _in_thread(lambda: repo.claim_session("alice", "s"))
        wait_for_lock_waits(pg, marker="FOR UPDATE")
        conn.commit()  # its history rows were written as nobody's
        claimer.join(30)
    finally:
        conn.close()
    assert not errors and not claimer.is_alive()
    assert [(hit.item, hit.layer) for hit in repo.search("alice", "zebra")] == [
        ({"content": "older zebra"}, 1)]
    assert repo.check() == []


def test_a_claim_waits_for_a_compaction_of_the_session_instead_of_deadlocking(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    pg.write_like_agents("s", ['{"content": "zebra one"}', '{"content": "zebra two"}'])
    assert repo.update_search_index() == 2  # index rows a compaction deletes
    conn = psycopg.connect(url_with_schema(pg.schema))
    try:  # a compaction (or a pop) of the unowned session, under way
        conn.execute("SELECT 1 FROM agent_sessions WHERE session_id = %s FOR UPDATE", ["s"])
        claimer, errors = _in_thread(lambda: repo.claim_session("alice", "s"))
        wait_for_lock_waits(pg, marker="FOR UPDATE")
        # Its delete's trigger takes the items' index rows: had the claim's
        # trigger locked them first, each would wait for the other.
        conn.execute("DELETE FROM agent_messages WHERE message_data LIKE '%one%'")
        conn.commit()
        claimer.join(30)
    finally:
        conn.close()
    assert not errors and not claimer.is_alive()
    assert [hit.item for hit in repo.search("alice", "zebra")] == [{"content": "zebra two"}]
    assert repo.check() == []


def test_history_written_without_its_words_gets_them(pg: PostgresBackend,
                                                     repo: SessionRepository) -> None:
    # As a process of schema version 8, still running after the upgrade, writes it.
    repo.create_session("alice", session_id="s").add_items(["now"])
    pg._query("INSERT INTO sessions_dal_history (session_id, id, layer, replaced, "
              "message_data, created_at) VALUES ('s', 1, 1, false, '\"old zebra\"', "
              "'2026-01-01'), ('s', 2, 1, true, '\"old summary zebra\"', '2026-01-01')")
    assert [(hit.item, hit.layer) for hit in repo.search("alice", "zebra")] == [
        ("old zebra", 1)]
    assert repo.check() == []


def test_an_item_of_id_0_or_less_keeps_its_own_words_when_compacted(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    s = repo.create_session("alice", session_id="s", metadata={"title": "secret title"})
    pg._query("INSERT INTO agent_messages (id, session_id, message_data) "
              "SELECT -seq, 's', '\"harmless\"' FROM agent_user_sessions WHERE session_id = 's'")
    s.add_items(["later"])
    repo.search("alice", "later")
    s.compact([], upto=1)
    assert [(hit.item, hit.layer) for hit in repo.search("alice", "harmless")] == [
        ("harmless", 1)]
    assert [hit.item for hit in repo.search("alice", "secret")] == [None]  # the title only
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
        wait_for_lock_waits(pg, marker="sessions_dal_search\" IN SHARE ROW EXCLUSIVE")
        agents.commit()
        reindexer.join(30)
    assert not errors and not reindexer.is_alive()
    assert sorted((hit.item for hit in repo.search("alice", "zebra")), key=str) == [
        "zebra two", {"content": "zebra three"}]
    assert repo.check() == []


# -- the queue the inserts feed (schema.sql, version 6) --------------------------------

def _queue(pg: PostgresBackend) -> list[tuple[int, int, int]]:
    return [tuple(row) for row in pg._query(
        "SELECT id, first_id, last_id FROM sessions_dal_search_queue ORDER BY id")]


def test_appends_queue_their_ids_and_a_search_indexes_them_in_batches_of_items(
    pg: PostgresBackend, repo: SessionRepository, monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items([f"zebra {n}" for n in range(12)])
    pg.write_like_agents("theirs", ['"zebra 12"'])
    [(_, first, last), (_, theirs, _)] = _queue(pg)  # one row per inserting statement
    assert last - first == 11 and theirs == last + 1
    assert pg._query("SELECT count(*) FROM sessions_dal_search WHERE item_id > 0") == [(0,)]
    # A range wider than a batch is indexed a batch of items at a time, what
    # is left staying queued: each batch a transaction of its own.
    monkeypatch.setattr(store_module, "DRAIN_BATCH", 5)
    heard: list[tuple[str, float]] = []
    assert repo.update_search_index(progress=lambda *step: heard.append(step)) == 13
    assert heard[-1] == ("search index: new items", 1.0) and _queue(pg) == []
    assert len(repo.search("alice", "zebra", limit=None)) == 12 and repo.check() == []
    assert repo.update_search_index() == 0


def test_a_queue_nobody_drains_is_compacted_as_it_grows(pg: PostgresBackend,
                                                        repo: SessionRepository) -> None:
    repo.create_session("alice", session_id="s")
    with psycopg.connect(url_with_schema(pg.schema), autocommit=True) as conn:
        for n in range(1030):  # a statement each, as many apps append
            conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                         "VALUES ('s', %s)", [f'"zebra {n}"'])
    rows = _queue(pg)
    # The 1,024th row merged the 1,023 before it into one, under the first's id.
    assert rows[0] == (1, 1, 1023) and [row[0] for row in rows[1:]] == list(range(1024, 1031))
    assert len(repo.search("alice", "zebra", limit=None)) == 1030
    assert _queue(pg) == [] and repo.check() == []


def test_a_search_does_not_wait_for_a_compaction_and_still_sees_what_it_merged(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra before"])  # committed before the search begins
    pg._query("ALTER TABLE sessions_dal_search_queue ALTER COLUMN id RESTART WITH 1024")
    with _agents_append_open(pg, "s", '"zebra merging"') as agents:
        # Its queue row is the 1,024th: it merged the committed row into one the
        # search cannot see until it commits, and holds the one it deleted.
        assert [row[0] for row in agents.execute(
            "SELECT id FROM sessions_dal_search_queue ORDER BY id").fetchall()] == [1, 1024]
        # The search skips the held row and computes its items' words instead:
        # however long that transaction stays open, nothing waits for it.
        assert [hit.item for hit in repo.search("alice", "zebra")] == ["zebra before"]
        assert repo.update_search_index() == 0
        agents.commit()
    assert sorted(hit.item for hit in repo.search("alice", "zebra")) == [
        "zebra before", "zebra merging"]
    assert repo.check() == [] and _queue(pg) == []


def test_a_search_racing_a_delete_never_indexes_the_deleted_item(
    pg: PostgresBackend, repo: SessionRepository,
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra kept", "zebra deleted"])
    with psycopg.connect(url_with_schema(pg.schema)) as deleter:
        # The delete's trigger holds the index; the search's batch waits for it.
        deleter.execute("DELETE FROM agent_messages WHERE message_data = '\"zebra deleted\"'")
        found: list[object] = []
        searcher, errors = _in_thread(lambda: found.extend(
            hit.item for hit in repo.search("alice", "zebra")))
        wait_for_lock_waits(pg, marker="sessions_dal_search\" IN SHARE ROW EXCLUSIVE")
        deleter.commit()
        searcher.join(30)
    assert not errors and not searcher.is_alive() and found == ["zebra kept"]
    assert pg._query("SELECT count(*) FROM sessions_dal_search "
                     "WHERE words @@ to_tsquery('simple', 'deleted')") == [(0,)]
    assert repo.check() == []


def test_a_search_behind_a_long_delete_searches_without_indexing(pg: PostgresBackend) -> None:
    with pg.open(busy_timeout=0.2) as repo:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["zebra kept", "zebra deleted"])
        with psycopg.connect(url_with_schema(pg.schema)) as deleter:
            # Holds the index (its delete trigger's lock) for as long as it likes.
            deleter.execute("DELETE FROM agent_messages WHERE message_data = '\"zebra deleted\"'")
            # The search cannot index: it computes the queued items' words instead,
            # and sees the index and the items as they are committed.
            assert sorted(hit.item for hit in repo.search("alice", "zebra")) == [
                "zebra deleted", "zebra kept"]
            assert len(_queue(pg)) == 1
        assert [hit.item for hit in repo.search("alice", "zebra")] == ["zebra kept"]
        assert _queue(pg) == [] and repo.check() == []


def test_a_sparse_wide_range_is_one_batch_and_a_version_5_database_searches_as_before(
    pg: PostgresBackend, repo: SessionRepository, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.create_session("alice", session_id="s")
    # Another writer's ids far apart, in one statement: a range of 10**9 ids, 2 items.
    pg._query("INSERT INTO agent_messages (id, session_id, message_data) "
              "VALUES (5, 's', '\"zebra near\"'), (1000000005, 's', '\"zebra far\"')")
    monkeypatch.setattr(store_module, "DRAIN_BATCH", 5)
    assert repo.update_search_index() == 2 and _queue(pg) == []
    # A read-only repository on a database whose queue is gone (as at version 5,
    # whose triggers indexed every item as it was written) searches the index.
    pg._query("DROP TABLE sessions_dal_search_queue")
    with SessionRepository(pg.target, read_only=True) as reader:
        assert sorted(h.item for h in reader.search("alice", "zebra")) == [
            "zebra far", "zebra near"]
        assert reader.check() == []


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_a_delete_at_a_stricter_isolation_racing_a_batch_leaves_no_words_after_the_next_search(
    pg: PostgresBackend, repo: SessionRepository, isolation: str,
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra gone", "zebra kept"])
    with psycopg.connect(url_with_schema(pg.schema)) as deleter:
        # As a role or database whose default_transaction_isolation is stricter:
        # its snapshot is older than the batch that indexes the items it deletes.
        deleter.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        deleter.execute("SELECT count(*) FROM agent_messages")
        assert repo.update_search_index() == 2
        deleter.execute("DELETE FROM agent_messages WHERE message_data = '\"zebra gone\"'")
        deleter.commit()
    # Its trigger could not see the batch's row; it queued the ids it deleted.
    assert [row[1:] for row in pg._query(
        "SELECT id, deleted FROM sessions_dal_search_queue")] == [(True,)]
    assert [hit.item for hit in repo.search("alice", "zebra")] == ["zebra kept"]
    assert pg._query("SELECT count(*) FROM sessions_dal_search "
                     "WHERE words @@ to_tsquery('simple', 'gone')") == [(0,)]
    assert repo.check() == [] and _queue(pg) == []


def test_reindex_steps_over_gaps_between_ids(pg: PostgresBackend, repo: SessionRepository) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra near"])
    # Another writer's item 2**62 ids away: batches of rows, not of 20,000 ids.
    pg._query("INSERT INTO agent_messages (id, session_id, message_data) "
              "VALUES (4611686018427387904, 's', '\"zebra far\"')")
    assert repo.update_search_index() == 2
    heard: list[tuple[str, float]] = []
    assert repo.reindex(progress=lambda *step: heard.append(step)) == 0
    assert heard == [("search index: items", 1.0), ("search index: session titles", 1.0)]
    pg._query("DELETE FROM sessions_dal_search WHERE item_id > 0")  # the index lost
    assert repo.reindex() == 2 and len(repo.search("alice", "zebra")) == 2
    assert repo.check() == []
