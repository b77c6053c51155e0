"""SQLite connections are configured once; one runner owns every transaction."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from helpers import dump, sqlite_db

from sessions_dal import SessionRepository
from sessions_dal.backends.sqlite import _opening as opening_module
from sessions_dal.backends.sqlite._errors import _primary_code
from sessions_dal.errors import (
    DatabaseError,
    RepositoryClosedError,
    UnsupportedSQLiteError,
)
from sessions_dal.transfer import export_jsonl


def pragma(repo: SessionRepository, name: str) -> object:
    return sqlite_db(repo).fetchone(f"PRAGMA {name}")[0]


def test_connection_is_configured(repo: SessionRepository) -> None:
    assert pragma(repo, "foreign_keys") == 1
    assert pragma(repo, "journal_mode") == "wal"
    assert pragma(repo, "busy_timeout") == 5000
    assert pragma(repo, "synchronous") == 1  # NORMAL
    assert pragma(repo, "cache_size") == -16 * 1024  # KiB


@pytest.mark.parametrize(("level", "value"), [("FULL", 2), ("normal", 1), ("OFF", 0), ("extra", 3)])
def test_synchronous_option_takes_effect(db_path: Path, level: str, value: int) -> None:
    with SessionRepository(db_path, synchronous=level) as repo:
        assert pragma(repo, "synchronous") == value


def test_busy_timeout_option_takes_effect(db_path: Path) -> None:
    with SessionRepository(db_path, busy_timeout=0.25) as repo:
        assert pragma(repo, "busy_timeout") == 250


def test_connection_never_holds_a_transaction_between_calls(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items([1])
    s.get_items()
    assert not sqlite_db(repo).read(lambda conn: conn.in_transaction)


def test_write_commits_on_success_and_rolls_back_on_any_exception(
    repo: SessionRepository, db_path: Path
) -> None:
    sqlite_db(repo).write(
        lambda conn: conn.execute("INSERT INTO agent_users VALUES ('kept', 'now')"))
    before = dump(db_path)

    def failing_write(conn: sqlite3.Connection, error: BaseException) -> None:
        conn.execute("INSERT INTO agent_users VALUES ('lost', 'now')")
        raise error

    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            sqlite_db(repo).write(failing_write, error)
    assert dump(db_path) == before
    assert not sqlite_db(repo).read(lambda conn: conn.in_transaction)


def test_memory_database_is_one_database_for_the_repository_lifetime(
    memory_repo: SessionRepository,
) -> None:
    s = memory_repo.create_session("alice", metadata={"title": "t"})
    s.add_items([{"a": 1}])
    again = memory_repo.get_session("alice", s.session_id)
    assert again is not None and again.get_items() == [{"a": 1}]
    assert memory_repo.count_sessions("alice") == 1


def test_two_memory_repositories_are_separate() -> None:
    with SessionRepository(":memory:") as one, SessionRepository(":memory:") as two:
        one.create_session("alice")
        assert two.count_sessions("alice") == 0


def test_closed_repository_and_its_sessions_raise_a_clear_error(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice")
        pages = repo.iter_sessions("alice", page_size=1)
    assert repo.closed
    repo.close()  # idempotent
    calls = [
        lambda: repo.create_session("alice"),
        lambda: repo.get_sessions("alice"),
        lambda: repo.count_sessions("alice"),
        lambda: repo.get_session("alice", s.session_id),
        lambda: repo.delete_session("alice", s.session_id),
        lambda: repo.delete_user("alice"),
        lambda: next(pages),
        lambda: s.get_items(),
        lambda: s.add_items([1]),
        lambda: s.pop_item(),
        lambda: s.clear_session(),
    ]
    for call in calls:
        with pytest.raises(RepositoryClosedError, match="closed; open a new SessionRepository"):
            call()
    assert "closed" in repr(repo)


def test_close_releases_the_file(db_path: Path) -> None:
    repo = SessionRepository(db_path)
    repo.create_session("alice")
    repo.close()
    # With every connection closed, SQLite checkpoints and removes the WAL.
    assert not Path(f"{db_path}-wal").exists()


SHARED_THREADS = 8


def test_one_repository_shared_by_eight_threads(repo: SessionRepository) -> None:
    per_thread = 25
    errors: list[BaseException] = []
    start = threading.Barrier(SHARED_THREADS)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                s = repo.create_session(f"user{n % 2}")
                s.add_items([{"thread": n, "i": i}, {"thread": n, "i": i, "second": True}])
                if i % 5 == 0:
                    s.pop_item()
                repo.get_sessions(f"user{n % 2}", limit=5)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(SHARED_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sessions = repo.get_sessions("user0") + repo.get_sessions("user1")
    assert len(sessions) == SHARED_THREADS * per_thread
    item_counts = sorted(len(s.get_items()) for s in sessions)
    assert item_counts.count(1) == SHARED_THREADS * (per_thread // 5)
    assert item_counts.count(2) == SHARED_THREADS * (per_thread - per_thread // 5)


def test_background_thread_and_caller_share_a_session(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    writer = threading.Thread(target=lambda: [s.add_items([i]) for i in range(200)])
    writer.start()
    seen = []
    while writer.is_alive():
        seen.append(len(s.get_items()))
    writer.join()
    assert s.get_items() == list(range(200))
    assert seen == sorted(seen)  # readers see whole commits, in order


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_repository_refuses_use_after_fork(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    pid = os.fork()
    if pid == 0:  # child: must refuse, then leave without running pytest's teardown
        code = 1
        try:
            s.get_items()
        except RepositoryClosedError as exc:
            code = 0 if "after fork()" in str(exc) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert s.get_items() == []  # the parent is unaffected


def test_old_sqlite_is_refused_at_open(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opening_module.sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(UnsupportedSQLiteError, match=r"needs SQLite 3\.35\.0 or newer"):
        SessionRepository(db_path)
    assert not db_path.exists()


def test_missing_directory_names_the_path_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(DatabaseError, match=r"its directory\) exists"):
        SessionRepository(path)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("database is locked", 5),
        ("attempt to write a readonly database", 8),
        ("database or disk is full", 13),
        ("file is not a database", 26),
        ("something else", None),
    ],
)
def test_error_code_falls_back_to_the_message_on_old_pythons(
    message: str, code: int | None
) -> None:
    # Python 3.10's exceptions carry no sqlite_errorcode; these do not either.
    assert _primary_code(sqlite3.OperationalError(message)) == code


class _BlockingOutput(io.StringIO):
    """An export destination that stalls until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def write(self, text: str) -> int:
        self.inside.set()
        self.go_on.wait(30)
        return super().write(text)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
# Python 3.12+ warns that fork() with threads may deadlock: the point of this test.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_is_inside_a_call(memory_repo: SessionRepository) -> None:
    # A :memory: export holds the repository's lock while it writes its output.
    s = memory_repo.create_session("alice")
    out = _BlockingOutput()
    exporter = threading.Thread(target=export_jsonl, args=(memory_repo, out))
    exporter.start()
    assert out.inside.wait(30)
    pid = os.fork()
    if pid == 0:  # child: every use refuses at once, and close() returns
        code = 0
        try:
            for use in (s.get_items, lambda: memory_repo.create_session("bob")):
                try:
                    use()
                    code = 2
                except RepositoryClosedError:
                    pass
            memory_repo.close()
            memory_repo.close()
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    out.go_on.set()
    exporter.join(30)
    if status[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung")
    assert os.waitstatus_to_exitcode(status[1]) == 0
    assert memory_repo.count_sessions("alice") == 1  # the parent carries on


def test_a_relative_path_keeps_naming_the_same_file_after_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "two")
    with SessionRepository("app.db") as elsewhere:
        elsewhere.create_session("mallory")
    monkeypatch.chdir(tmp_path / "one")
    with SessionRepository("app.db") as repo:
        repo.create_session("alice")
        monkeypatch.chdir(tmp_path / "two")
        out = io.StringIO()
        export_jsonl(repo, out)  # reads through a connection opened now
        assert '"user_id": "alice"' in out.getvalue() and "mallory" not in out.getvalue()


def test_a_uri_is_refused_as_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="looks like an SQLite URI"):
        SessionRepository(f"file:{tmp_path}/a.db")
    assert list(tmp_path.iterdir()) == []
