"""Export and import details of the SQLite store: its paging, its timestamps, read-only files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from agents_schema import write_like_agents
from helpers import DeletesDuringExport, exported

from sessions_dal import SessionRepository
from sessions_dal.errors import DatabaseError
from sessions_dal.transfer import export_jsonl, import_jsonl


def test_an_unowned_sessions_time_is_written_back_as_openai_agents_wrote_it(tmp_path: Path
                                                                            ) -> None:
    path = tmp_path / "agents.db"
    write_like_agents(path, "chat", ['"x"'], created_at="2025-03-04 05:06:07")
    with SessionRepository(path) as repo, SessionRepository(tmp_path / "copy.db") as copy:
        import_jsonl(copy, exported(repo))
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("SELECT created_at FROM agent_sessions").fetchall() == [
        ("2025-03-04 05:06:07",)]
    conn.close()


def test_unowned_sessions_keep_their_order_and_their_timestamp_text(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    # Same creation second, out of id order; a time openai-agents never wrote; none.
    for chat in ("c", "a", "b"):
        write_like_agents(path, chat, ['"x"'], created_at="2025-01-01 00:00:00")
    write_like_agents(path, "odd", [], created_at="sometime")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO agent_sessions (session_id, created_at, updated_at) "
                 "VALUES ('none', NULL, NULL)")
    conn.commit()
    conn.close()
    with SessionRepository(path) as source, SessionRepository(tmp_path / "copy.db") as copy:
        import_jsonl(copy, exported(source))
        listed = [s.session_id for s in source.get_unowned_sessions()]
        assert [s.session_id for s in copy.get_unowned_sessions()] == listed
    assert listed == ["odd", "b", "a", "c", "none"]  # ties: the later written first
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("SELECT created_at FROM agent_sessions WHERE session_id IN "
                        "('odd', 'none') ORDER BY session_id").fetchall() == [
        (None,), ("sometime",)]
    conn.close()



def test_an_export_from_a_read_only_repository_that_sees_a_write_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="long").add_items(list(range(50)))
    with SessionRepository(path, read_only=True) as reader, SessionRepository(path) as writer:
        out = DeletesDuringExport(writer, "alice", "long")
        with pytest.raises(DatabaseError, match=r"was changed by a writer .* run it again"):
            export_jsonl(reader, out)
        assert '"type": "end"' not in out.getvalue()  # an import will refuse what was written
