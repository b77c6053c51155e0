"""Code run in child processes by test_reliability.py (importable, so spawn can find it)."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sessions_dal import SessionRepository

MIN_OPS_PER_THREAD = 300
"""Each thread goes on past ``seconds`` until it has made this many calls (a loaded
machine then takes longer, not a smaller sample), for at most a minute more."""


def stress_process(path: str, proc: int, threads: int, seconds: float, out: str) -> None:
    """Write and read from ``threads`` threads for ``seconds``; record every acknowledged write.

    Each thread owns its sessions, so it knows exactly what they must hold and
    checks every read against that at once. The log is written to ``out``.
    """
    report: dict[str, Any] = {"ops": 0, "errors": [], "sessions": {}}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(repo: SessionRepository, thread: int) -> None:
        rng = random.Random(proc * 1000 + thread)
        mine: dict[str, tuple[str, list[Any]]] = {}  # session_id -> (user, items)
        gone: set[str] = set()
        ops = 0
        try:
            while (time.monotonic() < deadline or ops < MIN_OPS_PER_THREAD) and (
                    time.monotonic() < deadline + 60):
                ops += 1
                roll = rng.random()
                user = f"p{proc}t{thread}u{rng.randrange(3)}"
                if roll < 0.15 or not mine:
                    s = repo.create_session(user)
                    mine[s.session_id] = (user, [])
                    continue
                session_id = rng.choice(sorted(mine))
                owner, items = mine[session_id]
                session = repo.get_session(owner, session_id)
                assert session is not None, f"lost session {session_id}"
                if roll < 0.55:
                    new = [{"tok": f"{proc}.{thread}.{ops}.{k}"} for k in range(rng.randint(1, 3))]
                    session.add_items(new)
                    items.extend(new)
                elif roll < 0.70:
                    popped = session.pop_item()
                    assert popped == (items.pop() if items else None), "pop mismatch"
                elif roll < 0.75:
                    assert repo.delete_session(owner, session_id) is True
                    del mine[session_id]
                    gone.add(session_id)
                else:  # reads, checked against what this thread knows
                    assert session.get_items() == items, f"items differ in {session_id}"
                    listed = {s.session_id for s in repo.get_sessions(owner)}
                    assert {sid for sid, (u, _) in mine.items() if u == owner} == listed
        except BaseException as exc:  # reported to the parent, which fails the test
            with lock:
                report["errors"].append(f"thread {thread}: {type(exc).__name__}: {exc}")
        with lock:
            report["ops"] += ops
            for session_id, (user, items) in mine.items():
                report["sessions"][session_id] = {"user": user, "items": items}
            for session_id in gone:
                report["sessions"][session_id] = {"user": None, "items": None}

    with SessionRepository(path) as shared:
        pool = [threading.Thread(target=worker, args=(shared, t)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    Path(out).write_text(json.dumps(report))


def crash_writer(path: str, round_id: int) -> None:
    """Write until killed, printing one line per acknowledged (committed) write."""
    rng = random.Random(round_id)
    print("R", flush=True)  # started: the killer's clock starts here, not at exec
    with SessionRepository(path) as repo:
        batch = 0
        while True:
            session = repo.create_session("crash")
            print(f"S {session.session_id}", flush=True)
            for _ in range(5):
                batch += 1
                size = rng.randint(1, 40)
                tag = f"{round_id}-{batch}"
                session.add_items([{"batch": tag, "size": size, "i": i, "pad": "x" * 200}
                                   for i in range(size)])
                print(f"A {session.session_id} {tag} {size}", flush=True)


if __name__ == "__main__":  # python reliability_workers.py crash PATH ROUND
    if sys.argv[1] == "crash":
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        crash_writer(sys.argv[2], int(sys.argv[3]))
