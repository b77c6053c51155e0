"""Roles on a shared server: the owner migrates, the app connects with the fewest rights.

Each test makes roles of its own (``owner_*``, ``app_*``, ...) and a schema the
owner owns, on a database whose owner revoked ``EXECUTE`` on functions from
``PUBLIC`` by default (a hardened setup, the strictest a deployment has): the
app gets exactly what ``sessions-dal grant`` prints, and every public call
works; each right printed is needed by some call; a role that may not create
tables is told so in one line; openai-agents' role, with rights on its two
tables only, keeps writing.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from backends import POSTGRES_URL, PostgresBackend
from test_cli import as_json, fails, ok

from sessions_dal import SessionRepository
from sessions_dal.backends.postgres._schema import MIGRATIONS, apply_migrations
from sessions_dal.backends.postgres._sql import SQL
from sessions_dal.errors import MigrationError, ReadOnlyDatabaseError, SessionsDalError


@dataclass
class Roles:
    """An owner, a schema it owns, and an app role with no rights yet."""

    pg: PostgresBackend
    schema: str
    owner: str
    app: str
    made: list[str]
    """The roles to drop at the end."""

    def url(self, role: str) -> str:
        """The test server's URL as ``role``, with the schema first on the search_path."""
        assert POSTGRES_URL is not None
        parts = urlsplit(POSTGRES_URL)
        host = parts.netloc.rsplit("@", 1)[-1]
        query = "&".join(filter(None, [parts.query, f"options=-csearch_path%3D{self.schema}"]))
        return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, query, ""))

    def run(self, statement: str, *params: object, role: str | None = None) -> list[Any]:
        """One statement as ``role`` (the test server's user if ``None``)."""
        target = self.url(role) if role else self.url(self.pg_user)
        with psycopg.connect(target, autocommit=True) as conn:
            cursor = conn.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []

    @property
    def pg_user(self) -> str:
        assert POSTGRES_URL is not None
        return urlsplit(POSTGRES_URL).username or "postgres"

    def new_role(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.made.append(name)
        self.run(f"CREATE ROLE {name} LOGIN")
        return name


@pytest.fixture
def roles(pg: PostgresBackend) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:8]
    made = Roles(pg, f"roles_{tag}", f"owner_{tag}", f"app_{tag}", [])
    try:
        made.run(f"CREATE ROLE {made.owner} LOGIN")
    except psycopg.Error:
        pytest.skip("the test server's user cannot create roles")
    made.made.append(made.owner)
    made.run(f"CREATE ROLE {made.app} LOGIN")
    made.made.append(made.app)
    made.run(f"CREATE SCHEMA {made.schema} AUTHORIZATION {made.owner}; "
             f"ALTER DEFAULT PRIVILEGES FOR ROLE {made.owner} "
             "REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    try:
        yield made
    finally:
        everyone = ", ".join(made.made)
        made.run(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE usename IN ({', '.join(['%s'] * len(made.made))})", *made.made)
        made.run(f"DROP SCHEMA IF EXISTS {made.schema} CASCADE; DROP OWNED BY {everyone}; "
                 + "".join(f"DROP ROLE {name}; " for name in made.made))


def migrated(roles: Roles, tmp_path: Path) -> None:
    """The owner migrates, with the command, and writes a session and one of openai-agents'."""
    assert "migrated" in ok(tmp_path, "--db", roles.url(roles.owner), "migrate")
    with SessionRepository(roles.url(roles.owner)) as repo:
        repo.create_session("bob", session_id="bobs").add_items([{"content": "rome"}])
    write_like_agents(roles, "theirs")


def write_like_agents(roles: Roles, theirs: str) -> None:
    """Two sessions no user owns, as the owner: ``theirs`` with an item, and one empty."""
    roles.run("INSERT INTO agent_sessions (session_id) VALUES (%s), (%s)",
              theirs, f"{theirs}-spare", role=roles.owner)
    roles.run("INSERT INTO agent_messages (session_id, message_data) "
              "VALUES (%s, '{\"content\": \"rome by train\"}')", theirs, role=roles.owner)


def printed_grants(roles: Roles, tmp_path: Path, *options: str) -> list[str]:
    lines = ok(tmp_path, "--db", roles.url(roles.owner), "grant", roles.app, *options)
    assert all(line.startswith("GRANT ") and line.endswith(";") for line in lines.splitlines())
    return lines.splitlines()


def use_every_call(roles: Roles, role: str) -> None:
    """Every public call an app makes, as ``role``; raises at the first failure."""
    tag = uuid.uuid4().hex[:6]
    alice, theirs = f"alice-{tag}", f"theirs-{tag}"
    write_like_agents(roles, theirs)
    with SessionRepository(roles.url(role)) as repo:
        s = repo.create_session(alice, metadata={"title": "Trip to Rome"})
        s.add_items([{"role": "user", "content": "rome by train"}, {"content": "later"}])
        assert s.get_items(1) == [{"content": "later"}]
        assert next(s.iter_items(page_size=1))["content"] == "rome by train"
        assert s.count_items() == 2
        assert s.pop_item() == {"content": "later"}
        assert [x.session_id for x in repo.get_sessions(alice, order="updated")] == [s.session_id]
        assert [x.session_id for x in repo.iter_sessions(alice)] == [s.session_id]
        assert repo.count_sessions(alice) == 1
        assert repo.get_session(alice, s.session_id) is not None
        assert repo.find_session(s.session_id) is not None
        repo.update_metadata(alice, s.session_id, {"title": "Roma"})
        assert {h.item is None for h in repo.search(alice, "rome")} == {False}
        assert [h.item for h in repo.search(alice, "roma")] == [None]
        branch = repo.fork_session(alice, s.session_id, metadata={"title": "Branch"})
        assert branch.compact([{"content": "summary"}], upto=1) == 1  # history, marks
        assert list(branch.iter_history()) == [{"role": "user", "content": "rome by train"}]
        assert [h.layer for h in repo.search(alice, "rome", session_id=branch.session_id)] == [1]
        branch.clear_session()  # and its history erased
        assert branch.get_items() == []
        assert alice in [u.user_id for u in repo.get_users()]
        assert repo.get_unowned_session(theirs) is not None
        assert theirs in [x.session_id for x in repo.get_unowned_sessions()]
        assert repo.count_unowned_sessions() >= 2
        repo.claim_sessions(alice, [theirs])
        assert repo.claim_session(alice, theirs).get_items() == [{"content": "rome by train"}]
        assert len(repo.search(alice, "train")) == 2
        s.add_items(["queued"])
        assert repo.update_search_index() == 1
        assert repo.delete_unowned_session(f"{theirs}-spare")
        exported = io.StringIO()
        assert repo.export_to(exported, user_id=alice).sessions >= 2
        assert repo.import_from(io.StringIO(exported.getvalue()), replace=True).sessions >= 2
        assert repo.info().users >= 1 and repo.check() == []
        assert repo.delete_session(alice, branch.session_id)
        bob = f"bob-{tag}"
        repo.create_session(bob).add_items(["x"])
        assert repo.prune(older_than=timedelta(0), user_id=bob).sessions == 1
        repo.prune(older_than=timedelta(0), unowned=True)
        assert repo.delete_user(alice).sessions >= 1


def test_an_app_role_with_the_printed_grants_can_make_every_call(roles: Roles,
                                                                 tmp_path: Path) -> None:
    migrated(roles, tmp_path)
    for statement in printed_grants(roles, tmp_path):  # applied by hand, as printed
        roles.run(statement, role=roles.owner)
    use_every_call(roles, roles.app)
    # ... and can do nothing more with the schema: no table made, changed or dropped.
    for ddl in ("CREATE TABLE mine (x int)", "DROP TABLE agent_users",
                "ALTER TABLE agent_messages ADD COLUMN x int", "TRUNCATE agent_users"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            roles.run(ddl, role=roles.app)
    # Opened read-write, the repository finds nothing to migrate and writes nothing then.
    with SessionRepository(roles.url(roles.app)) as repo:
        assert repo.pending_migrations() == []


def test_every_right_printed_is_needed(roles: Roles, tmp_path: Path) -> None:
    migrated(roles, tmp_path)
    owner = roles.owner
    for statement in printed_grants(roles, tmp_path):
        roles.run(statement, role=owner)
    s = f"{roles.schema}."
    rights = [f"{p} ON TABLE {s}{t}" for t in ("agent_sessions", "agent_users",
                                              "agent_user_sessions", "sessions_dal_search")
              for p in ("SELECT", "INSERT", "UPDATE", "DELETE")]
    rights += [f"{p} ON TABLE {s}agent_messages" for p in ("SELECT", "INSERT", "DELETE")]
    rights += [f"{p} ON TABLE {s}sessions_dal_search_queue" for p in ("SELECT", "UPDATE",
                                                                       "DELETE")]
    rights += [f"{p} ON TABLE {s}sessions_dal_history" for p in ("SELECT", "INSERT", "UPDATE",
                                                                  "DELETE")]
    rights += [f"{p} ON TABLE {s}sessions_dal_replacements" for p in ("SELECT", "INSERT",
                                                                       "DELETE")]
    rights += [f"SELECT ON TABLE {s}sessions_dal_migrations",
               f"USAGE ON SEQUENCE {s}agent_messages_id_seq", f"USAGE ON SCHEMA {roles.schema}",
               f"EXECUTE ON FUNCTION {s}sessions_dal_fold(text)",
               f"EXECUTE ON FUNCTION {s}sessions_dal_owner(text, text)",
               f"EXECUTE ON FUNCTION {s}sessions_dal_title_words(text)"]
    unneeded = []
    for right in rights:
        roles.run(f"REVOKE {right} FROM {roles.app}", role=owner)
        try:
            use_every_call(roles, roles.app)
            unneeded.append(right)
        except (SessionsDalError, AssertionError):
            pass  # an error, or a wrong answer (a title the index silently lost)
        finally:
            roles.run(f"GRANT {right} TO {roles.app}", role=owner)
    assert unneeded == []


def test_a_read_only_role_can_read_everything_and_write_nothing(roles: Roles,
                                                                tmp_path: Path) -> None:
    migrated(roles, tmp_path)
    applied = ok(tmp_path, "--db", roles.url(roles.owner), "grant", roles.app, "--read-only",
                 "--apply")
    assert applied.splitlines()[-1].startswith("-- applied in one transaction on ")
    assert "INSERT" not in applied and "UPDATE" not in applied and "DELETE" not in applied
    reader = roles.url(roles.app)
    with SessionRepository(reader, read_only=True) as repo:
        [bobs] = repo.get_sessions("bob")
        assert bobs.get_items() == [{"content": "rome"}]
        assert repo.search("bob", "rome")[0].item == {"content": "rome"}
        assert {x.session_id for x in repo.get_unowned_sessions()} == {"theirs", "theirs-spare"}
        assert repo.export_to(io.StringIO()).items == 2 and repo.check() == []
    assert as_json(tmp_path, "--db", reader, "sessions", "bob")[0]["session_id"] == "bobs"
    assert as_json(tmp_path, "--db", reader, "info")["items"] == 2
    with SessionRepository(reader) as repo, pytest.raises(ReadOnlyDatabaseError,
                                                          match="sessions-dal grant"):
        repo.create_session("carol")
    assert "sessions-dal grant" in fails(tmp_path, "--db", reader, "create", "carol")


def grant_everything(roles: Roles, reader: str) -> None:
    """As an older sessions_dal's owner granted by hand: the app role every right on
    every table, ``reader`` SELECT; both the schema, sequences and functions."""
    for role, rights in ((roles.app, "SELECT, INSERT, UPDATE, DELETE"), (reader, "SELECT")):
        roles.run(f"GRANT USAGE ON SCHEMA {roles.schema} TO {role}", role=roles.owner)
        roles.run(f"GRANT {rights} ON ALL TABLES IN SCHEMA {roles.schema} TO {role}",
                  role=roles.owner)
        roles.run(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {roles.schema} TO {role}",
                  role=roles.owner)
        roles.run(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {roles.schema} TO {role}",
                  role=roles.owner)


def test_a_role_granted_before_the_search_queue_keeps_every_call_after_the_upgrade(
        roles: Roles, tmp_path: Path) -> None:
    # Set up and granted by a sessions_dal of schema version 5 (no queue yet)...
    with psycopg.connect(roles.url(roles.owner), autocommit=True) as conn:
        apply_migrations(conn, "the owner's", SQL(roles.schema, "agent_sessions", "agent_messages"),
                         MIGRATIONS[:5])
    reader = roles.new_role("reader")
    grant_everything(roles, reader)
    # ... then upgraded by the owner: the roles' rights on the index extend to the queue.
    migrated(roles, tmp_path)
    use_every_call(roles, roles.app)
    with SessionRepository(roles.url(roles.app)) as repo:
        repo.create_session("carol").add_items(["zanzibar by ferry"])
    with SessionRepository(roles.url(reader), read_only=True) as repo:
        assert [h.item for h in repo.search("carol", "zanzibar")] == ["zanzibar by ferry"]
    with SessionRepository(roles.url(reader)) as repo:  # read-write, yet may not index
        assert [h.item for h in repo.search("carol", "zanzibar")] == ["zanzibar by ferry"]
    queue = f"{roles.schema}.sessions_dal_search_queue"
    for role, writes in ((roles.app, True), (reader, False)):
        assert roles.run("SELECT has_table_privilege(%s, %s, 'SELECT'), "
                         "has_table_privilege(%s, %s, 'UPDATE'), "
                         "has_table_privilege(%s, %s, 'DELETE')",
                         role, queue, role, queue, role, queue) == [(True, writes, writes)]
    # Likewise the history (schema version 8): a writer's rights, and a reader's.
    for table in ("sessions_dal_history", "sessions_dal_replacements"):
        qualified = f"{roles.schema}.{table}"
        for role, writes in ((roles.app, True), (reader, False)):
            assert roles.run("SELECT has_table_privilege(%s, %s, 'SELECT'), "
                             "has_table_privilege(%s, %s, 'INSERT'), "
                             "has_table_privilege(%s, %s, 'DELETE')",
                             role, qualified, role, qualified, role, qualified) == [
                (True, writes, writes)]


def test_a_role_granted_at_version_8_keeps_every_call_after_the_history_gets_its_index(
        roles: Roles, tmp_path: Path) -> None:
    with psycopg.connect(roles.url(roles.owner), autocommit=True) as conn:
        apply_migrations(conn, "the owner's", SQL(roles.schema, "agent_sessions", "agent_messages"),
                         MIGRATIONS[:8])
    reader = roles.new_role("reader")
    history = f"{roles.schema}.sessions_dal_history"
    grant_everything(roles, reader)
    roles.run(f"REVOKE UPDATE ON {history} FROM {roles.app}", role=roles.owner)  # as 8 granted
    migrated(roles, tmp_path)
    use_every_call(roles, roles.app)
    for role, writes in ((roles.app, True), (reader, False)):
        assert roles.run("SELECT has_table_privilege(%s, %s, 'UPDATE')", role, history) == [
            (writes,)]


def test_grant_apply_runs_in_one_transaction_as_the_owner_only(roles: Roles,
                                                               tmp_path: Path) -> None:
    migrated(roles, tmp_path)
    owner = ("--db", roles.url(roles.owner))
    # Not the owner: refused, nothing granted (PostgreSQL itself only warns).
    roles.run(f"GRANT USAGE ON SCHEMA {roles.schema} TO {roles.app}; GRANT SELECT ON "
              f"{roles.schema}.sessions_dal_migrations TO {roles.app}", role=roles.owner)
    other = roles.new_role("other")
    error = fails(tmp_path, "--db", roles.url(roles.app), "grant", other, "--apply")
    assert "may not grant rights on these tables" in error and "as their owner" in error
    assert not _has_rights(roles, other)
    error = fails(tmp_path, *owner, "grant", "no_such_role_here", "--apply")
    assert 'role "no_such_role_here" does not exist' in error and "CREATE ROLE" in error
    applied = as_json(tmp_path, *owner, "grant", other, "--apply")
    assert applied["applied"] is True and len(applied["statements"]) == 9
    assert _has_rights(roles, other)
    use_every_call(roles, other)


def _has_rights(roles: Roles, role: str) -> bool:
    return bool(roles.run("SELECT has_table_privilege(%s, %s, 'INSERT')", role,
                          f"{roles.schema}.agent_user_sessions")[0][0])


def test_grants_name_the_tables_the_repository_was_given(roles: Roles, tmp_path: Path) -> None:
    names = {"sessions_table": "chat_sessions", "messages_table": "Chat_Messages"}
    with SessionRepository(roles.url(roles.owner), **names) as repo:
        statements = repo.grant(roles.app, dry_run=True)
        assert '"Chat_Messages"' in statements[2] and '"chat_sessions"' in statements[1]
        assert f'USAGE ON SEQUENCE "{roles.schema}"."Chat_Messages_id_seq"' in statements[7]
        assert repo.grant(roles.app) == statements
    with SessionRepository(roles.url(roles.app), **names) as repo:
        repo.create_session("alice", metadata={"title": "Rome"}).add_items(["rome"])
        assert len(repo.search("alice", "rome")) == 2


def test_grants_wait_for_the_owners_migration(roles: Roles, tmp_path: Path) -> None:
    error = fails(tmp_path, "--db", roles.url(roles.owner), "grant", roles.app)
    assert "not set up by sessions_dal yet" in error and "'sessions-dal migrate'" in error
    with SessionRepository(roles.url(roles.owner), read_only=True) as repo, \
            pytest.raises(ValueError, match="PUBLIC is every role"):
        repo.grant("public")
    assert roles.run("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                     roles.schema) == [(0,)]


def test_a_role_that_may_not_create_tables_is_told_what_to_do(roles: Roles,
                                                              tmp_path: Path) -> None:
    roles.run(f"GRANT USAGE ON SCHEMA {roles.schema} TO {roles.app}", role=roles.owner)
    app = roles.url(roles.app)
    with pytest.raises(MigrationError) as caught:
        SessionRepository(app)
    message = str(caught.value)
    assert f"role '{roles.app}' may not create tables in schema '{roles.schema}'" in message
    assert "run 'sessions-dal migrate' once" in message
    assert f'GRANT CREATE ON SCHEMA "{roles.schema}" TO "{roles.app}"' in message
    error = fails(tmp_path, "--db", app, "create", "alice")  # one line (fails checks it)
    assert "may not create tables" in error and "sessions-dal migrate" in error
    assert roles.run("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                     roles.schema) == [(0,)]
    # Half migrated by the owner (an older sessions_dal): the upgrade is the owner's too.
    with psycopg.connect(roles.url(roles.owner), autocommit=True) as conn:
        apply_migrations(conn, "the owner's", SQL(roles.schema, "agent_sessions", "agent_messages"),
                         MIGRATIONS[:1])
    roles.run(f"GRANT SELECT ON {roles.schema}.sessions_dal_migrations TO {roles.app}",
              role=roles.owner)
    with pytest.raises(MigrationError, match=(
            f"may not upgrade sessions_dal's tables in schema '{roles.schema}' .* from schema "
            f"version 1 to {MIGRATIONS[-1].version} .*only their owner may")):
        SessionRepository(app)
    # Migrated, but the role was given nothing: it cannot even read the version.
    ok(tmp_path, "--db", roles.url(roles.owner), "migrate")
    nobody = roles.new_role("nobody")
    roles.run(f"GRANT USAGE ON SCHEMA {roles.schema} TO {nobody}", role=roles.owner)
    error = fails(tmp_path, "--db", roles.url(nobody), "create", "alice")
    assert f"may not read sessions_dal's tables in schema '{roles.schema}'" in error
    assert f"'sessions-dal grant {nobody} --apply'" in error


def test_openai_agents_role_with_rights_on_its_two_tables_keeps_writing(
    roles: Roles, tmp_path: Path,
) -> None:
    # What an app using SQLAlchemySession is given on a shared database, after
    # sessions_dal migrated it: its two tables and their sequence, nothing else.
    migrated(roles, tmp_path)
    s = roles.schema
    roles.run(f"GRANT USAGE ON SCHEMA {s} TO {roles.app}; GRANT SELECT, INSERT, UPDATE, "
              f"DELETE ON {s}.agent_sessions, {s}.agent_messages TO {roles.app}; "
              f"GRANT USAGE ON SEQUENCE {s}.agent_messages_id_seq TO {roles.app}",
              role=roles.owner)
    with SessionRepository(roles.url(roles.owner)) as repo:
        before = repo.get_session("bob", "bobs").updated_at  # type: ignore[union-attr]
    with psycopg.connect(roles.url(roles.app)) as agents:
        # SQLAlchemySession's add_items, pop_item and clear_session, statement by statement.
        for session_id, texts in (("bobs", ['{"content": "naples"}', '{"content": "bari"}']),
                                  ("new", ['{"content": "naples too"}'])):
            agents.execute("INSERT INTO agent_sessions (session_id) VALUES (%s) "
                           "ON CONFLICT DO NOTHING", [session_id])
            agents.execute("SELECT session_id FROM agent_sessions WHERE session_id = %s "
                           "FOR UPDATE", [session_id])
            agents.cursor().executemany(
                "INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s)",
                [(session_id, text) for text in texts])
            agents.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP "
                           "WHERE session_id = %s", [session_id])
            agents.commit()
        popped = agents.execute(
            "DELETE FROM agent_messages WHERE id = (SELECT id FROM agent_messages WHERE "
            "session_id = 'bobs' ORDER BY created_at DESC, id DESC LIMIT 1) "
            "RETURNING message_data").fetchone()
        agents.commit()
        assert popped == ('{"content": "bari"}',)
        agents.execute("DELETE FROM agent_messages WHERE session_id = 'theirs'")
        agents.execute("DELETE FROM agent_sessions WHERE session_id = 'theirs'")
        agents.commit()
    with SessionRepository(roles.url(roles.owner)) as repo:
        bobs = repo.get_session("bob", "bobs")
        assert bobs is not None and bobs.updated_at > before  # the activity trigger ran
        assert bobs.get_items() == [{"content": "rome"}, {"content": "naples"}]
        assert [h.item for h in repo.search("bob", "naples")] == [{"content": "naples"}]
        assert repo.search("bob", "bari") == []
        assert repo.get_unowned_session("theirs") is None
        repo.claim_session("bob", "new")
        assert [h.item for h in repo.search("bob", "too")] == [{"content": "naples too"}]
