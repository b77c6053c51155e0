"""Reliability: concurrency, crashes, faults and isolation, with bounded defaults.

Longer runs: SESSIONS_DAL_STRESS_SECONDS=60 SESSIONS_DAL_KILLS=200 python -m pytest
tests/test_reliability.py. docs/reliability.md states the figures below; a test
checks that it does, so the report cannot drift from the code.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import dump, sqlite_db
from reliability_workers import stress_process

import sessions_dal
from sessions_dal import Session, SessionRepository
from sessions_dal.errors import (
    DatabaseError,
    DatabaseLockedError,
    DiskFullError,
    ReadOnlyDatabaseError,
    SessionExistsError,
    SessionNotFoundError,
    SessionOwnedError,
)
from sessions_dal.transfer import export_jsonl

PROCESSES = 4
THREADS_PER_PROCESS = 2
STRESS_SECONDS = float(os.environ.get("SESSIONS_DAL_STRESS_SECONDS", "3"))
MIN_OPERATIONS = 2000  # calls the run must make (each thread makes at least 300)
KILLS = int(os.environ.get("SESSIONS_DAL_KILLS", "20"))
ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "reliability_workers.py"


def integrity(path: Path) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return (conn.execute("PRAGMA integrity_check").fetchall(),
                conn.execute("PRAGMA foreign_key_check").fetchall())
    finally:
        conn.close()


# -- 1. concurrency -----------------------------------------------------------------


def test_processes_and_threads_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "stress.db"
    SessionRepository(path).close()
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"proc{n}.json" for n in range(PROCESSES)]
    procs = [ctx.Process(target=stress_process,
                         args=(str(path), n, THREADS_PER_PROCESS, STRESS_SECONDS, str(outs[n])))
             for n in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(STRESS_SECONDS + 120)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    reports = [json.loads(out.read_text()) for out in outs]
    errors = [e for r in reports for e in r["errors"]]
    assert errors == []  # no "database is locked", no lost or wrong read, in any thread
    operations = sum(r["ops"] for r in reports)
    assert operations >= MIN_OPERATIONS
    expected = {sid: s for r in reports for sid, s in r["sessions"].items()}
    with SessionRepository(path) as repo:
        for session_id, state in expected.items():
            found = repo.find_session(session_id)
            if state["user"] is None:
                assert found is None, f"deleted session {session_id} came back"
            else:
                assert found is not None and found.user_id == state["user"]
                assert found.get_items() == state["items"]
        live = {sid for sid, s in expected.items() if s["user"] is not None}
        assert repo.info().sessions == len(live)  # nothing extra, nothing twice
        assert repo.check() == []
    assert integrity(path) == ([("ok",)], [])


# -- 2. crashes ---------------------------------------------------------------------


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    SessionRepository(path).close()
    rng = random.Random(2026)
    acked_sessions: set[str] = set()
    acked_batches: dict[str, int] = {}
    env = {**os.environ, "PYTHONPATH": str(Path(sessions_dal.__file__).parent.parent)}
    for round_id in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WORKERS), "crash", str(path), str(round_id)],
                                stdout=subprocess.PIPE, text=True, env=env)
        # Wait for the interpreter to start (slow on a loaded machine, and
        # slower measured by coverage), then kill: some rounds die while opening.
        assert proc.stdout is not None and proc.stdout.readline() == "R\n"
        time.sleep(rng.random() * 0.35)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        for line in out.splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # cut mid-line: not acknowledged
            kind, *rest = line.split()
            if kind == "S":
                acked_sessions.add(rest[0])
            else:
                acked_batches[rest[1]] = int(rest[2])
        assert integrity(path) == ([("ok",)], [])
    assert len(acked_batches) > KILLS  # the writer got real work done between kills
    with SessionRepository(path) as repo:
        stored: dict[str, list[dict[str, Any]]] = {}
        for s in repo.iter_sessions("crash"):
            for item in s.get_items():
                stored.setdefault(item["batch"], []).append(item)
        assert acked_sessions <= {s.session_id for s in repo.iter_sessions("crash")}
    for tag, size in acked_batches.items():
        assert len(stored.get(tag, [])) == size, f"acknowledged batch {tag} is incomplete"
    for tag, items in stored.items():  # all of an add_items or none, never part
        assert len(items) == items[0]["size"], f"batch {tag} is half applied"
        assert [i["i"] for i in items] == list(range(len(items)))


# -- 3. faults ----------------------------------------------------------------------


@contextmanager
def read_only(target: Path) -> Iterator[None]:
    """Make a file or folder unwritable, even for root (which ignores permission bits)."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            yield
        finally:
            target.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(target)], capture_output=True).returncode != 0:
        pytest.skip("running as root without a working chattr: cannot make a file read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


def fault_disk_full(path: Path) -> None:
    with SessionRepository(path) as repo:
        s = repo.create_session("alice")
        s.add_items([{"n": 1}])
        before = dump(path)
        pages = sqlite_db(repo).fetchone("PRAGMA page_count")[0]
        sqlite_db(repo).fetchone(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DiskFullError, match=r"is full .* nothing was written"):
            s.add_items([{"big": "x" * 4000}] * 100)
        assert s.get_items() == [{"n": 1}]
        assert dump(path) == before
        sqlite_db(repo).fetchone("PRAGMA max_page_count = 1073741823")
        s.add_items([{"big": "x" * 4000}] * 100)  # works again
        assert s.count_items() == 101


def fault_read_only_file(path: Path) -> None:
    with SessionRepository(path) as repo:
        repo.create_session("alice").add_items([{"n": 1}])
    before = dump(path)
    with read_only(path):
        # Refused at open, naming the way to read it: SQLite would open it
        # read-only and leave -wal/-shm files it cannot remove, and every
        # write would fail anyway.
        with pytest.raises(ReadOnlyDatabaseError, match="read_only=True"):
            SessionRepository(path)
        with SessionRepository(path, read_only=True) as reader:
            assert reader.get_sessions("alice")[0].get_items() == [{"n": 1}]
    assert dump(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with SessionRepository(path) as repo:  # once writable again
        repo.get_sessions("alice")[0].add_items([{"n": 2}])


def fault_read_only_directory(path: Path) -> None:
    with SessionRepository(path) as repo:
        repo.create_session("alice").add_items([{"n": 1}])
    before = dump(path)
    with read_only(path.parent):
        with pytest.raises(DatabaseError, match=r"to write, write it and its directory"):
            SessionRepository(path)
        with pytest.raises(DatabaseError, match="its directory"):
            SessionRepository(path.parent / "new.db")
    assert dump(path) == before
    with SessionRepository(path) as repo:  # works again once the folder is writable
        repo.create_session("bob")
        assert repo.check() == []


def fault_lock_past_timeout(path: Path) -> None:
    with SessionRepository(path, busy_timeout=0.2) as repo:
        s = repo.create_session("alice")
        before = dump(path)
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(DatabaseLockedError, match=r"locked: .* busy_timeout=0\.2s"):
                s.add_items([{"n": 1}])
            with pytest.raises(DatabaseLockedError):
                repo.create_session("bob")
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        assert dump(path) == before
        s.add_items([{"n": 1}])  # works again once the lock is released
        assert s.get_items() == [{"n": 1}]


FAULTS: dict[str, Callable[[Path], None]] = {
    "disk full (max_page_count)": fault_disk_full,
    "read-only file": fault_read_only_file,
    "read-only directory": fault_read_only_directory,
    "lock held past the busy timeout": fault_lock_past_timeout,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_gives_a_library_error_loses_nothing_and_recovers(tmp_path: Path, fault: str
                                                                ) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    FAULTS[fault](folder / "f.db")
    assert integrity(folder / "f.db") == ([("ok",)], [])


# -- 5. isolation ---------------------------------------------------------------------


def isolation_calls(repo: SessionRepository, a_id: str, stale: Session
                    ) -> dict[str, Callable[[], None]]:
    """Attempts by bob on alice's session; ``stale`` is bob's handle of a deleted
    session of his whose id alice has since taken."""

    def expect(error: type[Exception], call: Callable[[], object]) -> Callable[[], None]:
        def check() -> None:
            with pytest.raises(error):
                call()
        return check

    def equal(expected: object, call: Callable[[], object]) -> Callable[[], None]:
        def check() -> None:
            assert call() == expected
        return check

    return {
        "read: get_session": equal(None, lambda: repo.get_session("bob", a_id)),
        "list: get_sessions": equal([], lambda: repo.get_sessions("bob")),
        "list: iter_sessions": equal([], lambda: list(repo.iter_sessions("bob"))),
        "count: count_sessions": equal(0, lambda: repo.count_sessions("bob")),
        "change: update_metadata": expect(
            SessionNotFoundError, lambda: repo.update_metadata("bob", a_id, {"t": "x"})),
        "change: update_metadata replace": expect(
            SessionNotFoundError,
            lambda: repo.update_metadata("bob", a_id, {}, replace=True)),
        "change: create_session with A's id": expect(
            SessionExistsError, lambda: repo.create_session("bob", session_id=a_id)),
        "claim: claim_session": expect(SessionOwnedError, lambda: repo.claim_session("bob", a_id)),
        "claim: claim_sessions": expect(
            SessionOwnedError, lambda: repo.claim_sessions("bob", [a_id])),
        "delete: delete_session": equal(False, lambda: repo.delete_session("bob", a_id)),
        "delete: delete_user": equal(0, lambda: repo.delete_user("bob").sessions),
        "read: unowned lookup": equal(None, lambda: repo.get_unowned_session(a_id)),
        "list: unowned listing": equal([], lambda: repo.get_unowned_sessions()),
        "read: export of B": equal("", lambda: export_of(repo, "bob")),
        "stale handle: get_items": equal([], stale.get_items),
        "stale handle: count_items": equal(0, stale.count_items),
        "stale handle: add_items": expect(SessionNotFoundError, lambda: stale.add_items([1])),
        "stale handle: pop_item": expect(SessionNotFoundError, stale.pop_item),
        "stale handle: clear_session": expect(SessionNotFoundError, stale.clear_session),
        "stale handle: compact": expect(SessionNotFoundError, lambda: stale.compact([1])),
        "stale handle: iter_history": equal([], lambda: list(stale.iter_history())),
    }


def export_of(repo: SessionRepository, user: str) -> str:
    import io

    out = io.StringIO()
    export_jsonl(repo, out, user_id=user)
    return "".join(line + "\n" for line in out.getvalue().splitlines()
                   if json.loads(line)["type"] not in ("export", "user", "end"))


def _isolation_names() -> list[str]:
    with SessionRepository(":memory:") as repo:
        return list(isolation_calls(repo, "x", repo.create_session("x")))


@pytest.mark.parametrize("attempt", _isolation_names())
def test_user_b_cannot_touch_user_a(db_path: Path, attempt: str) -> None:
    with SessionRepository(db_path) as repo:
        stale = repo.create_session("bob", session_id="reused")  # B's, then deleted
        repo.delete_session("bob", "reused")
        a = repo.create_session("alice", session_id="reused", metadata={"title": "A's"})
        a.add_items([{"secret": "A's history"}])
        a.compact([{"secret": "A"}])  # a history to keep from B too
        repo.create_session("bob")  # B exists and has a session of their own
        repo.delete_session("bob", repo.get_sessions("bob")[0].session_id)
        before = [line for line in dump(db_path) if "alice" in line or a.session_id in line]
        isolation_calls(repo, a.session_id, stale)[attempt]()
        after = [line for line in dump(db_path) if "alice" in line or a.session_id in line]
        assert after == before
        assert repo.get_session("alice", a.session_id).get_items() == [  # type: ignore[union-attr]
            {"secret": "A"}]


# -- 7. the report ---------------------------------------------------------------------


def report_figures() -> list[tuple[str, str]]:
    from bad_inputs import CASES
    from test_connection import SHARED_THREADS
    from test_interrupts import CALLS as INTERRUPTED

    return [
        ("writer processes", str(PROCESSES)),
        ("threads per process (one shared repository)", str(THREADS_PER_PROCESS)),
        ("seconds of mixed reads and writes (bounded run)", f"{STRESS_SECONDS:g}"),
        ("acknowledged operations, at least (asserted)", str(MIN_OPERATIONS)),
        ("threads sharing one repository (test_connection)", str(SHARED_THREADS)),
        ("SIGKILLs of a writer", str(KILLS)),
        ("fault cases", str(len(FAULTS))),
        ("bad-input cases", str(len(CASES))),
        ("isolation attempts by another user", str(len(_isolation_names()))),
        ("calls interrupted at every moment (test_interrupts)", str(len(INTERRUPTED))),
    ]


def test_reliability_report_states_the_figures_the_tests_use() -> None:
    if "SESSIONS_DAL_STRESS_SECONDS" in os.environ or "SESSIONS_DAL_KILLS" in os.environ:
        pytest.skip("longer run: the report documents the bounded defaults")
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = "\n".join(f"| {name} | {value} |" for name, value in report_figures())
    assert table in text, f"docs/reliability.md must contain this table:\n\n{table}"
    for fault in FAULTS:
        assert fault in text
