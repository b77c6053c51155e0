"""Files openai-agents wrote are adopted in place; foreign layouts are refused untouched."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from agents_schema import write_like_agents
from helpers import dump, rows

from sessions_dal import SCHEMA_VERSION, SessionRepository
from sessions_dal.errors import (
    CorruptItemError,
    IncompatibleSchemaError,
    SessionNotFoundError,
    SessionOwnedError,
    SessionsDalError,
)

MESSAGES = "SELECT id, session_id, message_data, created_at FROM agent_messages ORDER BY id"


@pytest.mark.parametrize("index_on", ["id", "created_at"])
def test_adoption_keeps_every_session_and_item_byte_for_byte(db_path: Path, index_on: str) -> None:
    write_like_agents(db_path, "old-1", ['{"n": 1}', '{"n":  2, "x": "\\u00e9"}', '{"n": NaN}'],
                      index_on=index_on)
    write_like_agents(db_path, "old-2", ['"hi"'], index_on=index_on)
    before = rows(db_path, MESSAGES)
    sessions_before = rows(db_path, "SELECT * FROM agent_sessions ORDER BY session_id")
    with SessionRepository(db_path) as repo:
        assert rows(db_path, MESSAGES) == before
        assert rows(db_path, "SELECT * FROM agent_sessions ORDER BY session_id") == sessions_before
        assert rows(db_path, "SELECT max(version) FROM sessions_dal_migrations") == [
            (SCHEMA_VERSION,)]
        assert rows(db_path, "PRAGMA user_version") == [(0,)]
        # Either index variant ends up on (session_id, id).
        assert [r[2] for r in rows(db_path, "PRAGMA index_info(idx_agent_messages_session_id)")
                ] == ["session_id", "id"]
        old = repo.get_unowned_session("old-1")
        assert old is not None and old.user_id is None and old.metadata == {}
        assert old.get_items()[:2] == [{"n": 1}, {"n": 2, "x": "é"}]
        assert {s.session_id for s in repo.get_unowned_sessions()} == {"old-1", "old-2"}
        assert repo.count_unowned_sessions() == 2 and repo.info().unowned_sessions == 2


def test_adoption_leaves_other_tables_alone(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript("""
        CREATE TABLE app_settings (k TEXT PRIMARY KEY, v TEXT);
        INSERT INTO app_settings VALUES ('theme', 'dark');
        CREATE TABLE message_structure (id INTEGER PRIMARY KEY, session_id TEXT, message_id INT);
        INSERT INTO message_structure VALUES (1, 'old', 1);
    """)
    conn.close()
    write_like_agents(db_path, "old", ['{"a": 1}'])
    before = [line for line in dump(db_path) if "app_settings" in line or "message_struct" in line]
    SessionRepository(db_path).close()
    after = [line for line in dump(db_path) if "app_settings" in line or "message_struct" in line]
    assert after == before and len(before) == 4


@pytest.mark.parametrize(
    ("ddl", "table"),
    [
        ("CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, owner TEXT)", "agent_sessions"),
        ("CREATE TABLE agent_sessions (id INTEGER PRIMARY KEY, session_id TEXT, "
         "created_at TIMESTAMP, updated_at TIMESTAMP)", "agent_sessions"),
        ("CREATE TABLE agent_messages (id INTEGER PRIMARY KEY, session_id TEXT, body TEXT, "
         "created_at TIMESTAMP)", "agent_messages"),
        ("CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, created_at TIMESTAMP, "
         "updated_at TIMESTAMP); CREATE TABLE other (x PRIMARY KEY); "
         "CREATE TABLE agent_messages (id INTEGER PRIMARY KEY, session_id TEXT "
         "REFERENCES agent_sessions (session_id), message_data TEXT, created_at TIMESTAMP "
         "REFERENCES other (x))", "agent_messages"),
        ("CREATE TABLE agent_users (user_id TEXT PRIMARY KEY, metadata TEXT, created_at TEXT, "
         "updated_at TEXT)", "agent_users"),
        ("CREATE TABLE agent_user_sessions (session_id TEXT PRIMARY KEY, user_id TEXT)",
         "agent_user_sessions"),
    ],
    ids=["sessions-columns", "sessions-key", "messages-columns", "messages-foreign-keys",
         "users-from-the-declined-upstream-change", "user-sessions"],
)
def test_foreign_layout_is_refused_and_the_file_is_unchanged(
    db_path: Path, ddl: str, table: str
) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript(ddl)
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(IncompatibleSchemaError) as info:
        SessionRepository(db_path)
    assert isinstance(info.value, SessionsDalError)
    assert f"table {table!r}" in str(info.value)
    assert "neither openai-agents' nor sessions_dal's" in str(info.value)
    assert db_path.read_bytes() == before


def test_file_with_our_own_tables_at_version_zero_is_adopted(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript("""
        CREATE TABLE agent_users (user_id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
        CREATE TABLE agent_user_sessions (seq INTEGER PRIMARY KEY AUTOINCREMENT,
          session_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES agent_users (user_id),
          metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    """)
    conn.close()
    with SessionRepository(db_path) as repo:
        repo.create_session("alice")
        assert repo.count_sessions("alice") == 1


# -- unowned sessions and claiming ---------------------------------------------


def test_claim_gives_an_unowned_session_an_owner_keeping_items_and_age(db_path: Path) -> None:
    write_like_agents(db_path, "old", ['{"n": 1}', '{"n": 2}'], created_at="2025-03-04 05:06:07")
    with SessionRepository(db_path) as repo:
        newer = repo.create_session("alice")
        claimed = repo.claim_session("alice", "old", metadata={"title": "from agents"})
        assert (claimed.user_id, claimed.metadata) == ("alice", {"title": "from agents"})
        assert claimed.created_at.isoformat() == "2025-03-04T05:06:07+00:00"
        assert claimed.get_items() == [{"n": 1}, {"n": 2}]
        assert repo.get_sessions("alice") == [newer, claimed]  # sorted by its real age
        assert repo.get_unowned_sessions() == [] and repo.get_unowned_session("old") is None
        assert repo.claim_session("alice", "old") == claimed  # idempotent
        claimed.add_items([{"n": 3}])
        assert repo.get_session("alice", "old").get_items()[-1] == {"n": 3}  # type: ignore[union-attr]


def test_claiming_another_users_session_or_a_missing_one_writes_nothing(db_path: Path) -> None:
    write_like_agents(db_path, "old", ['{"n": 1}'])
    with SessionRepository(db_path) as repo:
        repo.claim_session("alice", "old")
        mine = repo.create_session("bob")
        before = dump(db_path)
        with pytest.raises(SessionOwnedError, match="belongs to another user"):
            repo.claim_session("bob", "old")
        with pytest.raises(SessionOwnedError):
            repo.claim_session("carol", mine.session_id)
        with pytest.raises(SessionNotFoundError, match="no session 'nope' to claim"):
            repo.claim_session("carol", "nope")
        assert dump(db_path) == before


def test_claim_sessions_is_all_or_nothing(db_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_like_agents(db_path, name, [f'"{name}"'])
    with SessionRepository(db_path) as repo:
        before = dump(db_path)
        with pytest.raises(SessionNotFoundError):
            repo.claim_sessions("alice", ["a", "b", "missing"])
        assert dump(db_path) == before
        claimed = repo.claim_sessions("alice", ["a", "b"])
        assert [s.session_id for s in claimed] == ["a", "b"]
        assert [s.session_id for s in repo.get_unowned_sessions()] == ["c"]
        with pytest.raises(TypeError, match="not a str"):
            repo.claim_sessions("alice", "c")


def test_unowned_session_reads_and_writes_without_a_user(db_path: Path) -> None:
    write_like_agents(db_path, "old", ['{"n": 1}'])
    with SessionRepository(db_path) as repo:
        old = repo.get_unowned_session("old")
        assert old is not None
        old.add_items([{"n": 2}])
        assert old.pop_item() == {"n": 2}
        assert repo.find_session("old") == old
        assert repo.get_unowned_sessions(limit=0) == []
        assert repo.get_session("alice", "old") is None  # not anyone's yet


# -- custom table names ---------------------------------------------------------


def test_custom_table_names_are_adopted_and_used(db_path: Path) -> None:
    write_like_agents(db_path, "old", ['{"n": 1}'], sessions="chat_sessions",
                      messages="chat_messages")
    with SessionRepository(db_path, sessions_table="chat_sessions",
                           messages_table="chat_messages") as repo:
        claimed = repo.claim_session("alice", "old")
        claimed.add_items([{"n": 2}])
        s = repo.create_session("alice")
        s.add_items([1])
        assert claimed.get_items() == [{"n": 1}, {"n": 2}]
        assert repo.delete_user("alice").items == 3
    names = {r[0] for r in rows(db_path, "SELECT name FROM sqlite_master")}
    assert {"chat_sessions", "chat_messages", "idx_chat_messages_session_id"} <= names
    assert "agent_sessions" not in names and "agent_messages" not in names


def test_opening_with_other_table_names_than_the_file_has_is_refused(db_path: Path) -> None:
    SessionRepository(db_path).close()
    before = db_path.read_bytes()
    with pytest.raises(IncompatibleSchemaError, match="no table 'chat_sessions'"):
        SessionRepository(db_path, sessions_table="chat_sessions", messages_table="chat_messages")
    assert db_path.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sessions_table": "x; DROP TABLE agent_users"}, ValueError),
        ({"sessions_table": 'a"b'}, ValueError),
        ({"messages_table": "1abc"}, ValueError),
        ({"messages_table": ""}, ValueError),
        ({"messages_table": "x" * 64}, ValueError),
        ({"sessions_table": "sqlite_master"}, ValueError),
        ({"sessions_table": "agent_users"}, ValueError),
        ({"sessions_table": "tablé"}, ValueError),
        ({"sessions_table": "same", "messages_table": "SAME"}, ValueError),
        ({"sessions_table": None}, TypeError),
    ],
)
def test_bad_table_names_are_refused_before_any_sql(
    db_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"sessions_table|messages_table"):
        SessionRepository(db_path, **kwargs)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_a_corrupt_item_is_named_by_the_table_the_repository_uses(tmp_path: Path) -> None:
    path = tmp_path / "custom.db"
    with SessionRepository(path, sessions_table="chats", messages_table="chat_items") as repo:
        session = repo.create_session("alice", session_id="s")
        session.add_items(["fine"])
        conn = sqlite3.connect(path)
        bad = conn.execute("INSERT INTO chat_items (session_id, message_data) "
                           "VALUES ('s', '{oops')").lastrowid
        conn.commit()
        conn.close()
        for call in (session.get_items, lambda: repo.export_to(io.StringIO())):
            with pytest.raises(CorruptItemError, match=rf"\(chat_items\.id = {bad}\)"):
                call()
