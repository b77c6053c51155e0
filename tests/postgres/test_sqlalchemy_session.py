"""sessions_dal and openai-agents' ``SQLAlchemySession`` sharing one PostgreSQL database.

The PostgreSQL backend promises to adopt, in place, a database that
``SQLAlchemySession`` made, and that both libraries then keep working on the
same two tables (docs: /work/shared/POSTGRES.md section 1). These tests drive
the real ``SQLAlchemySession`` (SQLAlchemy's asyncio engine over asyncpg) and
sessions_dal side by side on one schema, and check, with exact contents and
order:

- adoption: the sessions become unowned sessions with the same items in the
  same order; the 32-bit ``id``, the sequence and its own index are kept, our
  index is added, and no row is rewritten (same ``ctid``, ``xmin`` and file);
- after a claim, each library reads, appends, pops and clears what the other
  wrote, in one order, and the stored text of each item is what its writer's
  encoder made (compact JSON from SQLAlchemySession, ``json.dumps`` defaults
  from sessions_dal: equal values, not equal bytes);
- ``SQLAlchemySession.clear_session()`` deletes its ``agent_sessions`` row,
  but the owner, the metadata and the session survive, and both libraries can
  write to it again;
- ``SQLAlchemySession(create_tables=True)`` on a database sessions_dal made
  creates nothing and reads sessions_dal's items;
- writers taking turns keep one order both libraries agree on, and pops
  racing from both libraries hand out every item exactly once.

Each call of SQLAlchemySession runs in an event loop whose engine is disposed
in that loop (``asyncio.run``), so no connection outlives its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from backends import POSTGRES_URL, PostgresBackend, url_with_schema

from sessions_dal import SessionRepository

if POSTGRES_URL is None:  # tests/conftest.py does not even collect this folder then
    pytest.skip("no PostgreSQL server", allow_module_level=True)
pytest.importorskip("agents")
pytest.importorskip("sqlalchemy")
pytest.importorskip("asyncpg")

from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ASYNC_URL = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", query={})
"""The test server for SQLAlchemy's asyncpg dialect (the schema goes in server_settings)."""

ITEMS: list[Any] = [
    {"role": "user", "content": "Bonjour, ça va ? ✓"},
    {"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Oui", "annotations": []}]},
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"x\": 1.5}"},
    {"type": "function_call_output", "call_id": "c1", "output": "null\u0000"},
]
"""What an agent stores: dicts, nested, with non-ASCII text and an escaped NUL."""
CHAT_B: list[Any] = [{"role": "user", "content": "b"}]
FROM_AGENTS: list[Any] = [{"from": "agents"}]
ONE: list[Any] = [{"n": 1}]


def agents_text(item: Any) -> str:
    """The text SQLAlchemySession stores for ``item`` (its ``_serialize_item``)."""
    return json.dumps(item, ensure_ascii=True, separators=(",", ":"))


def dal_text(item: Any) -> str:
    """The text sessions_dal stores for ``item`` (plain ``json.dumps``)."""
    return json.dumps(item)


@contextlib.asynccontextmanager
async def agents_engine(pg: PostgresBackend) -> AsyncIterator[AsyncEngine]:
    """An engine on ``pg``'s schema, disposed in the event loop that used it."""
    engine = create_async_engine(
        ASYNC_URL, connect_args={"server_settings": {"search_path": pg.schema}})
    try:
        yield engine
    finally:
        await engine.dispose()


def agents(engine: AsyncEngine, session_id: str) -> SQLAlchemySession:
    """SQLAlchemySession as an application configures it in development."""
    return SQLAlchemySession(session_id, engine=engine, create_tables=True)


def message_rows(pg: PostgresBackend) -> list[Any]:
    """Every item row with its physical identity: a rewritten row changes ctid or xmin."""
    return pg._query(
        "SELECT ctid::text, xmin::text, id, session_id, message_data, created_at "
        "FROM agent_messages ORDER BY id")


def session_rows(pg: PostgresBackend) -> list[Any]:
    return pg._query(
        "SELECT ctid::text, xmin::text, session_id, created_at, updated_at "
        "FROM agent_sessions ORDER BY session_id")


def agents_session_ids(pg: PostgresBackend) -> list[str]:
    return [row[0] for row in pg._query(
        "SELECT session_id FROM agent_sessions ORDER BY session_id")]


def layout(pg: PostgresBackend) -> list[Any]:
    """The schema's relations, columns and indexes: what a CREATE would change."""
    return (
        pg._query("SELECT relname, relkind::text, pg_relation_filenode(oid) FROM pg_class "
                  "WHERE relnamespace = %s::regnamespace ORDER BY relname", pg.schema)
        + pg._query("SELECT table_name, column_name, data_type, column_default "
                    "FROM information_schema.columns WHERE table_schema = %s "
                    "ORDER BY table_name, ordinal_position", pg.schema)
        + pg._query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
                    "ORDER BY indexname", pg.schema)
    )


def indexes(pg: PostgresBackend, table: str) -> dict[str, str]:
    return {name: definition.split(" USING ", 1)[1] for name, definition in pg._query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        pg.schema, table)}


@pytest.fixture
def agents_db(pg: PostgresBackend) -> PostgresBackend:
    """A schema SQLAlchemySession made: session "chat-a" with ITEMS (two calls), "chat-b"."""

    async def write() -> None:
        async with agents_engine(pg) as engine:
            first = agents(engine, "chat-a")
            await first.add_items(ITEMS[:2])
            await first.add_items(ITEMS[2:])
            await agents(engine, "chat-b").add_items(CHAT_B)

    asyncio.run(write())
    return pg


def test_a_database_sqlalchemy_session_made_is_adopted_in_place(
        agents_db: PostgresBackend) -> None:
    pg = agents_db
    messages, sessions = message_rows(pg), session_rows(pg)
    filenode = pg._query("SELECT pg_relation_filenode('agent_messages')")
    assert [row[3:5] for row in messages] == (
        [("chat-a", agents_text(item)) for item in ITEMS]
        + [("chat-b", agents_text(item)) for item in CHAT_B])
    assert indexes(pg, "agent_messages") == {
        "agent_messages_pkey": "btree (id)",
        "idx_agent_messages_session_time": "btree (session_id, created_at)",
    }

    with SessionRepository(pg.target) as repo:
        unowned = repo.get_unowned_sessions()
        assert [s.session_id for s in unowned] == ["chat-b", "chat-a"]  # newest first
        assert [(s.user_id, s.metadata) for s in unowned] == [(None, {}), (None, {})]
        assert unowned[1].get_items() == ITEMS
        assert unowned[1].get_items(limit=2) == ITEMS[2:]
        assert unowned[0].get_items() == CHAT_B
        # Its creation time is the agent_sessions row's, read in the server's zone.
        (created,) = pg._query(
            "SELECT created_at AT TIME ZONE current_setting('TimeZone') "
            "FROM agent_sessions WHERE session_id = 'chat-a'")[0]
        assert unowned[1].created_at == created

    # Kept: the rows as they were (not even rewritten), the 32-bit id and its
    # sequence, SQLAlchemySession's index; added: ours, and our own tables.
    assert message_rows(pg) == messages
    assert session_rows(pg) == sessions
    assert pg._query("SELECT pg_relation_filenode('agent_messages')") == filenode
    assert pg._query(
        "SELECT data_type, column_default FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'agent_messages' AND column_name = 'id'",
        pg.schema) == [("integer", "nextval('agent_messages_id_seq'::regclass)")]
    assert pg._query("SELECT data_type::regtype::text, max_value FROM pg_sequences "
                     "WHERE schemaname = %s AND sequencename = 'agent_messages_id_seq'",
                     pg.schema) == [("integer", 2**31 - 1)]
    assert indexes(pg, "agent_messages") == {
        "agent_messages_pkey": "btree (id)",
        "idx_agent_messages_session_time": "btree (session_id, created_at)",
        "idx_agent_messages_session_created_id": "btree (session_id, created_at, id)",
    }
    assert [row[0] for row in pg._query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name", pg.schema)] == [
        "agent_messages", "agent_sessions", "agent_user_sessions", "agent_users",
        "sessions_dal_history", "sessions_dal_migrations", "sessions_dal_replacements",
        "sessions_dal_search", "sessions_dal_search_queue"]
    # Adopted without computing a word: every item is queued for the first search.
    assert pg._query("SELECT count(*) FROM sessions_dal_search WHERE item_id > 0") == [(0,)]
    assert pg._query("SELECT first_id, last_id FROM sessions_dal_search_queue") == [
        (min(row[2] for row in messages), max(row[2] for row in messages))]
    with SessionRepository(pg.target) as repo:  # what it wrote before is searchable
        repo.claim_session("alice", "chat-a")
        assert [hit.item for hit in repo.search("alice", "bonjour CA")] == [ITEMS[0]]
        assert [hit.item for hit in repo.search("alice", "oui")] == [ITEMS[1]]


def test_both_libraries_share_a_claimed_session(agents_db: PostgresBackend) -> None:
    pg = agents_db
    new: list[Any] = [{"role": "user", "content": "née"}, {"n": 2.5, "list": [1, None, True]}]

    async def body() -> None:
        async with agents_engine(pg) as engine:
            sa = agents(engine, "chat-a")
            with SessionRepository(pg.target) as repo:
                adopted = layout(pg)
                repo.claim_session("alice", "chat-a", metadata={"title": "T"})
                mine = repo.get_session("alice", "chat-a")
                assert mine is not None and mine.user_id == "alice"
                assert await sa.get_items() == ITEMS == mine.get_items()

                # SQLAlchemySession appends: sessions_dal sees it, last.
                await sa.add_items([new[0]])
                assert mine.get_items() == [*ITEMS, new[0]]
                assert mine.get_items(limit=1) == [new[0]]
                # sessions_dal appends: SQLAlchemySession sees it, last.
                mine.add_items([new[1]])
                assert await sa.get_items() == [*ITEMS, *new]
                assert await sa.get_items(limit=2) == new
                # Each stored its own encoding of the same values.
                assert pg.stored_items("chat-a") == (
                    [agents_text(item) for item in [*ITEMS, new[0]]] + [dal_text(new[1])])
                assert agents_text(new[1]) != dal_text(new[1])

                # Pops take the latest, whoever wrote it and whoever pops.
                assert await sa.pop_item() == new[1]
                assert mine.get_items() == [*ITEMS, new[0]]
                assert mine.pop_item() == new[0]
                assert await sa.get_items() == ITEMS
                assert await sa.pop_item() == ITEMS[3]
                assert mine.count_items() == 3

                # SQLAlchemySession clears: sessions_dal sees no items.
                await sa.clear_session()
                assert mine.get_items() == []
                assert mine.pop_item() is None
                # The other session, never claimed, was left alone.
                other = repo.get_unowned_session("chat-b")
                assert other is not None
                assert other.get_items() == CHAT_B

                # sessions_dal clears what SQLAlchemySession wrote.
                await sa.add_items(new)
                mine.clear_session()
                assert await sa.get_items() == []
                assert await sa.pop_item() is None
        # Its create_tables=True found the tables and created nothing.
        assert layout(pg) == adopted

    asyncio.run(body())


def test_sqlalchemy_clear_session_leaves_the_owner(agents_db: PostgresBackend) -> None:
    pg = agents_db
    again: list[Any] = [{"role": "user", "content": "again"},
                        {"role": "assistant", "content": "ok"}]

    async def body() -> None:
        async with agents_engine(pg) as engine:
            sa = agents(engine, "chat-a")
            with SessionRepository(pg.target) as repo:
                claimed = repo.claim_session("alice", "chat-a", metadata={"title": "T"})
                await sa.clear_session()
                assert agents_session_ids(pg) == ["chat-b"]  # its row is gone

                # The session is still alice's: listed, found, empty, same metadata.
                assert [s.session_id for s in repo.get_sessions("alice")] == ["chat-a"]
                mine = repo.get_session("alice", "chat-a")
                assert mine is not None
                assert (mine.user_id, mine.metadata, mine.created_at) == (
                    "alice", {"title": "T"}, claimed.created_at)
                assert mine.get_items() == [] and mine.count_items() == 0
                assert [s.session_id for s in repo.get_unowned_sessions()] == ["chat-b"]
                assert repo.get_unowned_session("chat-a") is None

                # sessions_dal writes to it again (through the handle from before
                # the clear too), and SQLAlchemySession reads that.
                claimed.add_items(again[:1])
                mine.add_items(again[1:])
                assert agents_session_ids(pg) == ["chat-a", "chat-b"]
                assert await sa.get_items() == again
                assert mine.get_items() == again

                # SQLAlchemySession clears and writes again: still alice's session.
                await sa.clear_session()
                await sa.add_items(again[:1])
                assert mine.get_items() == again[:1]
                assert [s.session_id for s in repo.get_sessions("alice")] == ["chat-a"]
                assert repo.get_unowned_sessions()[0].session_id == "chat-b"
                assert repo.count_unowned_sessions() == 1

    asyncio.run(body())


def test_sqlalchemy_session_writes_move_the_session_to_the_front(pg: PostgresBackend) -> None:
    async def body() -> None:
        async with agents_engine(pg) as engine:
            with SessionRepository(pg.target) as repo:
                s, other = repo.create_session("alice"), repo.create_session("alice")
                sa = agents(engine, s.session_id)
                for method, args in [("add_items", (ONE + CHAT_B,)), ("pop_item", ()),
                                     ("clear_session", ())]:
                    other.add_items(ONE)  # now other is the last active
                    assert repo.get_sessions("alice", order="updated")[0] == other
                    before = repo.get_session("alice", s.session_id).updated_at  # type: ignore[union-attr]
                    await getattr(sa, method)(*args)
                    now = repo.get_session("alice", s.session_id)
                    assert now is not None and now.updated_at > before, method
                    assert repo.get_sessions("alice", order="updated")[0] == s, method
                assert await sa.pop_item() is None  # nothing left to pop: no activity
                assert repo.get_session("alice", s.session_id).updated_at == now.updated_at  # type: ignore[union-attr]

    asyncio.run(body())


def test_an_agents_write_never_waits_for_a_session_sessions_dal_holds(
    pg: PostgresBackend,
) -> None:
    # SQLAlchemySession locks its session row first, sessions_dal the ownership
    # row first: the activity trigger must skip a held ownership row, or the two
    # would deadlock. The held row keeps its stamp; the agents' write goes on.
    with SessionRepository(pg.target) as repo:
        s = repo.create_session("alice")
        before = repo.get_session("alice", s.session_id).updated_at  # type: ignore[union-attr]
        holder = psycopg.connect(url_with_schema(pg.schema))
        try:
            holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = %s FOR UPDATE",
                           (s.session_id,))

            async def write() -> None:
                async with agents_engine(pg) as engine:
                    await asyncio.wait_for(agents(engine, s.session_id).add_items(ONE), 20)

            asyncio.run(write())
        finally:
            holder.close()
        assert s.get_items() == ONE
        assert repo.get_session("alice", s.session_id).updated_at == before  # type: ignore[union-attr]


def test_sqlalchemy_session_opens_a_database_sessions_dal_made(pg: PostgresBackend) -> None:
    with SessionRepository(pg.target) as repo:
        mine = repo.create_session("bob", session_id="b-1")
        mine.add_items(ITEMS)
        before = layout(pg)
        assert indexes(pg, "agent_messages") == {
            "agent_messages_pkey": "btree (id)",
            "idx_agent_messages_session_created_id": "btree (session_id, created_at, id)",
        }

        async def body() -> None:
            async with agents_engine(pg) as engine:
                sa = agents(engine, "b-1")
                assert await sa.get_items() == ITEMS
                assert await sa.get_items(limit=1) == ITEMS[-1:]
                await sa.add_items(FROM_AGENTS)
                # A session only SQLAlchemySession knows: unowned for sessions_dal.
                await agents(engine, "agents-only").add_items(ONE)

        asyncio.run(body())
        assert layout(pg) == before  # no table, index or sequence created or replaced
        assert mine.get_items() == ITEMS + FROM_AGENTS
        assert pg.stored_items("b-1") == (
            [dal_text(item) for item in ITEMS] + [agents_text(item) for item in FROM_AGENTS])
        (unowned,) = repo.get_unowned_sessions()
        assert unowned.session_id == "agents-only"
        assert unowned.get_items() == ONE


def test_interleaved_writers_keep_one_order(pg: PostgresBackend) -> None:
    expected: list[Any] = []

    async def body() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        async with agents_engine(pg) as engine:
            with SessionRepository(pg.target) as repo:
                mine = repo.create_session("carol", session_id="c-1")
                sa = agents(engine, "c-1")
                for turn in range(8):
                    batch: list[Any] = [{"turn": turn, "k": k} for k in range(turn % 3 + 1)]
                    if turn % 2:
                        await sa.add_items(batch)
                    else:
                        mine.add_items(batch)
                    expected.extend(batch)
                    # Both see the same tail after every write.
                    assert await sa.get_items(limit=2) == expected[-2:] == mine.get_items(2)
                seen = (await sa.get_items(), mine.get_items(),
                        await sa.get_items(limit=5), mine.get_items(limit=5))
                # Popping alternately unwinds the same order.
                popped = []
                for turn in range(6):
                    popped.append(await sa.pop_item() if turn % 2 else mine.pop_item())
                assert popped == expected[::-1][:6]
                assert await sa.get_items() == expected[:-6] == mine.get_items()
                return seen

    all_sa, all_dal, tail_sa, tail_dal = asyncio.run(body())
    assert all_sa == expected and all_dal == expected
    assert tail_sa == expected[-5:] and tail_dal == expected[-5:]
    assert len(expected) == 15


def test_concurrent_pops_from_both_libraries_hand_out_each_item_once(
        pg: PostgresBackend) -> None:
    count, dal_threads = 40, 3
    items: list[Any] = [{"n": n} for n in range(count)]
    start = threading.Barrier(dal_threads + 1, timeout=10)  # a failed thread: no hang

    def dal_popper(repo: SessionRepository) -> list[Any]:
        mine = repo.get_session("dave", "d-1")
        assert mine is not None
        start.wait()
        popped = list(iter(mine.pop_item, None))
        # None only once the session is empty (nothing is added meanwhile).
        assert mine.count_items() == 0
        return popped

    def agents_popper() -> list[Any]:
        async def body() -> list[Any]:
            async with agents_engine(pg) as engine:
                sa = SQLAlchemySession("d-1", engine=engine)
                assert len(await sa.get_items()) == count  # connected before the start
                start.wait()
                popped = []
                while (item := await sa.pop_item()) is not None:
                    popped.append(item)
                assert await sa.get_items() == []
                return popped

        return asyncio.run(body())

    async def fill() -> None:
        async with agents_engine(pg) as engine:
            await agents(engine, "d-1").add_items(items[count // 2:])

    with SessionRepository(pg.target) as repo:
        repo.create_session("dave", session_id="d-1").add_items(items[:count // 2])
        asyncio.run(fill())
        with ThreadPoolExecutor(dal_threads + 1) as pool:
            futures = [pool.submit(dal_popper, repo) for _ in range(dal_threads)]
            futures.append(pool.submit(agents_popper))
            results = [future.result(timeout=30) for future in futures]
        session = repo.get_session("dave", "d-1")
        assert session is not None and session.get_items() == []

    assert results[-1], "SQLAlchemySession popped nothing: the race did not happen"
    popped = [item["n"] for result in results for item in result]
    assert sorted(popped) == list(range(count))  # each once: none lost, none twice
    for result in results:
        # Pops are one at a time (the session's row lock), each taking the
        # latest: what any one popper got came out newest first.
        ns = [item["n"] for item in result]
        assert ns == sorted(ns, reverse=True)


def test_a_prune_keeps_a_session_sqlalchemy_appended_to_while_it_ran(pg: PostgresBackend
                                                                     ) -> None:
    # SQLAlchemySession's append locks the agent_sessions row, inserts, then sets
    # its updated_at; our trigger skips the ownership row the prune holds. The
    # prune must see the append in openai-agents' own stamp and keep the session.
    with SessionRepository(pg.target) as repo:
        old = repo.create_session("alice", session_id="old")
        old.add_items(["old"])
        agent = psycopg.connect(url_with_schema(pg.schema))
        pruned: list[Any] = []
        try:
            agent.execute("SELECT 1 FROM agent_sessions WHERE session_id = 'old' FOR UPDATE")
            pruner = threading.Thread(
                target=lambda: pruned.append(repo.prune(older_than=timedelta(0))))
            pruner.start()
            for _ in range(400):  # until the prune waits for the agent's row
                if pg._query("SELECT 1 FROM pg_stat_activity WHERE %s = ANY("
                             "pg_blocking_pids(pid))", agent.info.backend_pid):
                    break
                time.sleep(0.025)
            else:
                pytest.fail("the prune never waited for the agent_sessions row")
            agent.execute("INSERT INTO agent_messages (session_id, message_data) "
                          "VALUES ('old', '\"back\"')")
            agent.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP "
                          "WHERE session_id = 'old'")
            agent.commit()
            pruner.join(30)
        finally:
            agent.close()
        assert [(r.sessions, r.items) for r in pruned] == [(0, 0)]
        assert old.get_items() == ["old", "back"]


def test_agents_writes_work_where_execute_is_revoked_by_default(pg: PostgresBackend) -> None:
    # A hardened database: functions are not executable by PUBLIC unless
    # granted, and the app using SQLAlchemySession is a role with rights on
    # openai-agents' tables only. Our triggers must not break its writes.
    tag = uuid.uuid4().hex[:8]
    owner, app, schema = f"owner_{tag}", f"app_{tag}", f"hard_{tag}"
    try:
        pg._query(f"CREATE ROLE {owner} LOGIN; CREATE ROLE {app} LOGIN", schema=None)
    except psycopg.Error:
        pytest.skip("the test server's user cannot create roles")
    try:
        pg._query(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}; "
                  f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} "
                  "REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC", schema=None)
        assert POSTGRES_URL is not None and "://postgres@" in POSTGRES_URL
        as_owner = url_with_schema(schema).replace("://postgres@", f"://{owner}@", 1)
        with SessionRepository(as_owner) as repo:
            mine = repo.create_session("alice")
            mine.add_items(ONE)
            before = repo.get_session("alice", mine.session_id).updated_at  # type: ignore[union-attr]
            pg._query(f"GRANT USAGE ON SCHEMA {schema} TO {app}; "
                      "GRANT SELECT, INSERT, UPDATE, DELETE ON "
                      f"{schema}.agent_sessions, {schema}.agent_messages TO {app}; "
                      f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {app}", schema=None)

            async def write() -> None:
                engine = create_async_engine(
                    ASYNC_URL.set(username=app),
                    connect_args={"server_settings": {"search_path": schema}})
                try:
                    theirs = SQLAlchemySession("theirs", engine=engine)
                    await theirs.add_items(CHAT_B)
                    ours = SQLAlchemySession(mine.session_id, engine=engine)
                    await ours.add_items(FROM_AGENTS)
                    assert await ours.pop_item() == FROM_AGENTS[0]
                    await ours.clear_session()
                finally:
                    await engine.dispose()

            asyncio.run(write())
            again = repo.get_session("alice", mine.session_id)
            assert again is not None and again.updated_at > before and again.get_items() == []
            assert repo.get_unowned_session("theirs").get_items() == CHAT_B  # type: ignore[union-attr]
    finally:
        pg._query(f"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP OWNED BY {owner}, {app}; "
                  f"DROP ROLE {owner}; DROP ROLE {app}", schema=None)


def test_what_sqlalchemy_session_writes_is_searchable_and_what_it_removes_is_not(
    pg: PostgresBackend,
) -> None:
    async def body() -> None:
        async with agents_engine(pg) as engine:
            with SessionRepository(pg.target) as repo:
                s = repo.create_session("alice")
                sa = agents(engine, s.session_id)
                await sa.add_items([{"role": "user", "content": "Gelato in Bologna?"},
                                    {"role": "assistant", "content": "Yes, and tortellini."}])
                await agents(engine, "theirs").add_items([{"content": "tortellini recipe"}])
                assert [h.item["content"] for h in repo.search("alice", "tortellini")] == [
                    "Yes, and tortellini."]
                repo.claim_session("alice", "theirs")
                assert len(repo.search("alice", "tortellini")) == 2
                await sa.pop_item()
                await agents(engine, "theirs").clear_session()
                assert repo.search("alice", "tortellini") == []
                assert [h.item["content"] for h in repo.search("alice", "bologna")] == [
                    "Gelato in Bologna?"]

    asyncio.run(body())


def test_an_item_that_is_not_json_is_stored_and_not_indexed(pg: PostgresBackend) -> None:
    with SessionRepository(pg.target) as repo:
        s = repo.create_session("alice")
        with psycopg.connect(url_with_schema(pg.schema), autocommit=True) as conn:
            for text in ["not json: pizza", '{"content": "pizza", "x": NaN}',
                         '"pizza \\ud800"', '"' + "pizza " * 300_000 + '"']:
                conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                             "VALUES (%s, %s)", (s.session_id, text))
        assert len(pg._query("SELECT id FROM agent_messages")) == 4  # every insert went in
        # A lone surrogate is a separator (as on SQLite); a huge item: indexed,
        # or (past tsvector's limits) not.
        assert [h.item for h in repo.search("alice", "pizza")] in (
            ["pizza \ud800"], ["pizza \ud800", "pizza " * 300_000],
            ["pizza " * 300_000, "pizza \ud800"])
        s.add_items(["pizza"])
        assert "pizza" in [h.item for h in repo.search("alice", "pizza")]
