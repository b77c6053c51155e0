"""Opening by URL, options, the pool, lost connections and locks, on PostgreSQL."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pg_server
import psycopg
import pytest
from backends import (
    POSTGRES_URL,
    PostgresBackend,
    own_database,
    url_with_schema,
    wait_for_lock_waits,
)
from psycopg import errors as pg_errors

from sessions_dal import SessionRepository
from sessions_dal.backends.postgres._errors import translate_errors
from sessions_dal.backends.postgres._schema import MIGRATIONS
from sessions_dal.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ReadOnlyDatabaseError,
    RepositoryClosedError,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nobody listens on it once the socket is closed


def test_info_names_the_backend_and_the_server(repo: SessionRepository, pg: PostgresBackend
                                               ) -> None:
    repo.create_session("alice").add_items([1, 2])
    info = repo.info()
    assert (info.backend, info.schema_version, info.migration_pending) == (
        "postgresql", len(MIGRATIONS), False)
    assert list(info.details) == ["server_version"]
    assert info.details["server_version"].split(".")[0].isdigit()
    assert (info.users, info.sessions, info.items) == (1, 1, 2)
    assert repo.path.startswith("postgresql://")
    assert repo.path.endswith(f"?options=-csearch_path={pg.schema}")


def test_postgres_scheme_alias_and_options_are_accepted(pg: PostgresBackend) -> None:
    alias = "postgres://" + pg.target.split("://", 1)[1]
    with SessionRepository(alias, pool_size=1, busy_timeout=1) as repo:
        repo.create_session("alice", session_id="s1")
    with pg.open() as repo:
        assert [s.session_id for s in repo.get_sessions("alice")] == ["s1"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [({"pool_size": 0}, ValueError, "pool_size must be >= 1"),
     ({"pool_size": "4"}, TypeError, "pool_size must be an int"),
     ({"pool_size": True}, TypeError, "pool_size must be an int"),
     ({"synchronous": "FULL"}, ValueError, "synchronous is sqlite's option"),
     ({"busy_timeout": -1}, ValueError, "busy_timeout"),
     ({"messages_table": "m" * 41}, ValueError, "too long for PostgreSQL")],
)
def test_bad_options_are_refused_before_connecting(options: dict[str, Any],
                                                   error: type[Exception], message: str) -> None:
    url = f"postgresql://nobody@127.0.0.1:{_closed_port()}/none"
    with pytest.raises(error, match=message):
        SessionRepository(url, **options)


def test_pool_size_is_refused_for_sqlite(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="pool_size is postgresql's option"):
        SessionRepository(tmp_path / "x.db", pool_size=2)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///tmp/x.db", "HTTP://x/y"])
def test_other_urls_are_refused(url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                                ) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is a URL sessions_dal cannot open"):
        SessionRepository(url)
    assert list(tmp_path.iterdir()) == []


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    # None in sys.modules: the import fails as it does where psycopg is missing.
    monkeypatch.setitem(sys.modules, "sessions_dal.backends.postgres", None)
    with pytest.raises(ImportError, match=r"pip install 'sessions-dal\[postgres\]'"):
        SessionRepository("postgresql://u@127.0.0.1/db")


def test_an_unreachable_server_is_a_library_error_without_the_password() -> None:
    url = f"postgresql://alice:s3cret@127.0.0.1:{_closed_port()}/db"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as caught:
        SessionRepository(url, busy_timeout=0.5)
    assert time.monotonic() - started < 60  # bounded, not a hang
    assert "s3cret" not in str(caught.value)
    assert "postgresql://alice@127.0.0.1" in str(caught.value)


def test_a_wrong_database_name_is_a_library_error(pg: PostgresBackend) -> None:
    assert POSTGRES_URL is not None
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(DatabaseError, match="no_such_database"):
        SessionRepository(url, busy_timeout=1)


def test_backup_points_to_pg_dump(repo: SessionRepository, tmp_path: Any) -> None:
    with pytest.raises(NotImplementedError, match="pg_dump"):
        repo.backup(tmp_path / "copy.db")
    assert list(tmp_path.iterdir()) == []


def test_check_reports_a_missing_index(repo: SessionRepository, pg: PostgresBackend) -> None:
    assert repo.check() == []
    pg._query("DROP INDEX idx_agent_messages_session_created_id")
    [problem] = repo.check()
    assert "idx_agent_messages_session_created_id is missing" in problem


def test_a_closed_repository_refuses_calls(pg: PostgresBackend) -> None:
    repo = pg.open()
    s = repo.create_session("alice")
    repo.close()
    repo.close()  # idempotent
    with pytest.raises(RepositoryClosedError, match="is closed"):
        s.get_items()


# -- connections the server drops -----------------------------------------------


def test_idle_pooled_connections_killed_by_the_server_are_replaced(pg: PostgresBackend
                                                                   ) -> None:
    name = f"victim_{pg.schema}"
    with SessionRepository(f"{pg.target}&application_name={name}", pool_size=3) as repo:
        s = repo.create_session("alice")
        s.add_items([1])
        pids = [row[0] for row in pg._query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", name)]
        assert pids
        for pid in pids:
            pg._query("SELECT pg_terminate_backend(%s)", pid)
        assert s.get_items() == [1]  # the pool's check replaced the dead connection
        s.add_items([2])
        assert s.get_items() == [1, 2]


KILL_THE_POOL = """
import logging, sys, psycopg
from sessions_dal import SessionRepository
if sys.argv[3] == "logging":
    logging.basicConfig(format="logged: %(message)s")
with SessionRepository(sys.argv[1] + "&application_name=" + sys.argv[2], pool_size=2) as repo:
    s = repo.create_session("alice")
    s.add_items([1])
    with psycopg.connect(sys.argv[1], autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE application_name = %s", [sys.argv[2]])
    s.add_items([2])
    print(s.get_items())
"""


@pytest.mark.parametrize("logging", ["unset", "logging"])
def test_the_pools_warnings_after_a_restart_reach_stderr_only_when_asked(
        pg: PostgresBackend, logging: str) -> None:
    result = subprocess.run([sys.executable, "-c", KILL_THE_POOL, pg.target,
                             f"victim_{pg.schema}", logging],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[1, 2]\n"
    if logging == "unset":
        assert result.stderr == ""  # Python's last resort would print psycopg_pool's
    else:
        assert "logged: discarding" in result.stderr  # an app's own logging still gets them


def test_a_connection_killed_mid_write_loses_the_write_cleanly(pg: PostgresBackend) -> None:
    name = f"victim_{pg.schema}"  # the connections to kill, and no other test's
    repo = SessionRepository(f"{pg.target}&application_name={name}")
    s = repo.create_session("alice", session_id="s1")
    s.add_items(["before"])
    before = pg.snapshot()
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        holder.execute("SELECT 1 FROM agent_sessions WHERE session_id = 's1' FOR UPDATE")
        errors: list[BaseException] = []

        def write() -> None:
            try:
                s.add_items(["lost"])
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        waiting: list[Any] = []
        for _ in range(200):  # until the write waits for the row lock
            waiting = pg._query("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND application_name = %s", name)
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the write never waited for the lock"
        pg._query("SELECT pg_terminate_backend(%s)", waiting[0][0])
        writer.join(60)
        assert not writer.is_alive()
    finally:
        holder.close()
    [error] = errors
    assert isinstance(error, DatabaseUnavailableError)
    assert "may or may not have committed" in str(error)
    assert pg.snapshot() == before
    s.add_items(["after"])  # the next call reconnects
    assert s.get_items() == ["before", "after"]
    repo.close()


def test_a_held_row_lock_past_busy_timeout_is_database_locked(pg: PostgresBackend) -> None:
    with pg.open() as setup:
        setup.create_session("alice", session_id="s1").add_items([1])
    before = pg.snapshot()
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' FOR UPDATE")
        with pg.open(busy_timeout=0.2) as repo:
            s = repo.get_session("alice", "s1")
            assert s is not None
            for call in (lambda: s.add_items([2]), s.pop_item, s.clear_session,
                         lambda: repo.update_metadata("alice", "s1", {"a": 1}),
                         lambda: repo.delete_session("alice", "s1")):
                with pytest.raises(DatabaseLockedError, match=r"busy_timeout=0\.2s"):
                    call()
            assert s.get_items() == [1]  # reads never wait for row locks
        assert pg.snapshot() == before
    finally:
        holder.close()


def test_a_pool_of_one_serves_many_threads(pg: PostgresBackend) -> None:
    with pg.open(pool_size=1, busy_timeout=30) as repo:
        s = repo.create_session("alice")
        workers = [threading.Thread(target=s.add_items, args=([n],)) for n in range(16)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert sorted(s.get_items()) == list(range(16))


def test_a_server_that_refuses_writes_is_read_only_database_error(database: str) -> None:
    with SessionRepository(database) as repo:
        s = repo.create_session("alice")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(f"ALTER DATABASE {database.rsplit('/', 1)[1]} "
                      "SET default_transaction_read_only = on")
    with SessionRepository(database) as standby:  # as on a hot standby: writes refused
        t = standby.get_session("alice", s.session_id)
        assert t is not None
        with pytest.raises(ReadOnlyDatabaseError, match="nothing was changed"):
            t.add_items([1])
        assert t.get_items() == []


@pytest.fixture
def database() -> Iterator[str]:
    """A database of the test's own (for settings that apply to a whole database)."""
    with own_database() as url:
        yield url


@pytest.fixture
def own_server() -> Iterator[tuple[pg_server.Server, str]]:
    """A server of this test's own, to restart without disturbing the others."""
    bindir = pg_server._bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries to start a second server")
    server = pg_server.Server(bindir)
    try:
        yield server, server.start()
    finally:
        server.stop()


def test_a_server_restart_is_survived(own_server: tuple[pg_server.Server, str]) -> None:
    server, url = own_server
    with SessionRepository(url, pool_size=2) as repo:
        s = repo.create_session("alice")
        s.add_items([1])
        server.pg_ctl("restart", "-m", "fast")
        # The pooled connections died with the server: each call gets a fresh one.
        s.add_items([2])
        assert s.get_items() == [1, 2]
        server.pg_ctl("stop", "-m", "fast")
        with pytest.raises(DatabaseUnavailableError):
            s.get_items()
        server.pg_ctl("start")
        assert s.get_items() == [1, 2]


def test_busy_timeout_zero_means_do_not_wait(pg: PostgresBackend) -> None:
    with pg.open() as setup:
        setup.create_session("alice", session_id="s1")
    holder = psycopg.connect(url_with_schema(pg.schema))
    try:
        holder.execute("SELECT 1 FROM agent_user_sessions WHERE session_id = 's1' FOR UPDATE")
        for timeout in (0, 0.0004):  # lock_timeout 0 would be "forever"
            with pg.open(busy_timeout=timeout) as repo:
                s = repo.get_session("alice", "s1")
                assert s is not None
                with pytest.raises(DatabaseLockedError):
                    s.add_items([1])
    finally:
        holder.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [("connect_timeout=abc", "bad value for connect_timeout: 'abc'"),
     ("sslmode=bogus", 'invalid sslmode value: "bogus"'),
     ("nonsense=1", "invalid URI query parameter")],
)
def test_bad_url_options_are_value_errors(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        SessionRepository(f"postgresql://u:pa55word@127.0.0.1:{_closed_port()}/db?{query}")
    assert "pa55word" not in str(caught.value)


@pytest.mark.parametrize("scheme", ["POSTGRESQL", "Postgres"])
def test_the_scheme_is_case_insensitive_and_the_password_never_shown(scheme: str) -> None:
    url = f"{scheme}://u:pa55word@127.0.0.1:{_closed_port()}/db?sslmode=disable"
    with pytest.raises(DatabaseUnavailableError, match="cannot connect to postgresql://u@") \
            as caught:
        SessionRepository(url)
    shown = [str(caught.value), repr(caught.value.__cause__), repr(caught.value.__context__)]
    assert not [text for text in shown if "pa55word" in text]


def test_a_search_path_naming_no_schema_says_so(pg: PostgresBackend) -> None:
    with pytest.raises(ValueError, match=r"search_path .* names no schema"):
        SessionRepository(url_with_schema("pg_catalog"))


def test_check_finds_the_indexes_of_mixed_case_tables(pg: PostgresBackend) -> None:
    with pg.open(sessions_table="MySessions", messages_table="MyMessages") as repo:
        assert repo.check() == []


@pytest.mark.parametrize("call", ["delete_session", "delete_user", "import_replace"])
def test_deletes_take_turns_with_sqlalchemy_sessions_pop(pg: PostgresBackend, call: str
                                                         ) -> None:
    with pg.open() as repo:
        repo.create_session("alice", session_id="x").add_items([1, 2, 3])
        out = io.StringIO()
        repo.export_to(out)
    sqlalchemy_pop = psycopg.connect(url_with_schema(pg.schema))
    try:
        # SQLAlchemySession's pop_item: lock the session's row, then delete its latest item.
        sqlalchemy_pop.execute("SELECT 1 FROM agent_sessions WHERE session_id = 'x' FOR UPDATE")
        errors: list[BaseException] = []

        def delete() -> None:
            try:
                with pg.open(busy_timeout=30) as other:
                    if call == "delete_session":
                        assert other.delete_session("alice", "x")
                    elif call == "delete_user":
                        assert other.delete_user("alice").sessions == 1
                    else:
                        other.import_from(io.StringIO(out.getvalue()), replace=True)
            except BaseException as exc:
                errors.append(exc)

        deleter = threading.Thread(target=delete)
        deleter.start()
        wait_for_lock_waits(pg)  # the delete waits for the row SQLAlchemySession holds
        sqlalchemy_pop.execute(
            "DELETE FROM agent_messages WHERE id = (SELECT id FROM agent_messages "
            "WHERE session_id = 'x' ORDER BY created_at DESC, id DESC LIMIT 1)")
        sqlalchemy_pop.commit()
        deleter.join()  # bounded by its busy_timeout
        assert errors == []  # no deadlock: the two took turns
    finally:
        sqlalchemy_pop.close()
    with pg.open() as repo:
        found = repo.find_session("x")
        assert (found is None) if call != "import_replace" else (found.get_items() == [1, 2, 3])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [(pg_errors.DiskFull("no space"), DiskFullError, "free disk space"),
     (pg_errors.InsufficientPrivilege("denied"), ReadOnlyDatabaseError,
      "this role may not do what the call needs"),
     (pg_errors.ReadOnlySqlTransaction("standby"), ReadOnlyDatabaseError, "read-only"),
     (pg_errors.DeadlockDetected("cycle"), DatabaseLockedError, "a deadlock"),
     (pg_errors.SerializationFailure("retry"), DatabaseLockedError, "busy_timeout"),
     (pg_errors.AdminShutdown("bye"), DatabaseUnavailableError, "lost the connection"),
     (psycopg.OperationalError("server closed the connection"), DatabaseUnavailableError,
      "may or may not have committed"),
     (psycopg.ProgrammingError("a bug of ours"), DatabaseError, "PostgreSQL error on"),
     (pg_errors.InvalidSchemaName("no schema"), DatabaseError, "CREATE SCHEMA")],
)
def test_every_driver_error_becomes_the_librarys(error: Exception, expected: type[Exception],
                                                  words: str) -> None:
    with pytest.raises(expected, match=re.escape(words)) as caught, \
            translate_errors("postgresql://u@h/db", 5.0):
        raise error
    assert caught.value.__cause__ is error


def test_an_interrupted_commit_is_settled_by_the_servers_word(pg: PostgresBackend) -> None:
    with pg.open() as repo:
        db = repo._store._db  # type: ignore[attr-defined]
        with psycopg.connect(pg.target, autocommit=True) as conn:
            conn.execute("BEGIN")
            committed = conn.execute("SELECT txid_current()").fetchone()[0]  # type: ignore[index]
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            aborted = conn.execute("SELECT txid_current()").fetchone()[0]  # type: ignore[index]
            conn.execute("ROLLBACK")
            conn.execute("BEGIN")  # a reply never read: the connection is not idle
            assert db._committed(conn, committed) is True
            assert conn.closed
        with psycopg.connect(pg.target, autocommit=True) as conn:
            conn.execute("BEGIN")
            assert db._committed(conn, aborted) is False
