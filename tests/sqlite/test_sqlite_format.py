"""How the SQLite store writes its rows: text that other SQLite tools can read."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from helpers import rows

from sessions_dal import SessionRepository
from sessions_dal.errors import CorruptDataError, CorruptSessionError, SessionExistsError


def test_created_at_is_stored_as_explicit_utc_text(repo: SessionRepository, db_path: Path) -> None:
    s = repo.create_session("alice")
    (stored,) = rows(db_path, "SELECT created_at, updated_at FROM agent_user_sessions")
    assert stored == (s.created_at.isoformat(), s.created_at.isoformat())
    assert str(stored[0]).endswith("+00:00") and len(str(stored[0])) == 32


def test_session_rows_are_where_openai_agents_and_sessions_dal_look(
    repo: SessionRepository, db_path: Path
) -> None:
    s = repo.create_session("alice", metadata={"title": "Trip"})
    assert rows(db_path, "SELECT user_id FROM agent_users") == [("alice",)]
    assert rows(db_path, "SELECT session_id, user_id, metadata FROM agent_user_sessions") == [
        (s.session_id, "alice", '{"title": "Trip"}')
    ]
    # openai-agents' row comes with the first items, as SQLiteSession's does.
    assert rows(db_path, "SELECT session_id FROM agent_sessions") == []
    s.add_items(["hello"])
    assert rows(db_path, "SELECT session_id FROM agent_sessions") == [(s.session_id,)]
    fork = repo.fork_session("alice", s.session_id)  # a fork has items at once
    assert rows(db_path, "SELECT session_id FROM agent_sessions ORDER BY rowid") == [
        (s.session_id,), (fork.session_id,)]
    empty = repo.fork_session("alice", s.session_id, upto=0)
    assert empty.get_items() == [] and len(rows(db_path, "SELECT 1 FROM agent_sessions")) == 3
    with pytest.raises(SessionExistsError):  # an id openai-agents used is taken
        repo.create_session("bob", session_id=s.session_id)


def damage(db_path: Path, sql: str) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_a_damaged_session_time_is_a_library_error_naming_the_row(
    repo: SessionRepository, db_path: Path
) -> None:
    repo.create_session("alice", session_id="hurt")
    damage(db_path, "UPDATE agent_user_sessions SET created_at = 'yesterday'")
    expected = (r"session 'hurt' \(its agent_user_sessions row\) has "
                + re.escape("a created_at that is not a timestamp ('yesterday')"))
    for call in (lambda: repo.get_sessions("alice"), lambda: repo.find_session("hurt")):
        with pytest.raises(CorruptSessionError, match=expected):
            call()


def test_a_damaged_user_row_is_a_library_error(repo: SessionRepository, db_path: Path) -> None:
    repo.create_session("alice")
    damage(db_path, "UPDATE agent_users SET created_at = 'soon'")
    with pytest.raises(CorruptDataError, match=r"user 'alice' \(its agent_users row\)"):
        repo.get_users()


@pytest.mark.parametrize("order", ["created", "updated"])
def test_a_page_of_sessions_in_either_order_is_an_index_range_scan(
    repo: SessionRepository, db_path: Path, order: str
) -> None:
    from sessions_dal.backends.sqlite._sql import SQL

    sql = SQL("agent_sessions", "agent_messages")
    keys = ("2026", 1) if order == "created" else ("2026", "2026", 1)
    conn = sqlite3.connect(db_path)
    for statement, params in [(sql.select_page[order], ("alice", 10, 5)),
                              (sql.select_first[order], ("alice", 10)),
                              (sql.select_after[order], ("alice", *keys, 10))]:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                          params))
        index = "activity" if order == "updated" else "user"
        assert f"INDEX idx_agent_user_sessions_{index} (user_id=?" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of all the user's sessions
    conn.close()


def test_the_activity_stamp_openai_agents_causes_is_our_fixed_width_utc_text(
    repo: SessionRepository, db_path: Path
) -> None:
    s = repo.create_session("alice")
    s.add_items([1, 2])
    # SQLite's clock has milliseconds, and a stamp never moves back: start from
    # an older one, or a pop within the same millisecond would leave ours.
    damage(db_path, "UPDATE agent_user_sessions SET updated_at = "
                    "'2026-01-01T00:00:00.000000+00:00'")
    s = repo.get_session("alice", s.session_id)  # type: ignore[assignment]
    conn = sqlite3.connect(db_path)  # as SQLiteSession pops
    conn.execute("DELETE FROM agent_messages WHERE id = (SELECT max(id) FROM agent_messages)")
    conn.commit()
    conn.close()
    (stamp,) = rows(db_path, "SELECT updated_at FROM agent_user_sessions")[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000\+00:00", str(stamp)), stamp
    again = repo.get_session("alice", s.session_id)
    assert again is not None and again.updated_at > s.updated_at


def test_prune_leaves_a_session_with_a_damaged_time_alone(repo: SessionRepository,
                                                          db_path: Path) -> None:
    from datetime import timedelta

    damaged = repo.create_session("alice", session_id="damaged")
    repo.create_session("alice", session_id="fine")
    damage(db_path, "UPDATE agent_user_sessions SET updated_at = 'garbage' "
                    "WHERE session_id = 'damaged'")
    assert repo.prune(keep_last=0, dry_run=True).sessions == 1  # "fine" only
    assert repo.prune(older_than=timedelta(0)).sessions == 1
    assert rows(db_path, "SELECT session_id FROM agent_user_sessions") == [("damaged",)]
    assert damaged.get_items() == []  # still there, still readable by id
