"""PostgreSQL's migrations, layouts adopted and refused, read-only opening, time zones, order."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import psycopg
import pytest
from backends import POSTGRES_URL, PostgresBackend, url_with_schema, wait_for_lock_waits

from sessions_dal import SessionRepository
from sessions_dal.backends._migrations import parse_migrations
from sessions_dal.backends.postgres import _schema
from sessions_dal.backends.postgres._sql import SQL
from sessions_dal.errors import (
    CorruptDataError,
    CorruptSessionError,
    IncompatibleSchemaError,
    MigrationError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)

ALL = list(range(1, len(_schema.MIGRATIONS) + 1))  # every version, as recorded


def test_a_new_schema_gets_sqlalchemy_sessions_layout_and_ours(pg: PostgresBackend) -> None:
    pg.open().close()
    columns = pg._query(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name IN ('agent_sessions', 'agent_messages') "
        "ORDER BY table_name, ordinal_position", pg.schema)
    assert columns == [
        ("agent_messages", "id", "bigint", "NO"),
        ("agent_messages", "session_id", "character varying", "NO"),
        ("agent_messages", "message_data", "text", "NO"),
        ("agent_messages", "created_at", "timestamp without time zone", "NO"),
        ("agent_sessions", "session_id", "character varying", "NO"),
        ("agent_sessions", "created_at", "timestamp without time zone", "NO"),
        ("agent_sessions", "updated_at", "timestamp without time zone", "NO"),
    ]
    assert pg.migrations_recorded() == ALL
    first = pg.snapshot()
    pg.open().close()  # opening again changes nothing
    assert pg.snapshot() == first


def test_an_sqlalchemy_session_database_is_adopted_without_rewriting_a_row(
    pg: PostgresBackend,
) -> None:
    pg.write_like_agents("chat", ['{"n": 1}', '{"n": 2}'], created_at="2025-03-04 05:06:07")
    rows_before = pg._query("SELECT * FROM agent_messages ORDER BY id")
    with pg.open() as repo:
        [unowned] = repo.get_unowned_sessions()
        assert unowned.created_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
        assert unowned.get_items() == [{"n": 1}, {"n": 2}]
    assert pg._query("SELECT * FROM agent_messages ORDER BY id") == rows_before
    indexes = {row[0] for row in pg._query(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s", pg.schema)}
    assert {"idx_agent_messages_session_time",  # SQLAlchemySession's, kept
            "idx_agent_messages_session_created_id"} <= indexes
    assert pg._query("SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
                     "AND table_name = 'agent_messages' AND column_name = 'id'",
                     pg.schema) == [("integer",)]


@pytest.mark.parametrize(
    ("ddl", "table"),
    [("CREATE TABLE agent_messages (id serial PRIMARY KEY, session_id varchar NOT NULL, "
      "message_data jsonb NOT NULL, created_at timestamp NOT NULL DEFAULT now())",
      "agent_messages"),
     ("CREATE TABLE agent_sessions (session_id varchar PRIMARY KEY, "
      "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL "
      "DEFAULT now())", "agent_sessions"),
     ("CREATE TABLE agent_users (id int PRIMARY KEY, name text)", "agent_users")],
)
def test_a_foreign_layout_is_refused_before_any_change(pg: PostgresBackend, ddl: str,
                                                       table: str) -> None:
    pg._query(ddl)
    before = pg.snapshot()
    with pytest.raises(IncompatibleSchemaError, match=f"a table '{table}' with columns"):
        pg.open()
    assert pg.snapshot() == before


def test_a_newer_schema_version_is_refused_unchanged(pg: PostgresBackend) -> None:
    pg.open().close()
    pg._query("INSERT INTO sessions_dal_migrations VALUES (99, now())")
    before = pg.snapshot()
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match="schema version 99"):
            pg.open(read_only=read_only)
    assert pg.snapshot() == before


def test_other_table_names_are_refused_once_set_up(pg: PostgresBackend) -> None:
    with pg.open(sessions_table="Chats", messages_table="Lines") as repo:
        repo.create_session("alice").add_items([1])
    tables = {row[0] for row in pg._query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", pg.schema)}
    assert {"Chats", "Lines"} <= tables and "agent_sessions" not in tables
    with pytest.raises(IncompatibleSchemaError, match="no table 'agent_sessions'"):
        pg.open()
    with pg.open(sessions_table="Chats", messages_table="Lines") as repo:
        assert repo.get_sessions("alice")[0].get_items() == [1]


def test_a_failing_migration_changes_nothing(pg: PostgresBackend) -> None:
    pg.open().close()
    before = pg.snapshot()
    latest = len(ALL)
    filler = "".join(f"-- version: {v}\nSELECT 1;\n" for v in ALL)
    broken = (*_schema.MIGRATIONS, *parse_migrations(
        f"{filler}-- version: {latest + 1}\nCREATE TABLE extra (x int);\n"
        "ALTER TABLE no_such_table ADD COLUMN y int;\n")[latest:])
    with psycopg.connect(pg.target, autocommit=True) as conn, \
            pytest.raises(MigrationError, match=f"the database is still at version {latest}"):
        _schema.apply_migrations(conn, "test", SQL(pg.schema, "agent_sessions", "agent_messages"),
                                 broken)
    assert pg.snapshot() == before


def test_processes_see_a_migration_made_while_they_waited(pg: PostgresBackend) -> None:
    # The catalog cache of a connection that looked before the lock was taken.
    sql = SQL(pg.schema, "agent_sessions", "agent_messages")
    with psycopg.connect(pg.target, autocommit=True) as early, \
            psycopg.connect(pg.target, autocommit=True) as other:
        assert _schema.schema_version(early, sql) == 0
        assert _schema.apply_migrations(other, "test", sql) == len(ALL)
        assert _schema.apply_migrations(early, "test", sql) == 0
    assert pg.migrations_recorded() == ALL


# -- read-only --------------------------------------------------------------------


def test_read_only_on_an_empty_schema_reads_nothing_and_creates_nothing(
    pg: PostgresBackend,
) -> None:
    with pg.open(read_only=True) as repo:
        assert repo.read_only
        assert (repo.get_users(), repo.get_unowned_sessions()) == ([], [])
        info = repo.info()
        assert (info.schema_version, info.migration_pending) == (0, True)
        assert repo.pending_migrations() == [
            f"version {m.version}: {m.title}" for m in _schema.MIGRATIONS]
        assert repo.pending_migrations()[0] == (
            "version 1: Users, ownership and metadata beside openai-agents' tables, "
            "and their indexes.")
        with pytest.raises(ReadOnlyDatabaseError, match="read_only=True"):
            repo.create_session("alice")
    assert pg.snapshot() == []


def test_read_only_reads_an_sqlalchemy_session_database_as_it_is(pg: PostgresBackend) -> None:
    pg.write_like_agents("chat", ['{"n": 1}'])
    before = pg.snapshot()
    with pg.open(read_only=True) as repo:
        [s] = repo.get_unowned_sessions()
        assert s.get_items() == [{"n": 1}]
        with pytest.raises(ReadOnlyDatabaseError):
            s.add_items([2])
        with pytest.raises(ReadOnlyDatabaseError):
            repo.claim_session("alice", "chat")
    assert pg.snapshot() == before


def test_read_only_refuses_even_a_write_the_library_did_not_guard(pg: PostgresBackend) -> None:
    with pg.open() as repo:
        repo.create_session("alice", session_id="s1")
    with pg.open(read_only=True) as repo:
        db = repo._store._db  # type: ignore[attr-defined]
        with pytest.raises(ReadOnlyDatabaseError, match="cannot be written"):
            db.read(lambda conn: conn.execute(f"DELETE FROM {pg.schema}.agent_users"))
    assert pg._query("SELECT user_id FROM agent_users") == [("alice",)]


# -- time zones and order ------------------------------------------------------------


@pytest.fixture
def zoned(pg: PostgresBackend) -> str:
    """The schema's URL with the session TimeZone of a writer in New York."""
    return f"{pg.target}%20-cTimeZone%3DAmerica/New_York"


def test_times_are_utc_whatever_the_connection_time_zone(pg: PostgresBackend, zoned: str
                                                         ) -> None:
    with SessionRepository(zoned) as repo:
        s = repo.create_session("alice")
        assert s.created_at.tzinfo == timezone.utc
        [listed] = repo.get_sessions("alice")
        assert listed.created_at == s.created_at
        assert listed.created_at.utcoffset() is not None
        assert listed.created_at.tzinfo == timezone.utc
        [user] = repo.get_users()
        assert user.created_at.tzinfo == timezone.utc


def test_naive_times_are_read_in_the_zone_connections_start_in(pg: PostgresBackend,
                                                                zoned: str) -> None:
    # openai-agents' naive times are local times of the zone its connections
    # run in (SQLAlchemySession writes CURRENT_TIMESTAMP there): 07:00 in New York.
    pg.write_like_agents("ny", ['"x"'], created_at="2025-01-02 07:00:00")
    with SessionRepository(zoned) as repo:
        session = repo.find_session("ny")
        assert session is not None
        assert session.created_at == datetime(2025, 1, 2, 12, 0, tzinfo=timezone.utc)
        claimed = repo.claim_session("alice", "ny")
        assert claimed.created_at == datetime(2025, 1, 2, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Asia/Tokyo"])
def test_items_keep_commit_order_in_any_zone(pg: PostgresBackend, zone: str) -> None:
    # Each writer's connection in the database's zone: ours and openai-agents'.
    url = f"{pg.target}%20-cTimeZone%3D{zone.replace('/', '%2F')}"
    with SessionRepository(url) as repo:
        repo.create_session("alice", session_id="s1").add_items(["0 ours"])
        pg.write_like_agents("s1", ['"1 theirs"'], zone=zone)
        repo.get_session("alice", "s1").add_items(["2 ours", "3 ours"])  # type: ignore[union-attr]
        pg.write_like_agents("s1", ['"4 theirs"'], zone=zone)
        session = repo.get_session("alice", "s1")
        assert session is not None
        assert session.get_items() == ["0 ours", "1 theirs", "2 ours", "3 ours", "4 theirs"]
        assert session.pop_item() == "4 theirs"


@pytest.fixture
def icu_database() -> Iterator[str]:
    """A database whose default collation sorts 'bob' before 'Bob' (ICU, und)."""
    assert POSTGRES_URL is not None
    name = f"icu_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'und' "
                     "LOCALE 'C.UTF-8' TEMPLATE template0")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_users_are_listed_in_sqlites_order_whatever_the_collation(icu_database: str) -> None:
    ids = ["bob", "Bob", "_admin", "a-b", "ab", "alice", "Zed", "é"]
    with SessionRepository(icu_database) as repo:
        for user in ids:
            repo.create_session(user)
        assert [u.user_id for u in repo.get_users()] == sorted(ids)  # code point order
        assert [u.user_id for u in repo.get_users(limit=3, offset=2)] == sorted(ids)[2:5]


def test_an_append_that_waited_for_a_lock_sorts_after_what_committed_meanwhile(
    pg: PostgresBackend,
) -> None:
    with pg.open() as repo:
        repo.create_session("alice", session_id="s1").add_items(["first"])
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        # Holds the ownership row: our append begins, then waits here.
        holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' FOR UPDATE")
        with pg.open(busy_timeout=120) as repo:
            session = repo.get_session("alice", "s1")
            assert session is not None
            waiter = threading.Thread(target=session.add_items, args=(["ours, waited"],))
            waiter.start()
            wait_for_lock_waits(pg, marker="agent_user_sessions")
            # Meanwhile SQLAlchemySession appends and commits (its row lock is free).
            with psycopg.connect(url_with_schema(pg.schema)) as other:
                other.execute("SELECT 1 FROM agent_sessions WHERE session_id = 's1' FOR UPDATE")
                other.execute("INSERT INTO agent_messages (session_id, message_data) "
                              "VALUES ('s1', '\"theirs\"')")
            holder.rollback()
            waiter.join()
            # Ours is stamped when it inserts, not when its transaction began: it
            # comes last, in both libraries' order.
            assert session.get_items() == ["first", "theirs", "ours, waited"]
    finally:
        holder.close()


def test_times_that_are_not_finite_are_named_or_read_as_the_epoch(pg: PostgresBackend
                                                                   ) -> None:
    pg.write_like_agents("odd", ['"x"'])
    pg._query("UPDATE agent_sessions SET created_at = 'infinity', updated_at = '-infinity'")
    pg._query("UPDATE agent_messages SET created_at = 'infinity'")
    with pg.open() as repo:
        [odd] = repo.get_unowned_sessions()
        assert odd.created_at == datetime(1970, 1, 1, tzinfo=timezone.utc)
        assert odd.get_items() == ["x"]
        out = io.StringIO()
        repo.export_to(out)
        assert '"session_id": "odd"' in out.getvalue() and '"item": "x"' in out.getvalue()
        repo.create_session("alice", session_id="hurt")
        pg.set_session_column("hurt", "updated_at", "infinity")
        with pytest.raises(CorruptSessionError, match="updated_at that is not a finite"):
            repo.get_sessions("alice")
        pg._query("UPDATE agent_users SET created_at = 'infinity'")
        with pytest.raises(CorruptDataError, match="user 'alice'"):
            repo.get_users()


@pytest.mark.parametrize("order", ["created", "updated"])
def test_a_page_of_sessions_in_either_order_can_be_an_index_range_scan(
    pg: PostgresBackend, order: str
) -> None:
    pg.open().close()
    sql = SQL(pg.schema, "agent_sessions", "agent_messages")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = (now, 1) if order == "created" else (now, now, 1)
    index = "activity" if order == "updated" else "user"
    with psycopg.connect(pg.target, autocommit=True) as conn:
        # Forbid what the planner may prefer on a tiny table: an index that serves
        # the order must then be there, or the plan would still scan and sort.
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_sort = off")
        for statement, params in [(sql.select_page[order], ("alice", 10, 5)),
                                  (sql.select_first[order], ("alice", 10)),
                                  (sql.select_after[order], ("alice", *keys, 10))]:
            plan = "\n".join(row[0] for row in conn.execute(
                f"EXPLAIN {statement}", params).fetchall())  # type: ignore[arg-type]
            assert f"Index Scan Backward using idx_agent_user_sessions_{index}" in plan, plan
            assert "Sort" not in plan, plan


def test_a_version_1_database_upgrades_to_the_activity_order(pg: PostgresBackend) -> None:
    sql = SQL(pg.schema, "agent_sessions", "agent_messages")
    with psycopg.connect(pg.target, autocommit=True) as conn:
        assert _schema.apply_migrations(conn, "test", sql, _schema.MIGRATIONS[:1]) == 1
        conn.execute("INSERT INTO agent_users VALUES ('alice', '2026-01-01T00:00:00Z')")
        conn.execute("INSERT INTO agent_sessions (session_id) VALUES ('old')")
        conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, created_at, "
                     "updated_at) VALUES ('old', 'alice', '2026-01-01Z', '2026-01-01Z')")
    with pg.open() as repo:
        assert pg.migrations_recorded() == ALL
        newer = repo.create_session("alice")
        with psycopg.connect(pg.target, autocommit=True) as conn:  # as SQLAlchemySession adds
            conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                         "VALUES ('old', '{}')")
            conn.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP "
                         "WHERE session_id = 'old'")
        assert [s.session_id for s in repo.get_sessions("alice", order="updated")] == [
            "old", newer.session_id]


def test_a_version_3_database_is_indexed_by_the_text_rules_of_version_4(
    pg: PostgresBackend
) -> None:
    # Version 3 glued the words around a NUL, left out an item with a
    # backslash before "u0000" or a lone surrogate whole, and dropped a word
    # of 2,047 bytes.
    old = [{"content": "alpha\x00beta"}, {"content": "C:\\u0000dir rome"},
           {"content": "x " + "東" * 1000 + " y"}, {"content": "lone\ud800surrogate"}]
    sql = SQL(pg.schema, "agent_sessions", "agent_messages")
    with psycopg.connect(pg.target, autocommit=True) as conn:
        assert _schema.apply_migrations(conn, "test", sql, _schema.MIGRATIONS[:3]) == 3
        conn.execute("INSERT INTO agent_users VALUES ('alice', '2026-01-01T00:00:00Z')")
        conn.execute("INSERT INTO agent_sessions (session_id) VALUES ('old')")
        conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, "
                     "created_at, updated_at) VALUES ('old', 'alice', %s, '2026-01-01Z', "
                     "'2026-01-01Z')", [json.dumps({"title": "Trip\x00to Naples"})])
        for item in old:
            conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                         "VALUES ('old', %s)", [json.dumps(item)])
        assert conn.execute("SELECT count(*) FROM sessions_dal_search").fetchone() == (3,)
    with pg.open() as repo:
        assert pg.migrations_recorded() == ALL

        def found(query: str) -> list[object]:
            return [hit.item for hit in repo.search("alice", query, limit=None)]

        assert found("beta") == [old[0]] and found("alphabeta") == []
        assert found("u0000dir") == [old[1]] and found("rome") == [old[1]]
        assert found("東" * 500 + "*") == [old[2]] and found("y") == [old[2]]
        assert found("naples") == [None] and found("tonaples") == []
        assert found("surrogate") == [old[3]]


def test_a_version_8_database_s_history_gets_its_words(pg: PostgresBackend) -> None:
    sql = SQL(pg.schema, "agent_sessions", "agent_messages")
    with psycopg.connect(pg.target, autocommit=True) as conn:
        assert _schema.apply_migrations(conn, "test", sql, _schema.MIGRATIONS[:8]) == 8
        conn.execute("INSERT INTO agent_users VALUES ('alice', '2026-01-01T00:00:00Z')")
        for session_id in ("s", "nobodys"):
            conn.execute("INSERT INTO agent_sessions (session_id) VALUES (%s)", [session_id])
            conn.execute("INSERT INTO agent_messages (session_id, message_data) "
                         "VALUES (%s, '\"sum\"')", [session_id])
            for n, text in enumerate(['"rome by train"', '"naples"', '"old sum"']):
                conn.execute("INSERT INTO sessions_dal_history (session_id, id, layer, "
                             "replaced, message_data, created_at) VALUES (%s, %s, 1, %s, %s, "
                             "'2026-01-01')", [session_id, n + 1, n == 2, text])
        conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, created_at, "
                     "updated_at) VALUES ('s', 'alice', '2026-01-01Z', '2026-01-01Z')")
    with pg.open() as repo:
        assert pg.migrations_recorded() == ALL
        assert [(h.item, h.layer) for h in repo.search("alice", "rome")] == [("rome by train", 1)]
        assert repo.search("alice", "old") == [] and repo.check() == []
        repo.claim_session("alice", "nobodys")
        assert sorted(h.session.session_id for h in repo.search("alice", "rome")) == [
            "nobodys", "s"]
    assert pg._query("SELECT count(*) FROM sessions_dal_history WHERE words IS NULL") == [(2,)]
