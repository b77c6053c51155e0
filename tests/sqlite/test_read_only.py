"""read_only=True never writes: no migration, no journal switch, no file beside the database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from agents_schema import write_like_agents

from sessions_dal import SCHEMA_VERSION, SessionRepository
from sessions_dal.errors import DatabaseError, ReadOnlyDatabaseError, SchemaVersionError


def listing(folder: Path) -> dict[str, bytes]:
    """Every file of the folder with its bytes: what must not change."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_openai_agents_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    write_like_agents(path, "chat-1", ['{"n": 1}', '{"n": 2}'])
    write_like_agents(path, "chat-2", ['"x"'])
    before = listing(tmp_path)
    with SessionRepository(path, read_only=True) as repo:
        info = repo.info()
        assert (info.schema_version, info.migration_pending, info.read_only) == (0, True, True)
        assert (info.users, info.sessions, info.unowned_sessions, info.items) == (0, 0, 2, 3)
        assert info.details["journal_mode"] == "wal"
        chat = repo.get_unowned_session("chat-1")
        assert chat is not None and chat.get_items() == [{"n": 1}, {"n": 2}]
        assert repo.get_users() == [] and repo.get_sessions("alice") == []
        assert repo.pending_migrations()[0].startswith("version 1: ")
        assert repo.check() == []
        assert "read-only" in repr(repo)
    assert listing(tmp_path) == before


def test_a_foreign_file_keeps_its_journal_mode_and_user_version(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    before = listing(tmp_path)
    with SessionRepository(path, read_only=True) as repo:
        info = repo.info()
        assert (info.schema_version, info.users, info.items) == (0, 0, 0)
        assert info.details["journal_mode"] == "delete"
    assert listing(tmp_path) == before


def test_a_current_file_is_read_without_a_side_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", metadata={"t": 1}).add_items([1, 2])
    before = listing(tmp_path)
    assert list(before) == ["x.db"]  # a clean close leaves no -wal/-shm
    with SessionRepository(path, read_only=True) as repo:
        (s,) = repo.get_sessions("alice")
        assert s.get_items() == [1, 2] and s.metadata == {"t": 1}
        assert repo.info().schema_version == SCHEMA_VERSION
        assert not repo.info().migration_pending and repo.pending_migrations() == []
    assert listing(tmp_path) == before


def test_writes_made_meanwhile_by_another_connection_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SessionRepository(path).close()
    with SessionRepository(path, read_only=True) as reader:
        assert reader.count_sessions("alice") == 0
        with SessionRepository(path) as writer:
            writer.create_session("alice").add_items([1])
            assert reader.count_sessions("alice") == 1
            (s,) = reader.get_sessions("alice")
            assert s.get_items() == [1]


def test_every_write_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="s").add_items([1])
    before = listing(tmp_path)
    with SessionRepository(path, read_only=True) as repo:
        s = repo.get_session("alice", "s")
        assert s is not None
        writes = [lambda: repo.create_session("bob"), lambda: s.add_items([2]), s.pop_item,
                  s.clear_session, lambda: repo.delete_user("alice"),
                  lambda: repo.delete_session("alice", "s"),
                  lambda: repo.update_metadata("alice", "s", {"a": 1})]
        for write in writes:
            with pytest.raises(ReadOnlyDatabaseError, match="opened with read_only=True"):
                write()
        assert s.get_items() == [1]
    assert listing(tmp_path) == before


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="a read-only repository never creates one"):
        SessionRepository(tmp_path / "missing.db", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SessionRepository(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO sessions_dal_migrations VALUES (?, 'x')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError):
        SessionRepository(path, read_only=True)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_dev_null_reads_as_an_empty_database_and_gets_no_journal() -> None:
    with SessionRepository("/dev/null", read_only=True) as repo:
        assert repo.info().users == 0
    assert not os.path.exists("/dev/null-journal")
    assert not os.path.exists("/dev/null-wal")


@pytest.mark.parametrize("read_only", [True, False])
def test_a_directory_is_a_clear_error(tmp_path: Path, read_only: bool) -> None:
    with pytest.raises(DatabaseError, match="is a directory, not a database file"):
        SessionRepository(tmp_path, read_only=read_only)
    assert list(tmp_path.iterdir()) == []


def test_backup_of_a_read_only_repository_is_a_consistent_copy(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice", session_id="s").add_items([1, 2])
    with SessionRepository(path, read_only=True) as repo:
        repo.backup(tmp_path / "copy.db")
        with pytest.raises(ValueError, match="already exists; choose a new name"):
            repo.backup(tmp_path / "copy.db")
        with pytest.raises(TypeError, match="target must be a non-empty str"):
            repo.backup("")
    with SessionRepository(tmp_path / "copy.db", read_only=True) as copy:
        assert copy.get_session("alice", "s").get_items() == [1, 2]  # type: ignore[union-attr]


def test_a_symlink_to_a_live_database_reads_what_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "real.db"
    os.symlink(path, tmp_path / "link.db")
    with SessionRepository(path) as writer:
        writer.create_session("alice")
        writer.create_session("alice")
        with SessionRepository(tmp_path / "link.db", read_only=True) as reader:
            assert reader.count_sessions("alice") == 2


def test_a_reader_follows_writers_that_come_and_go(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    SessionRepository(path).close()
    with SessionRepository(path, read_only=True) as reader:
        for round_ in range(1, 6):
            with SessionRepository(path) as writer:  # opens, writes, checkpoints, closes
                for _ in range(10):
                    writer.create_session("alice").add_items(["x" * 500] * 20)
            assert reader.count_sessions("alice") == 10 * round_
            assert reader.info().sessions == 10 * round_
            assert len(reader.get_sessions("alice")) == 10 * round_


def test_a_copied_database_with_its_wal_but_no_index_is_refused_clearly(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    writer = SessionRepository(live)
    writer.create_session("alice")
    copy = tmp_path / "copy.db"
    copy.write_bytes(live.read_bytes())
    (tmp_path / "copy.db-wal").write_bytes((tmp_path / "live.db-wal").read_bytes())
    writer.close()
    before = listing(tmp_path)
    with pytest.raises(DatabaseError, match="has changes in its -wal file but no -shm"):
        SessionRepository(copy, read_only=True)
    assert listing(tmp_path) == before
    with SessionRepository(copy) as repo:  # as the message says: read-write once
        assert repo.count_sessions("alice") == 1


def test_a_database_with_only_its_shm_left_gets_no_new_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice")
    (tmp_path / "x.db-shm").write_bytes(b"\0" * 32768)  # left by a crashed reader
    before = listing(tmp_path)
    with SessionRepository(path, read_only=True) as repo:
        assert repo.count_sessions("alice") == 1
    assert listing(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("read_only", [True, False])
def test_a_named_pipe_is_refused_without_waiting(tmp_path: Path, read_only: bool) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DatabaseError, match="is not a regular file"):
        SessionRepository(tmp_path / "pipe", read_only=read_only)


def test_a_hot_journal_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessions_dal.backends.sqlite._errors import _raise_translated

    exc = sqlite3.OperationalError("attempt to write a readonly database")
    exc.sqlite_errorcode = 776  # type: ignore[attr-defined]  # SQLITE_READONLY_ROLLBACK
    with pytest.raises(ReadOnlyDatabaseError, match="open it read-write once to recover"):
        _raise_translated(exc, "x.db", 5.0)


def test_a_replaced_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with SessionRepository(path) as app:
        app.create_session("old")
    reader = SessionRepository(path, read_only=True)
    with SessionRepository(tmp_path / "new.db") as new:
        new.create_session("new")
    os.replace(tmp_path / "new.db", path)
    try:
        assert [u.user_id for u in reader.get_users()] == ["new"]
        with SessionRepository(path) as writer:
            writer.create_session("newer")
        assert [u.user_id for u in reader.get_users()] == ["new", "newer"]
    finally:
        reader.close()


def test_a_read_that_saw_the_file_change_is_read_again(tmp_path: Path) -> None:
    from helpers import sqlite_db

    path = tmp_path / "x.db"
    SessionRepository(path).close()
    with SessionRepository(path, read_only=True) as reader:
        attempts: list[int] = []

        def read(conn: sqlite3.Connection) -> int:
            attempts.append(1)
            if len(attempts) == 1:  # a writer changes the file in the middle of the read
                with SessionRepository(path) as writer:
                    writer.create_session("alice")
            count: int = conn.execute("SELECT count(*) FROM agent_user_sessions").fetchone()[0]
            return count

        assert sqlite_db(reader).read(read) == 1
        assert len(attempts) == 2


def test_a_file_that_cannot_be_read_is_a_library_error() -> None:
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("needs /proc/self/mem")
    with pytest.raises(DatabaseError, match="cannot read database '/proc/self/mem'"):
        SessionRepository("/proc/self/mem", read_only=True)
