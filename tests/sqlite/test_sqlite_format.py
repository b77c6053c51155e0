"""How the SQLite store writes its rows: text that other SQLite tools can read."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from helpers import rows

from sessions_dal import SessionRepository
from sessions_dal.errors import CorruptDataError, CorruptSessionError


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
    assert rows(db_path, "SELECT session_id FROM agent_sessions") == [(s.session_id,)]
    assert rows(db_path, "SELECT session_id, user_id, metadata FROM agent_user_sessions") == [
        (s.session_id, "alice", '{"title": "Trip"}')
    ]


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
