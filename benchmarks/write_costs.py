"""What each feature adds to one append on SQLite: the raw statements, built up one at a time.

    python benchmarks/write_costs.py [--calls N]

Each line runs the line before it plus one thing, with raw sqlite3 on a file
set up by sessions_dal (WAL, synchronous=NORMAL), the statements taken from
the SQLite store (``sessions_dal.backends.sqlite._sql.SQL``); the last lines
are sessions_dal's own ``add_items``, and the search index's price, paid at
the next search rather than by the append. Medians of ``--calls`` calls, the
variants taking turns call by call. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessions_dal import SessionRepository
from sessions_dal.backends.sqlite._sql import SQL

ITEM = {"role": "user", "content": "Find me a train from Paris to Rome tomorrow morning."}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per line")
    args = parser.parse_args(argv)
    sql = SQL("agent_sessions", "agent_messages")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "costs.db"
        repo = SessionRepository(path)
        session = repo.create_session("alice")
        session.add_items([ITEM])  # openai-agents' row of the session exists
        sid, user = session.session_id, "alice"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")

        def now() -> str:
            return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")

        def tx(*steps: tuple[str, Callable[[], tuple[object, ...]]]) -> Callable[[], None]:
            def call() -> None:
                conn.execute("BEGIN IMMEDIATE")
                for statement, parameters in steps:
                    conn.execute(statement, parameters())
                conn.execute("COMMIT")
            return call

        def text() -> tuple[object, ...]:
            return (sid, json.dumps(ITEM))

        lines: list[tuple[str, Callable[[], None]]] = [
            ("one INSERT of the item (its own transaction)",
             lambda: conn.execute(sql.insert_item, text()) and None),
            ("+ BEGIN IMMEDIATE ... COMMIT", tx((sql.insert_item, text))),
            ("+ openai-agents' session row kept (its updated_at, once a second)",
             tx((sql.upsert_agent_session, lambda: (sid,)), (sql.insert_item, text))),
            ("+ the activity stamp, which also checks the owner",
             tx((sql.upsert_agent_session, lambda: (sid,)), (sql.insert_item, text),
                (sql.touch, lambda: (now(), sid, user)))),
            ("sessions_dal's add_items (checks, JSON, interrupt safety)",
             lambda: session.add_items([ITEM])),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _ in lines}
        for n in range(args.calls):
            for name, call in lines if n % 2 else lines[::-1]:
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
        indexed = session.get_items(None)
        start = time.perf_counter()
        added = repo.update_search_index()
        per_item = (time.perf_counter() - start) / max(added, 1)
        conn.close()
        repo.close()
    print(f"| {args.calls:,} calls each, SQLite {sqlite3.sqlite_version} | median | vs line 1 |")
    print("|---|---:|---:|")
    base = statistics.median(samples[lines[0][0]])
    for name, _ in lines:
        median = statistics.median(samples[name])
        print(f"| {name} | {median * 1e6:.1f} µs | {median / base:.2f}x |")
    print(f"| search index, paid by the next search: per item indexed ({len(indexed):,}) | "
          f"{per_item * 1e6:.1f} µs | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
