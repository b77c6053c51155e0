"""PostgreSQL as operators run it: several roles, a schema per tenant, other server defaults.

Each test gets a database of its own (:func:`database`), set up as a shared
production server may be: an openai-agents role with rights on its two tables
only, ``CREATE`` on ``public`` granted to everyone (as before PostgreSQL 15),
tenants in schemas of their own, and server defaults other than the test
server's (isolation, timeouts, time zone, date style, a C ``lc_ctype``).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

import psycopg
import pytest
from backends import POSTGRES_URL

from sessions_dal import SessionRepository
from sessions_dal.errors import DatabaseError, IncompatibleSchemaError, MigrationError

if POSTGRES_URL is None:  # tests/conftest.py does not even collect this folder then
    pytest.skip("no PostgreSQL server", allow_module_level=True)

SECRET = "alice-secret-metadata"


class Database:
    """A database of its own on the test server, and roles made for it."""

    def __init__(self, **create: str) -> None:
        assert POSTGRES_URL is not None
        self.name = f"prod_{uuid.uuid4().hex[:12]}"
        self.roles: list[str] = []
        options = " ".join(f"{key} '{value}'" for key, value in create.items())
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name} {options} TEMPLATE template0")

    def url(self, user: str | None = None, **settings: str) -> str:
        """A URL on this database, as ``user``, with session ``settings`` (-c options)."""
        assert POSTGRES_URL is not None
        parts = urlsplit(POSTGRES_URL)
        login = user or parts.username or "postgres"
        options = " ".join(f"-c{key}={value}" for key, value in settings.items())
        query = f"?options={urlquote(options, safe='')}" if options else ""
        return f"postgresql://{login}@{parts.hostname}:{parts.port}/{self.name}{query}"

    def connect(self, user: str | None = None, **settings: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(user, **settings), autocommit=True)

    def run(self, *statements: str) -> list[Any]:
        """Run statements as the server's superuser; the last one's rows."""
        rows: list[Any] = []
        with self.connect() as conn:
            for statement in statements:
                cursor = conn.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
        return rows

    def role(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.run(f"CREATE ROLE {name} LOGIN")
        self.roles.append(name)
        return name

    def drop(self) -> None:
        assert POSTGRES_URL is not None
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {self.name} WITH (FORCE)")
            for role in self.roles:
                conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def database() -> Iterator[Database]:
    made = Database()
    try:
        yield made
    finally:
        made.drop()


def agents_role(db: Database, schema: str = "public") -> str:
    """A role as openai-agents' app has it: rights on its two tables (and their sequence) only."""
    role = db.role("agents")
    db.run(f"GRANT USAGE ON SCHEMA {schema} TO {role}",
           f"GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.agent_sessions, "
           f"{schema}.agent_messages TO {role}",
           f"GRANT USAGE ON SEQUENCE {schema}.agent_messages_id_seq TO {role}")
    return role


def append_like_agents(conn: psycopg.Connection[Any], session_id: str, texts: list[str]
                       ) -> None:
    """SQLAlchemySession's add_items, statement for statement, on ``conn``'s zone."""
    with conn.transaction():
        conn.execute("INSERT INTO agent_sessions (session_id) VALUES (%s) "
                     "ON CONFLICT DO NOTHING", [session_id])
        conn.execute("SELECT session_id FROM agent_sessions WHERE session_id = %s FOR UPDATE",
                     [session_id])
        conn.cursor().executemany(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s)",
            [(session_id, text) for text in texts])
        conn.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP "
                     "WHERE session_id = %s", [session_id])


# -- 1. no privilege escalation through our functions --------------------------------

# A trigger function the attacker may always create (in its own temporary
# schema): if any of our functions touches a table of the attacker's, it runs
# as the function's owner, and records who it ran as and what it could read.
_STEAL = """
CREATE FUNCTION pg_temp.steal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO pg_temp.loot SELECT current_user::text,
            (SELECT string_agg(metadata, ',') FROM public.agent_user_sessions);
    EXCEPTION WHEN others THEN
        INSERT INTO pg_temp.loot VALUES (current_user::text, SQLERRM);
    END;
    RETURN NULL;
END $$"""

_SHADOWS = {
    "agent_user_sessions": "(seq bigint, session_id text, user_id text, metadata text, "
                           "created_at timestamptz, updated_at timestamptz)",
    "agent_users": "(user_id text, created_at timestamptz)",
    "sessions_dal_search": "(item_id bigint, session_id text, words tsvector)",
    "sessions_dal_migrations": "(version int, applied_at timestamptz)",
}

# With CREATE on public: overloads and operators that would be a better match
# than ours or pg_catalog's for arguments of other types.
_PUBLIC_TRAPS = [
    """CREATE FUNCTION public.trap_eq(text, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
        BEGIN
            CREATE TEMP TABLE IF NOT EXISTS loot2 (who text, what text);
            INSERT INTO loot2 SELECT current_user::text,
                (SELECT string_agg(metadata, ',') FROM public.agent_user_sessions);
        EXCEPTION WHEN others THEN NULL;
        END;
        RETURN $1 = $2::text;
    END $$""",
    "CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = varchar, FUNCTION = public.trap_eq)",
    """CREATE FUNCTION public.trap_eq2(varchar, text) RETURNS boolean LANGUAGE sql AS
    'SELECT public.trap_eq($2, $1)'""",
    "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.trap_eq2)",
    """CREATE FUNCTION public.sessions_dal_owner(text, varchar) RETURNS tsvector
    LANGUAGE sql AS 'SELECT CASE WHEN public.trap_eq($1, $2) THEN NULL END::tsvector'""",
    """CREATE FUNCTION public.sessions_dal_words(varchar) RETURNS tsvector
    LANGUAGE sql AS 'SELECT CASE WHEN public.trap_eq($1::text, $1) THEN NULL END::tsvector'""",
]


@pytest.mark.parametrize("public_writable", [False, True])
def test_a_role_with_rights_on_agents_tables_only_cannot_act_through_our_triggers(
        database: Database, public_writable: bool) -> None:
    if public_writable:
        database.run("GRANT CREATE ON SCHEMA public TO PUBLIC")
    with SessionRepository(database.url()) as repo:
        alice = repo.create_session("alice", session_id="a1", metadata={"title": SECRET})
        alice.add_items([{"role": "user", "content": "hello from alice"}])
        repo.create_session("bob", session_id="b1").add_items(["bob's"])
        before = database.run("SELECT user_id, session_id, metadata FROM agent_user_sessions "
                              "ORDER BY seq")
    role = agents_role(database)
    with database.connect(role) as conn:
        conn.execute("CREATE TEMP TABLE loot (who text, what text)")
        conn.execute(_STEAL)
        for name, columns in _SHADOWS.items():
            conn.execute(f"CREATE TEMP TABLE {name} {columns}")
            nulls = ", ".join(["NULL"] * (columns.count(",") + 1))
            conn.execute(f"INSERT INTO pg_temp.{name} VALUES ({nulls})")
            conn.execute(f"CREATE TRIGGER steal BEFORE INSERT OR UPDATE OR DELETE ON "
                         f"pg_temp.{name} FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.steal()")
        if public_writable:
            for statement in _PUBLIC_TRAPS:
                conn.execute(statement)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS loot2 (who text, what text)")
        # Every way its writes reach our triggers: an append (index, activity),
        # a change of updated_at, a pop, a clear; to alice's session and a new one.
        for session_id in ("a1", "new-one"):
            append_like_agents(conn, session_id, ['{"content": "planted words"}'])
            with conn.transaction():
                conn.execute("DELETE FROM agent_messages WHERE id = (SELECT max(id) FROM "
                             "agent_messages WHERE session_id = %s)", [session_id])
            append_like_agents(conn, session_id, ['{"content": "again"}'])
        with conn.transaction():
            conn.execute("DELETE FROM agent_messages WHERE session_id = 'new-one'")
            conn.execute("DELETE FROM agent_sessions WHERE session_id = 'new-one'")
        # Calling a trigger function directly is refused.
        for function in ("sessions_dal_search_on_insert", "sessions_dal_activity_on_update"):
            with pytest.raises(psycopg.Error):
                conn.execute(f"SELECT public.{function}()")
        loot = conn.execute("SELECT who, what FROM pg_temp.loot UNION ALL "
                            "SELECT who, what FROM loot2").fetchall()
        # Nothing of ours ever ran as another role in its tables or functions.
        assert [row for row in loot if row[0] != role or SECRET in (row[1] or "")] == []
        assert loot == [], loot  # our functions never touched the attacker's objects
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT metadata FROM public.agent_user_sessions")
    after = database.run("SELECT user_id, session_id, metadata FROM agent_user_sessions "
                         "ORDER BY seq")
    assert after == before
    if public_writable:
        # Functions named like ours, of another owner, in our schema: refused.
        with pytest.raises(IncompatibleSchemaError, match=f"sessions_dal_owner \\({role}\\)"):
            SessionRepository(database.url())
        database.run("DROP FUNCTION public.sessions_dal_owner(text, varchar), "
                     "public.sessions_dal_words(varchar)")
    with SessionRepository(database.url()) as repo:
        items = repo.get_session("alice", "a1").get_items()  # type: ignore[union-attr]
        assert items == [{"role": "user", "content": "hello from alice"}, {"content": "again"}]
        assert repo.get_session("bob", "b1").get_items() == ["bob's"]  # type: ignore[union-attr]
        # Its writes were indexed for the session's owner, as any writer's are.
        assert [hit.item for hit in repo.search("alice", "again")] == [{"content": "again"}]
        assert repo.search("bob", "again") == []
        assert repo.check() == []


def test_trigger_functions_have_a_fixed_path_and_no_execute_for_public(
        database: Database) -> None:
    SessionRepository(database.url()).close()
    rows = database.run(
        "SELECT proname, prosecdef, proconfig, has_function_privilege('public', oid, "
        "'EXECUTE') FROM pg_proc WHERE proname LIKE 'sessions_dal_%' ORDER BY proname")
    assert rows
    for name, _definer, config, public_may_execute in rows:
        assert config == ["search_path=pg_catalog, pg_temp"], name
        trigger = name.endswith(("_on_update", "_on_delete", "_on_insert", "_on_own",
                                 "_on_change", "_on_truncate"))
        assert public_may_execute is not trigger, name


# -- 2. tenants by schema ----------------------------------------------------------------


def every_call(url: str, user: str) -> dict[str, Any]:
    """Use every public call of a repository on ``url``; what it saw."""
    seen: dict[str, Any] = {}
    with SessionRepository(url) as repo:
        s = repo.create_session(user, session_id=f"{user}-1", metadata={"title": f"{user} trip"})
        s.add_items([{"content": f"{user} words"}, 2, 3])
        assert s.pop_item() == 3
        repo.update_metadata(user, s.session_id, {"k": user})
        other = repo.create_session(user, session_id=f"{user}-2")
        other.add_items(["x"])
        other.clear_session()
        fork = repo.fork_session(user, s.session_id)
        seen["fork"] = fork.get_items()
        seen["sessions"] = sorted(x.session_id for x in repo.get_sessions(user, limit=None))
        seen["by_activity"] = len(repo.get_sessions(user, order="updated"))
        seen["users"] = [u.user_id for u in repo.get_users()]
        seen["search"] = [h.session.user_id for h in repo.search(user, "words")]
        seen["count"] = repo.count_sessions(user)
        seen["found"] = repo.find_session(f"{user}-1") is not None
        seen["unowned"] = [x.session_id for x in repo.get_unowned_sessions()]
        seen["info"] = (repo.info().users, repo.info().sessions, repo.info().items)
        seen["check"] = repo.check()
        out = io.StringIO()
        repo.export_to(out)
        seen["export_lines"] = len(out.getvalue().splitlines())
        repo.delete_session(user, fork.session_id)
        repo.import_from(io.StringIO(out.getvalue()), replace=True)
        seen["pruned"] = repo.prune(keep_last=2, dry_run=True).sessions
        # openai-agents' sessions of this schema: one claimed, one deleted.
        seen["unowned_one"] = repo.get_unowned_session(f"{user}-agents") is not None
        seen["claimed"] = [x.user_id for x in repo.claim_sessions(user, [f"{user}-agents"])]
        seen["deleted_unowned"] = repo.delete_unowned_session(f"{user}-gone")
        repo.create_session(f"{user}-temp")
        seen["deleted_user"] = repo.delete_user(f"{user}-temp").sessions
        seen["items"] = repo.get_session(user, f"{user}-1").get_items()  # type: ignore[union-attr]
    return seen


def seed_unowned(database: Database, schema: str, user: str) -> None:
    """Sessions openai-agents wrote in ``schema`` (set up first): two for ``every_call``."""
    search_path = "public" if schema == "public" else f"{schema},public"
    SessionRepository(database.url(search_path=search_path)).close()
    with database.connect(search_path=schema) as conn:
        for name in ("agents", "gone"):
            append_like_agents(conn, f"{user}-{name}", ['"theirs"'])


def test_two_tenants_on_one_database_never_meet(database: Database) -> None:
    seed_unowned(database, "public", "alice")
    seed_unowned(database, "tenant2", "bob")
    public = every_call(database.url(), "alice")
    public_rows = database.run("SELECT session_id FROM public.agent_user_sessions ORDER BY 1")
    # tenant2 does not exist yet: it is created, and public's tables are not used.
    tenant = every_call(database.url(search_path="tenant2,public"), "bob")
    assert tenant["users"] == ["bob"] and public["users"] == ["alice"]
    assert tenant["search"] == ["bob", "bob"] and public["search"] == ["alice", "alice"]
    assert sorted(tenant["unowned"]) == ["bob-agents", "bob-gone"] and tenant["check"] == []
    assert sorted(public["unowned"]) == ["alice-agents", "alice-gone"]
    for seen in (public, tenant):
        assert seen["unowned_one"] and seen["deleted_unowned"] and seen["deleted_user"] == 1
    assert (public["claimed"], tenant["claimed"]) == (["alice"], ["bob"])
    assert database.run("SELECT session_id FROM public.agent_user_sessions ORDER BY 1"
                        ) == public_rows
    assert {row[0] for row in database.run(
        "SELECT user_id FROM tenant2.agent_user_sessions")} == {"bob"}
    # And back: public's repository still sees only its own.
    with SessionRepository(database.url()) as repo:
        assert [u.user_id for u in repo.get_users()] == ["alice"]
        assert repo.search("bob", "words") == []
    with SessionRepository(database.url(search_path="tenant2,public"), read_only=True) as repo:
        assert [u.user_id for u in repo.get_users()] == ["bob"]


def test_a_read_only_tenant_whose_schema_does_not_exist_reads_nothing(
        database: Database) -> None:
    seed_unowned(database, "public", "alice")
    every_call(database.url(), "alice")
    with SessionRepository(database.url(search_path="nobody_yet,public"),
                           read_only=True) as repo:
        assert (repo.get_users(), repo.get_unowned_sessions()) == ([], [])
        assert repo.get_sessions("alice") == []
    assert database.run("SELECT 1 FROM pg_namespace WHERE nspname = 'nobody_yet'") == []


def test_the_user_schema_comes_first_where_it_exists(database: Database) -> None:
    role = database.role("tenant")
    database.run(f"CREATE SCHEMA {role} AUTHORIZATION {role}",
                 f"GRANT CREATE ON DATABASE {database.name} TO {role}")
    with SessionRepository(database.url(role)) as repo:  # "$user", public
        repo.create_session("carol")
    assert database.run(f"SELECT user_id FROM {role}.agent_users") == [("carol",)]
    assert database.run("SELECT to_regclass('public.agent_users')") == [(None,)]


# -- 3. any server default -----------------------------------------------------------------


def concurrent_appends(url: str, threads: int = 4, calls: int = 5, batch: int = 20) -> None:
    """Appends from several threads to one session: each call's items stay together."""
    with SessionRepository(url, pool_size=threads) as repo:
        session = repo.create_session("alice", session_id="s")
        start = threading.Barrier(threads)
        errors: list[BaseException] = []

        def append(n: int) -> None:
            start.wait()
            try:
                for call in range(calls):
                    session.add_items([f"{n}:{call}:{i}" for i in range(batch)])
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        items = session.get_items()
        assert len(items) == threads * calls * batch
        runs = [items[i:i + batch] for i in range(0, len(items), batch)]
        assert all(len({item.rsplit(":", 1)[0] for item in run}) == 1 for run in runs)


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_concurrent_appends_wait_their_turn_under_any_default_isolation(
        database: Database, isolation: str) -> None:
    database.run(f"ALTER DATABASE {database.name} SET default_transaction_isolation "
                 f"= '{isolation}'")
    concurrent_appends(database.url())


def test_a_server_lock_timeout_is_replaced_by_busy_timeout(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET lock_timeout = '1ms'")
    with SessionRepository(database.url(), busy_timeout=60) as repo:
        session = repo.create_session("alice", session_id="s")
        with database.connect() as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT 1 FROM agent_sessions WHERE session_id = 's' FOR UPDATE")
            done = threading.Event()
            failure: list[BaseException] = []

            def append() -> None:
                try:
                    session.add_items(["waited"])
                except BaseException as exc:  # reported below
                    failure.append(exc)
                done.set()

            worker = threading.Thread(target=append)
            worker.start()
            # Until the append waits for the row (not a wall-clock guess).
            while not done.is_set() and not holder.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'").fetchone():
                time.sleep(0.01)
            holder.execute("COMMIT")
            worker.join()
        assert failure == []
        assert session.get_items() == ["waited"]


def test_a_server_statement_timeout_does_not_cut_our_calls_short(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET statement_timeout = '1ms'")
    with SessionRepository(database.url()) as repo:
        session = repo.create_session("alice")
        session.add_items([{"content": f"word{i} common"} for i in range(3000)])
        assert len(repo.search("alice", "common", limit=5)) == 5
        assert repo.prune(keep_last=0).sessions == 1


def test_the_server_ending_idle_sessions_costs_nothing(database: Database) -> None:
    # Long enough that a busy machine never pauses that long inside one call
    # (where the library retries once), short enough for a test.
    database.run(f"ALTER DATABASE {database.name} SET idle_session_timeout = '2s'")
    with SessionRepository(database.url(application_name="idle_victim")) as repo:
        session = repo.create_session("alice")
        for n in range(3):
            _wait_until_the_server_ends(database, "idle_victim")
            session.add_items([n])  # on a connection the server has ended: still works
        assert session.get_items() == [0, 1, 2]


def _wait_until_the_server_ends(database: Database, application: str) -> None:
    """Until no connection of ``application`` is left (an event, not a guess)."""
    deadline = time.monotonic() + 120
    while database.run("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                       f"'{application}'"):
        assert time.monotonic() < deadline, "the server never ended the idle connections"
        time.sleep(0.05)


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "Pacific/Chatham",
                                  "America/New_York"])
def test_times_are_right_and_orders_agree_in_any_server_zone(database: Database, zone: str
                                                             ) -> None:
    database.run(f"ALTER DATABASE {database.name} SET TimeZone = '{zone}'")
    before = datetime.now(timezone.utc)
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        session = repo.create_session("alice", session_id="s")
        session.add_items(["ours 1"])
        append_like_agents(agents, "s", ['"theirs 2"'])
        session.add_items(["ours 3", "ours 4"])
        append_like_agents(agents, "t", ['"theirs alone"'])
        append_like_agents(agents, "s", ['"theirs 5"'])
        assert session.get_items() == ["ours 1", "theirs 2", "ours 3", "ours 4", "theirs 5"]
        assert session.pop_item() == "theirs 5"
        # Times are the instants they were, whatever zone the server keeps them in.
        slack = timedelta(minutes=10)  # a clock check, not a speed check
        unowned = repo.find_session("t")
        assert unowned is not None
        for moment in (session.created_at, unowned.created_at, unowned.updated_at):
            assert before - slack <= moment <= datetime.now(timezone.utc) + slack
            assert moment.tzinfo is timezone.utc
        claimed = repo.claim_session("bob", "t")
        assert abs(claimed.created_at - unowned.created_at) < timedelta(seconds=1)
        # As stored: local times of the server's zone, as SQLAlchemySession writes them.
        stored = agents.execute("SELECT created_at FROM agent_messages ORDER BY id").fetchall()
        local = datetime.now(timezone.utc).astimezone(_zone(zone)).replace(tzinfo=None)
        assert all(abs(row[0] - local) < slack for row in stored)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@pytest.mark.parametrize("style", ["SQL, DMY", "German", "Postgres, YMD"])
def test_any_date_style(database: Database, style: str) -> None:
    database.run(f"ALTER DATABASE {database.name} SET DateStyle = '{style}'")
    with SessionRepository(database.url()) as repo:
        session = repo.create_session("alice")
        session.add_items(list(range(25)))
        assert list(session.iter_items(page_size=4)) == list(range(25))
        assert list(session.iter_items(page_size=3, newest_first=True)) == list(range(24, -1, -1))
        out = io.StringIO()
        repo.export_to(out)
        repo.import_from(io.StringIO(out.getvalue()), replace=True)
        assert session.get_items() == list(range(25))


@pytest.fixture
def c_ctype() -> Iterator[Database]:
    made = Database(LC_COLLATE="C", LC_CTYPE="C")
    try:
        yield made
    finally:
        made.drop()


def test_search_folds_every_script_with_a_c_lc_ctype(c_ctype: Database) -> None:
    with SessionRepository(c_ctype.url()) as repo:
        s = repo.create_session("alice", metadata={"title": "ΣΟΦΊΑ"})
        s.add_items([{"content": "ПРИВЕТ, мир"}, {"content": "Émile ÉCOLE"}])
        assert [h.item for h in repo.search("alice", "привет")] == [{"content": "ПРИВЕТ, мир"}]
        assert [h.item for h in repo.search("alice", "МИР")] == [{"content": "ПРИВЕТ, мир"}]
        assert [h.item for h in repo.search("alice", "ecole")] == [
            {"content": "Émile ÉCOLE"}]
        assert [h.item for h in repo.search("alice", "σοφια")] == [None]


def test_standard_conforming_strings_off_changes_nothing(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET standard_conforming_strings = off")
    with SessionRepository(database.url()) as repo:
        s = repo.create_session("alice")
        s.add_items([{"content": "back\\slash café"}])
        assert [h.item for h in repo.search("alice", "cafe")] == [
            {"content": "back\\slash café"}]


# -- 4. SQLAlchemySession on a server not in UTC ----------------------------------------


def test_an_append_waiting_on_our_lock_never_lands_inside_our_batch(database: Database
                                                                    ) -> None:
    database.run(f"ALTER DATABASE {database.name} SET TimeZone = 'Asia/Kolkata'")
    with SessionRepository(database.url()) as repo:
        session = repo.create_session("alice", session_id="s")
        ours = [f"ours {n}" for n in range(200)]
        with database.connect() as blocker, database.connect() as agents:
            # Our call stops once its items are in (the search queue is
            # locked), after it locked the session and read its time.
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE sessions_dal_search_queue IN EXCLUSIVE MODE")
            worker = threading.Thread(target=session.add_items, args=(ours,))
            worker.start()
            _wait_for_lock_waits(blocker, 1)
            # openai-agents begins now (its items get this transaction's start,
            # later than our call's time), then waits for our row lock.
            agents.execute("BEGIN")
            agents.execute("SELECT now()")
            theirs = threading.Thread(target=lambda: (
                agents.execute("SELECT 1 FROM agent_sessions WHERE session_id = 's' "
                               "FOR UPDATE"),
                agents.execute("INSERT INTO agent_messages (session_id, message_data) "
                               "VALUES ('s', '\"theirs\"')"),
                agents.execute("COMMIT")))
            theirs.start()
            _wait_for_lock_waits(blocker, 2)
            blocker.execute("COMMIT")
            worker.join()
            theirs.join()
        assert session.get_items() == [*ours, "theirs"]


def _wait_for_lock_waits(conn: psycopg.Connection[Any], count: int) -> None:
    """Until ``count`` backends of this database wait for a lock (an event, not a guess);
    fails if that never happens."""
    for _ in range(6000):
        if conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone()[0] >= count:  # type: ignore[index]
            return
        time.sleep(0.01)
    raise AssertionError(f"{count} backend(s) never waited for a lock")


def test_real_sqlalchemy_session_and_ours_agree_in_a_server_zone(database: Database) -> None:
    pytest.importorskip("agents")
    pytest.importorskip("asyncpg")
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    database.run(f"ALTER DATABASE {database.name} SET TimeZone = 'Asia/Kolkata'")
    url = make_url(database.url()).set(drivername="postgresql+asyncpg", query={})

    async def agents_add(items: list[Any]) -> None:
        engine = create_async_engine(url)
        try:
            await SQLAlchemySession("s", engine=engine).add_items(items)
        finally:
            await engine.dispose()

    with SessionRepository(database.url()) as repo:
        session = repo.create_session("alice", session_id="s")
        session.add_items([{"n": 1}])
        asyncio.run(agents_add([{"n": 2}]))
        session.add_items([{"n": 3}])
        asyncio.run(agents_add([{"n": 4}, {"n": 5}]))
        assert session.get_items() == [{"n": n} for n in range(1, 6)]
        rows = database.run("SELECT created_at FROM agent_messages ORDER BY id")
        assert [row[0] for row in rows] == sorted(row[0] for row in rows)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_pruning_unowned_sessions_reads_their_times_in_the_server_zone(
        database: Database, zone: str) -> None:
    database.run(f"ALTER DATABASE {database.name} SET TimeZone = '{zone}'")
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        append_like_agents(agents, "three-hours-old", ['"x"'])
        agents.execute("UPDATE agent_sessions SET updated_at = LOCALTIMESTAMP - interval '3h'")
        assert repo.prune(older_than=timedelta(hours=4), unowned=True).sessions == 0
        assert repo.prune(older_than=timedelta(hours=2), unowned=True).sessions == 1


def test_a_slow_reader_of_an_export_is_not_cut_off(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET idle_in_transaction_session_timeout "
                 "= '50ms'")

    class Slow(io.StringIO):
        def write(self, text: str) -> int:
            time.sleep(0.2)  # longer than the server's timeout, whatever the machine
            return super().write(text)

    with SessionRepository(database.url()) as repo:
        for n in range(3):
            repo.create_session("alice").add_items([n])
        out = Slow()
        repo.export_to(out)
        assert len(out.getvalue().splitlines()) >= 7


@pytest.mark.parametrize(("zone", "utc_hour"), [("CET", 10), ("EET", 9), ("WET", 11),
                                                 ("Europe/Berlin", 10), ("UTC", 12)])
def test_summer_times_of_zones_named_like_abbreviations(database: Database, zone: str,
                                                        utc_hour: int) -> None:
    # 'CET' as TimeZone is a zone with summer time; as AT TIME ZONE's argument
    # it is the abbreviation, a fixed +01: read through it, July was an hour off.
    database.run(f"ALTER DATABASE {database.name} SET TimeZone = '{zone}'")
    SessionRepository(database.url()).close()
    with database.connect() as agents:
        agents.execute("INSERT INTO agent_sessions VALUES "
                       "('summer', '2026-07-01 12:00', '2026-07-01 12:00')")
    with SessionRepository(database.url()) as repo:
        found = repo.get_unowned_session("summer")
        assert found is not None
        assert found.created_at == datetime(2026, 7, 1, utc_hour, tzinfo=timezone.utc)
        out = io.StringIO()
        repo.export_to(out)
        repo.import_from(io.StringIO(out.getvalue()), replace=True)
    assert database.run("SELECT created_at::text FROM agent_sessions") == [
        ("2026-07-01 12:00:00",)]


def test_items_with_ids_a_writer_chose_never_touch_titles(database: Database) -> None:
    SessionRepository(database.url()).close()
    role = agents_role(database)
    with database.connect(role) as agents:
        # Ids the sequence never gives, chosen to take title rows' keys (-seq).
        agents.execute("INSERT INTO agent_sessions (session_id) VALUES ('junk')")
        agents.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                       "SELECT -g, 'junk', '\"x words\"' FROM generate_series(1, 20) g")
        agents.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                       "VALUES (-21, 'junk', '1')")
    with SessionRepository(database.url()) as repo:
        for n in range(25):
            repo.create_session("alice", metadata={"title": f"trip {n}"})
        with database.connect(role) as agents:
            agents.execute("DELETE FROM agent_messages WHERE id < 0")
        assert len(repo.search("alice", "trip", limit=None)) == 25
        assert repo.check() == []
        assert repo.reindex() == 0


def test_an_item_at_the_tsvector_limit_is_stored_unindexed(database: Database) -> None:
    # 65,535 lexemes of 12 letters fit a tsvector (1,048,560 of its 1,048,575
    # bytes), and the owner's lexemes would pass its limit.
    words = " ".join(f"w{n:011x}" for n in range(65_535))
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        session = repo.create_session("alice")
        session.add_items([{"content": words}, {"content": "small words"}])
        append_like_agents(agents, "theirs", [json_text({"content": words})])
        claimed = repo.claim_session("alice", "theirs")
        assert len(session.get_items()) == 2 and len(claimed.get_items()) == 1
        assert [h.item for h in repo.search("alice", "words")] == [{"content": "small words"}]


def json_text(item: Any) -> str:
    import json

    return json.dumps(item)


@pytest.mark.parametrize("setting", ["client_encoding = 'LATIN1'",
                                     "client_encoding = 'SQL_ASCII'",
                                     "quote_all_identifiers = on",
                                     "plpgsql.extra_errors = 'all'",
                                     "plpgsql.extra_warnings = 'all'"])
def test_more_settings_a_database_may_have(database: Database, setting: str) -> None:
    database.run(f"ALTER DATABASE {database.name} SET {setting}")
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        s = repo.create_session("Zoë", metadata={"title": "Ωmega trip"})
        s.add_items([{"content": "ça marche, Ωmega"}])
        append_like_agents(agents, "theirs", ['{"content": "déjà"}'])
        assert repo.claim_session("Zoë", "theirs").get_items() == [{"content": "déjà"}]
        assert len(repo.search("Zoë", "ωMEGA")) == 2 and len(repo.search("Zoë", "deja")) == 1
    with SessionRepository(database.url(), read_only=True) as repo:
        assert [u.user_id for u in repo.get_users()] == ["Zoë"]


@pytest.mark.parametrize("encoding", ["SQL_ASCII", "LATIN1"])
def test_a_database_that_cannot_hold_unicode_is_refused_at_open(encoding: str) -> None:
    made = Database(ENCODING=encoding, LC_COLLATE="C", LC_CTYPE="C")
    try:
        for read_only in (False, True):
            with pytest.raises(DatabaseError, match=f"encoded {encoding} .*WITH ENCODING 'UTF8'"):
                SessionRepository(made.url(), read_only=read_only)
    finally:
        made.drop()


def test_triggers_that_cannot_fire_are_refused_at_open(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET session_replication_role = replica")
    with pytest.raises(DatabaseError, match="session_replication_role is 'replica'"):
        SessionRepository(database.url())


def test_an_empty_search_path_names_no_schema(database: Database) -> None:
    database.run(f"ALTER DATABASE {database.name} SET search_path = ''")
    for read_only in (False, True):
        with pytest.raises(ValueError, match="names no schema"):
            SessionRepository(database.url(), read_only=read_only)


@pytest.mark.parametrize("url", [
    "postgresql://app:ab/cdsecret@127.0.0.1:1/db",
    "postgresql://app:s3cr@tsecret@127.0.0.1:1/db",
])
def test_a_password_with_unencoded_characters_is_never_shown(url: str) -> None:
    from sessions_dal.backends.postgres._opening import describe

    with pytest.raises(ValueError, match="percent-encoded") as caught:
        SessionRepository(url)
    assert "secret" not in str(caught.value)
    assert "secret" not in describe(url)


def test_objects_another_role_made_in_a_public_everyone_writes_are_refused(
        database: Database) -> None:
    database.run("GRANT CREATE ON SCHEMA public TO PUBLIC")
    owner, mallory = database.role("owner"), database.role("mallory")
    database.run(f"GRANT CREATE ON DATABASE {database.name} TO {owner}")
    # mallory makes sessions_dal's tables first (a spy trigger would follow).
    with database.connect(mallory) as conn:
        conn.execute("CREATE TABLE sessions_dal_migrations (version int PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL)")
        conn.execute("CREATE TABLE agent_users (user_id text PRIMARY KEY, "
                     "created_at timestamptz NOT NULL)")
        conn.execute("GRANT ALL ON sessions_dal_migrations, agent_users TO PUBLIC")
    with pytest.raises(IncompatibleSchemaError, match=r"of role .mallory_.* though sessions_dal "
                                                      r"was never set up"):
        SessionRepository(database.url(owner))
    assert database.run("SELECT count(*) FROM agent_users") == [(0,)]
    # Once nobody else may create there, the operator has decided whom to trust.
    with database.connect(mallory) as conn:
        conn.execute("DROP TABLE sessions_dal_migrations, agent_users")
    database.run("REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                 f"GRANT CREATE ON SCHEMA public TO {owner}")
    SessionRepository(database.url(owner)).close()
    # A table of ours owned by another role than the rest is refused anywhere.
    database.run(f"GRANT CREATE ON SCHEMA public TO {mallory}")
    with database.connect(owner) as conn:
        conn.execute("DROP TABLE sessions_dal_search")
    with database.connect(mallory) as conn:
        conn.execute("CREATE TABLE sessions_dal_search (item_id bigint PRIMARY KEY, "
                     "session_id text NOT NULL, words tsvector NOT NULL)")
    with pytest.raises(IncompatibleSchemaError, match=r"belong to role 'owner_.*except "
                                                      r"sessions_dal_search \(mallory_"):
        SessionRepository(database.url(owner))


def test_items_changed_in_place_by_another_writer_are_reindexed(database: Database) -> None:
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        alice = repo.create_session("alice", session_id="a")
        alice.add_items([{"content": "original words"}])
        repo.create_session("bob", session_id="b").add_items([{"content": "bob words"}])
        agents.execute("UPDATE agent_messages SET message_data = "
                       "'{\"content\": \"replaced text\"}' WHERE session_id = 'a'")
        assert repo.search("alice", "original") == []
        assert [h.item for h in repo.search("alice", "replaced")] == [
            {"content": "replaced text"}]
        agents.execute("UPDATE agent_messages SET session_id = 'a' WHERE session_id = 'b'")
        assert repo.search("bob", "bob") == []
        assert [h.session.session_id for h in repo.search("alice", "bob")] == ["a"]
        # A row left under an id the sequence gives later never fails a write.
        agents.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                       "SELECT nextval('agent_messages_id_seq') + g, 'a', '\"stale\"' "
                       "FROM generate_series(1, 3) g")
        agents.execute("UPDATE agent_messages SET id = -id WHERE message_data = '\"stale\"'")
        alice.add_items([{"content": "n"} for _ in range(5)])
        assert repo.search("alice", "stale") == []
        assert repo.check() == []


def test_lone_surrogates_are_separators_and_pairs_are_kept(database: Database) -> None:
    with SessionRepository(database.url()) as repo:
        s = repo.create_session("alice")
        s.add_items([{"content": "lone\ud800word " + "\udc80" * 2000 + " 😀pair 𠀀ext"}])
        for word in ("lone", "word", "pair", "𠀀ext"):
            assert len(repo.search("alice", word)) == 1, word


def test_a_role_that_may_not_create_the_schema_is_told_what_to_do(database: Database) -> None:
    role = database.role("app")
    with pytest.raises(MigrationError, match=r"may not create schema 'tenant9'.*CREATE SCHEMA "
                                             r"\"tenant9\" AUTHORIZATION"):
        SessionRepository(database.url(role, search_path="tenant9"))


def test_tables_of_openai_agents_owned_by_another_role_are_refused(database: Database) -> None:
    # The adoption case: openai-agents' role made (and so owns) its two tables;
    # as their owner it could add a trigger that runs as every role writing them.
    agents, owner = database.role("agents"), database.role("owner")
    database.run(f"GRANT CREATE ON SCHEMA public TO {agents}, {owner}")
    with database.connect(agents) as conn:
        append_like_agents_made(conn)
    with pytest.raises(IncompatibleSchemaError, match=f"table 'agent_messages' belongs to "
                                                      f"role '{agents}'.*OWNER TO"):
        SessionRepository(database.url(owner))
    assert database.run("SELECT to_regclass('public.agent_users')") == [(None,)]
    database.run(f"ALTER TABLE agent_sessions OWNER TO {owner}",
                 f"ALTER TABLE agent_messages OWNER TO {owner}",
                 f"GRANT SELECT, INSERT, UPDATE, DELETE ON agent_sessions, agent_messages "
                 f"TO {agents}", f"GRANT USAGE ON SEQUENCE agent_messages_id_seq TO {agents}")
    with SessionRepository(database.url(owner)) as repo:
        assert [s.session_id for s in repo.get_unowned_sessions()] == ["theirs"]


def append_like_agents_made(conn: psycopg.Connection[Any]) -> None:
    """SQLAlchemySession(create_tables=True)'s tables, and one append."""
    conn.execute("CREATE TABLE agent_sessions (session_id varchar PRIMARY KEY, "
                 "created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                 "updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    conn.execute("CREATE TABLE agent_messages (id serial PRIMARY KEY, session_id varchar "
                 "NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE, "
                 "message_data text NOT NULL, created_at timestamp NOT NULL "
                 "DEFAULT CURRENT_TIMESTAMP)")
    append_like_agents(conn, "theirs", ['"x"'])


def test_a_table_or_index_of_ours_made_first_by_a_role_allowed_to_create_is_refused(
        database: Database) -> None:
    agents = database.role("agents")
    database.run(f"GRANT CREATE ON SCHEMA public TO {agents}")
    with database.connect(agents) as conn:
        conn.execute("CREATE TABLE agent_user_sessions (seq bigint, session_id text, "
                     "user_id text, metadata text, created_at timestamptz, "
                     "updated_at timestamptz)")
    # The server's superuser migrates: the other role's table is still refused.
    with pytest.raises(IncompatibleSchemaError, match=f"agent_user_sessions of role "
                                                      f"'{agents}' though sessions_dal was never"):
        SessionRepository(database.url())
    with database.connect(agents) as conn:
        conn.execute("DROP TABLE agent_user_sessions")
        conn.execute("CREATE TABLE mine (words tsvector)")
        conn.execute("CREATE INDEX idx_sessions_dal_search_words ON mine USING gin (words)")
    with pytest.raises(IncompatibleSchemaError,
                       match=f"idx_sessions_dal_search_words of role '{agents}'"):
        SessionRepository(database.url())


def test_an_upgrade_run_by_a_superuser_keeps_one_owner(database: Database) -> None:
    owner = database.role("owner")
    database.run(f"GRANT CREATE ON SCHEMA public TO {owner}")
    with psycopg.connect(database.url(owner), autocommit=True) as conn:
        conn.execute("SET search_path = public")
        from sessions_dal.backends.postgres import _schema
        from sessions_dal.backends.postgres._sql import SQL

        _schema.apply_migrations(conn, "test", SQL("public", "agent_sessions",
                                                   "agent_messages"), _schema.MIGRATIONS[:2])
    with SessionRepository(database.url()) as repo:  # the superuser upgrades it
        repo.create_session("alice", metadata={"title": "after"})
    owners = database.run(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = "
        "'public'::regnamespace AND relkind IN ('r', 'i') UNION SELECT "
        "pg_get_userbyid(proowner) FROM pg_proc WHERE proname LIKE 'sessions_dal%'")
    assert owners == [(owner,)]
    with SessionRepository(database.url(owner)) as repo:
        assert len(repo.search("alice", "after")) == 1


@pytest.mark.parametrize("size", [10, 30_000])  # under and over the walk's 64 KB
def test_a_big_item_is_indexed_by_the_same_rule(database: Database, size: int) -> None:
    item = {"type": "message", "id": "msg_hidden", "content": [
        {"type": "output_text", "text": "needle in", "annotations": ["x"] * size},
        {"call_id": "call_hidden", "arguments": "{\"q\": \"haystack\"}"}],
        "status": "completed"}
    with SessionRepository(database.url()) as repo:
        repo.create_session("alice").add_items([item])
        for word, hits in (("needle", 1), ("haystack", 1), ("x", 1), ("hidden", 0),
                           ("msg", 0), ("completed", 0), ("output", 0)):
            assert len(repo.search("alice", word)) == hits, word


def test_a_truncate_of_the_items_takes_their_words(database: Database) -> None:
    with SessionRepository(database.url()) as repo, database.connect() as agents:
        repo.create_session("alice", metadata={"title": "kept title"}).add_items(
            [{"content": "gone words"}])
        agents.execute("TRUNCATE agent_messages")
        assert repo.search("alice", "gone") == []
        assert len(repo.search("alice", "kept")) == 1
        assert repo.check() == []
    assert database.run("SELECT count(*) FROM sessions_dal_search WHERE item_id > 0") == [(0,)]


@pytest.mark.parametrize("public_may_create", [False, True])
def test_a_version_table_made_first_by_another_role_is_never_adopted(
        database: Database, public_may_create: bool) -> None:
    mallory = database.role("mallory")
    database.run("GRANT CREATE ON SCHEMA public TO " + ("PUBLIC" if public_may_create
                                                        else mallory))
    with database.connect(mallory) as conn:
        conn.execute("CREATE TABLE sessions_dal_migrations (version integer PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL)")
    # The server's superuser sets sessions_dal up: it would have made the rest
    # beside mallory's table, and mallory, its owner, could then act as it.
    with pytest.raises(IncompatibleSchemaError, match=f"of role '{mallory}' though "
                                                      "sessions_dal was never set up"):
        SessionRepository(database.url())
    assert database.run("SELECT to_regclass('public.agent_users')") == [(None,)]


def test_a_superuser_acts_as_the_owner_of_a_database_another_role_owns(
        database: Database) -> None:
    owner = database.role("owner")
    database.run(f"GRANT CREATE ON SCHEMA public TO {owner}")
    SessionRepository(database.url(owner)).close()
    with database.connect(owner) as conn:  # the owner may put triggers on its tables
        conn.execute("CREATE TABLE seen (who text)")
        conn.execute("CREATE FUNCTION who() RETURNS trigger LANGUAGE plpgsql AS $$ "
                     "BEGIN INSERT INTO public.seen VALUES (current_user); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER who AFTER INSERT ON agent_users "
                     "FOR EACH ROW EXECUTE FUNCTION who()")
    with SessionRepository(database.url()) as repo:  # as the server's superuser
        repo.create_session("alice")
    assert database.run("SELECT who FROM seen") == [(owner,)]


def test_the_tables_owner_grants_an_app_its_rights_in_postgresql_15s_public(
        database: Database) -> None:
    owner, app = database.role("owner"), database.role("app")
    database.run(f"GRANT CREATE ON SCHEMA public TO {owner}")
    with SessionRepository(database.url(owner)) as repo:
        statements = repo.grant(app)
    assert not any("ON SCHEMA" in statement for statement in statements)  # PUBLIC has USAGE
    with SessionRepository(database.url(app)) as repo:
        repo.create_session("alice").add_items(["works"])
