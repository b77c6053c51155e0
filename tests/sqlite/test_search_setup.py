"""Search on SQLite: without FTS5, and when the index is added to an existing file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sessions_dal import SCHEMA_VERSION, SessionRepository
from sessions_dal.backends.sqlite import _schema
from sessions_dal.errors import SearchUnavailableError


def make_version_2(path: Path, items: int) -> None:
    """A file as sessions_dal with schema version 2 left it, ``items`` items in it."""
    with SessionRepository(path) as repo:
        s = repo.create_session("alice", session_id="s", metadata={"title": "Old trip"})
        s.add_items([{"role": "user", "content": f"word{n} rome"} for n in range(items)])
        repo.create_session("bob").add_items(["rome"])
    conn = sqlite3.connect(path)
    with conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'sessions_dal_search%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE sessions_dal_search")
        conn.execute("DELETE FROM sessions_dal_migrations WHERE version >= 3")
    conn.close()


def test_opening_read_write_adds_search_to_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_version_2(path, 50)
    with SessionRepository(path, read_only=True) as repo:
        assert repo.pending_migrations()[0] == (
            "version 3: Search: a full-text index of the words in items and session "
            "titles, kept by triggers.")
        with pytest.raises(SearchUnavailableError, match="sessions-dal migrate"):
            repo.search("alice", "rome")
    with SessionRepository(path) as repo:
        assert len(repo.search("alice", "rome", limit=None)) == 50
        assert [h.item for h in repo.search("alice", "word7")] == [
            {"role": "user", "content": "word7 rome"}]
        assert repo.search("alice", "trip")[0].item is None
        assert [h.item for h in repo.search("bob", "rome")] == ["rome"]


def test_migrating_leaves_the_items_to_the_first_search_which_shows_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    make_version_2(path, 1000)
    monkeypatch.setattr("sessions_dal.backends._migrations.BATCH", 300)
    from sessions_dal.cli import main

    assert main(["--db", str(path), "migrate"]) == 0
    assert "%" not in capsys.readouterr().err  # no pass over the items at open
    heard: list[tuple[str, float]] = []
    with SessionRepository(path) as repo:
        hits = repo.search("alice", "rome", limit=None,
                           progress=lambda step, done: heard.append((step, done)))
        assert len(hits) == 1000
        assert heard == [("search index: new items", n / 1001) for n in (300, 600, 900, 1001)]
        heard.clear()
        assert len(repo.search("bob", "rome", progress=heard.append)) == 1 and heard == []
        with pytest.raises(TypeError, match="progress must be callable"):
            repo.search("alice", "rome", progress=3)  # type: ignore[arg-type]


def test_migrate_prints_no_pass_over_the_items(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_version_2(path, 30)
    done = subprocess.run([sys.executable, "-m", "sessions_dal", "--db", str(path), "migrate"],
                          capture_output=True, text=True, check=True)
    assert "version 3: Search" in done.stdout and "version 5: Search" in done.stdout
    assert "migrated" in done.stdout and "%" not in done.stderr
    found = subprocess.run([sys.executable, "-m", "sessions_dal", "--db", str(path), "search",
                            "alice", "word7"], capture_output=True, text=True, check=True)
    assert found.stdout == "s  [word7] rome\n"


def without_fts5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sessions_dal see an SQLite without FTS5 until ``monkeypatch.undo()``."""
    monkeypatch.setattr(_schema, "has_fts5", lambda conn: False)
    monkeypatch.setattr("sessions_dal.backends.sqlite.store.has_fts5", lambda conn: False)


def test_without_fts5_search_says_so_and_everything_else_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.db"
    without_fts5(monkeypatch)
    with SessionRepository(path) as repo:
        s = repo.create_session("alice", metadata={"title": "Rome"})
        s.add_items(["rome"] * 3)
        assert s.pop_item() == "rome"
        with pytest.raises(SearchUnavailableError, match="FTS5"):
            repo.search("alice", "rome")
        with pytest.raises(SearchUnavailableError, match="FTS5"):
            repo.reindex()
        assert repo.info().schema_version == SCHEMA_VERSION and repo.check() == []
        assert repo.delete_session("alice", s.session_id)
        repo.create_session("alice").add_items(["rome again"])
    monkeypatch.undo()
    with SessionRepository(path) as repo:  # an SQLite with FTS5 builds the index
        assert [h.item for h in repo.search("alice", "rome")] == ["rome again"]


def test_history_compacted_without_fts5_is_found_once_an_sqlite_with_it_opens_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.db"
    without_fts5(monkeypatch)
    with SessionRepository(path) as repo:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["rome by train", "naples"])
        s.compact(["summary"], upto=1)
        fork = repo.fork_session("alice", "s").session_id
        with pytest.raises(SearchUnavailableError, match="FTS5"):
            repo.search("alice", "rome")
    monkeypatch.undo()
    with SessionRepository(path) as repo:
        hits = repo.search("alice", "rome")
        assert sorted((h.session.session_id, h.item, h.layer) for h in hits) == sorted([
            (fork, "rome by train", 1), ("s", "rome by train", 1)])
        assert repo.check() == []


def test_a_file_whose_history_index_alone_is_missing_gets_it_back(tmp_path: Path) -> None:
    # As a file that an SQLite without FTS5 took from version 8 to 9 leaves it.
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["rome by train", "naples"])
        s.compact(["summary"], upto=1)
    conn = sqlite3.connect(path)
    with conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'sessions_dal_search_history%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP VIEW sessions_dal_search_history_words")
        conn.execute("DROP TABLE sessions_dal_search_history")
    conn.close()
    with SessionRepository(path, read_only=True) as reader:  # cannot build it: the view only
        assert [h.item for h in reader.search("alice", "rome naples")] == []
        assert [h.item for h in reader.search("alice", "summary")] == ["summary"]
    with SessionRepository(path) as repo:
        assert [(h.item, h.layer) for h in repo.search("alice", "rome")] == [
            ("rome by train", 1)]
        s2 = repo.get_session("alice", "s")
        assert s2 is not None
        s2.compact(["summary 2"])  # the triggers are back too
        assert [(h.item, h.layer) for h in repo.search("alice", "summary")] == [
            ("summary 2", None)]
        assert repo.check() == []


def test_a_version_3_file_is_indexed_by_the_text_rules_of_version_4(tmp_path: Path) -> None:
    # Version 3 indexed a string only up to a NUL in it, a title too.
    path = tmp_path / "v3.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="s", metadata={"title": "Trip\x00to Naples"})
    conn = sqlite3.connect(path)
    with conn:  # back to version 3's triggers, as a file it left
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'sessions_dal_search%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        for statement in _schema.MIGRATIONS[2].statements:
            if "CREATE TRIGGER" in statement:
                conn.execute(statement)
        conn.execute("DELETE FROM sessions_dal_search")
        conn.execute("INSERT INTO sessions_dal_search (rowid, words, owner) SELECT -seq, "
                     "json_extract(metadata, '$.title'), 'u' || hex(user_id) || ' s' || "
                     "hex(session_id) FROM agent_user_sessions")
        conn.execute("DELETE FROM sessions_dal_migrations WHERE version > 3")
        old = [{"content": "alpha\x00beta"}, {"content": "C:\\u0000dir rome"},
               {"content": "gamma"}]
        conn.executemany("INSERT INTO agent_messages (session_id, message_data) "
                         "VALUES ('s', ?)", [(json.dumps(item),) for item in old])
        assert conn.execute("SELECT count(*) FROM sessions_dal_search "
                            "WHERE sessions_dal_search MATCH 'beta OR naples'").fetchone() == (0,)
    conn.close()
    with SessionRepository(path) as repo:
        assert repo.info().schema_version == _schema.SCHEMA_VERSION

        def found(query: str) -> list[object]:
            return [hit.item for hit in repo.search("alice", query, limit=None)]

        assert found("beta") == [old[0]] and found("alpha") == [old[0]]
        assert found("u0000dir") == [old[1]] and found("gamma") == [old[2]]
        assert found("naples") == [None]
