"""The sessions-dal command line on a postgresql:// URL, and moving data between backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

from backends import PostgresBackend, fresh
from test_cli import as_json, fails, ok

from sessions_dal import SessionRepository
from sessions_dal.backends.postgres._schema import MIGRATIONS


def test_the_commands_work_on_a_url(pg: PostgresBackend, tmp_path: Path) -> None:
    db = ("--db", pg.target)
    session_id = ok(tmp_path, *db, "create", "alice", "--metadata", '{"title": "Trip"}').strip()
    with pg.open() as repo:
        repo.get_session("alice", session_id).add_items([{"role": "user"}])  # type: ignore[union-attr]
    assert [s["session_id"] for s in as_json(tmp_path, *db, "sessions", "alice")] == [session_id]
    assert as_json(tmp_path, *db, "users")[0]["user_id"] == "alice"
    shown = as_json(tmp_path, *db, "show", session_id)
    assert shown["items_shown"] == [{"role": "user"}]
    info = ok(tmp_path, *db, "info")
    assert "backend:            postgresql" in info
    assert "sqlite version" not in info and "journal mode" not in info
    assert re.search(r"\nserver version: +\d+\.\d+\n", info)
    assert ok(tmp_path, *db, "check").strip() == "ok"
    ok(tmp_path, *db, "delete", "alice", session_id)
    assert as_json(tmp_path, *db, "sessions", "alice") == []
    assert list(tmp_path.iterdir()) == []  # no file was made for the URL


def test_the_chat_app_commands_work_on_a_url(pg: PostgresBackend, tmp_path: Path) -> None:
    db = ("--db", pg.target)
    with pg.open() as repo:
        old = repo.create_session("alice", session_id="old")
        old.add_items([{"role": "user", "content": f"m{n}"} for n in range(30)])
        repo.create_session("alice", session_id="new")
        old.add_items([{"role": "user", "content": "back"}])
    assert [s["session_id"] for s in as_json(tmp_path, *db, "sessions", "alice", "--sort",
                                             "updated")] == ["old", "new"]
    text = ok(tmp_path, *db, "show", "old", "--offset", "20", "--limit", "3")
    assert "  ... 8 earlier items (--offset 23" in text and text.rstrip().endswith("user: m10")
    branch = ok(tmp_path, *db, "fork", "alice", "old", "--upto", "2").strip()
    assert as_json(tmp_path, *db, "show", branch)["items"] == 2
    assert as_json(tmp_path, *db, "prune", "--keep-last", "1", "--dry-run") == {
        "sessions": 2, "items": 31, "dry_run": True}  # the branch is the last active
    assert ok(tmp_path, *db, "prune", "--keep-last", "1", "--yes").strip() == (
        "deleted 2 session(s), 31 item(s)")
    assert [s["session_id"] for s in as_json(tmp_path, *db, "sessions", "alice")] == [branch]


def test_adopting_an_sqlalchemy_session_database_from_the_command_line(
    pg: PostgresBackend, tmp_path: Path,
) -> None:
    pg.write_like_agents("chat", ['{"n": 1}'])
    db = ("--db", pg.target)
    dry = ok(tmp_path, *db, "migrate", "--dry-run")
    assert "not yet set up by sessions_dal" in dry and "(dry run: nothing was changed)" in dry
    assert not _has_version_table(pg)
    assert "--backup copies an SQLite file" in fails(tmp_path, *db, "migrate", "--backup", "b")
    assert "migrated" in ok(tmp_path, *db, "migrate")
    assert pg.migrations_recorded() == [m.version for m in MIGRATIONS]
    assert [s["session_id"] for s in as_json(tmp_path, *db, "unowned")] == ["chat"]
    ok(tmp_path, *db, "claim", "alice", "chat")
    assert as_json(tmp_path, *db, "sessions", "alice")[0]["session_id"] == "chat"


def _has_version_table(pg: PostgresBackend) -> bool:
    return bool(pg._query("SELECT to_regclass('sessions_dal_migrations')")[0][0])


def test_a_password_in_the_url_is_never_printed(tmp_path: Path) -> None:
    error = fails(tmp_path, "--db", "postgresql://nobody:hunter2@127.0.0.1:1/db", "info")
    assert "hunter2" not in error
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/db" in error


def test_export_from_postgresql_imports_into_sqlite_and_back(pg: PostgresBackend,
                                                             tmp_path: Path) -> None:
    pg.write_like_agents("theirs", ['{"n": 1}', '{"n": 2}'], created_at="2025-03-04 05:06:07")
    with pg.open() as repo:
        s = repo.create_session("alice", session_id="ours", metadata={"z": 1, "a": 2})
        s.add_items([{"b": 1, "a": [1.5, None, "é\u0000"]}, "text", 1e16])
    exported = ok(tmp_path, "--db", pg.target, "export")
    ok(tmp_path, "--db", "copy.db", "import", "-", stdin=exported)
    again = ok(tmp_path, "--db", "copy.db", "export")
    assert _records(again) == _records(exported)  # the same data, whichever backend held it
    with fresh("postgresql") as other_backend:
        ok(tmp_path, "--db", other_backend.target, "import", "-", stdin=again)
        with other_backend.open() as copy:
            [theirs] = copy.get_unowned_sessions()
            assert theirs.created_at.isoformat() == "2025-03-04T05:06:07+00:00"
            ours = copy.get_session("alice", "ours")
            assert ours is not None and ours.metadata == {"z": 1, "a": 2}
            assert ours.get_items() == [{"b": 1, "a": [1.5, None, "é\u0000"]}, "text", 1e16]
    with SessionRepository(tmp_path / "copy.db") as repo:
        assert repo.find_session("theirs") is not None


def _records(text: str) -> list[object]:
    """The export's records without its header (which says when it was made)."""
    return [json.loads(line) for line in text.splitlines()[1:]]
