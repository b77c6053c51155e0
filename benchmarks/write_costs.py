"""What each feature adds to one append: the raw statements, built up one at a time.

    python benchmarks/write_costs.py [--calls N]
    python benchmarks/write_costs.py --backend postgresql --url URL [--calls N]

Each line runs the line before it plus one thing, with the raw driver on a
database set up by sessions_dal (SQLite: WAL, synchronous=NORMAL), the
statements taken from the backend's store (its ``_sql.SQL``); the last lines
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
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="PostgreSQL: a database to use a new schema of")
    args = parser.parse_args(argv)
    if args.backend == "postgresql":
        if not args.url:
            parser.error("--backend postgresql needs --url")
        return postgresql(args.url, args.calls)
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

        lines: list[tuple[str, Callable[[], object]]] = [
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
        samples = _take_turns(lines, args.calls)
        indexed = session.get_items(None)
        start = time.perf_counter()
        added = repo.update_search_index()
        per_item = (time.perf_counter() - start) / max(added, 1)
        conn.close()
        repo.close()
    _print(f"{args.calls:,} calls each, SQLite {sqlite3.sqlite_version}", lines, samples,
           len(indexed), per_item)
    return 0


def postgresql(url: str, calls: int) -> int:
    """The same build-up on PostgreSQL, in a schema of its own (dropped at the end)."""
    import uuid

    import psycopg

    from sessions_dal.backends.postgres._sql import SQL as PGSQL

    schema = f"write_costs_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        where = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        repo = SessionRepository(where)
        session = repo.create_session("alice")
        session.add_items([ITEM])
        sid, user = session.session_id, "alice"
        sql = PGSQL(schema, "agent_sessions", "agent_messages")
        conn = psycopg.connect(where, autocommit=True)
        stamp = "clock_timestamp()::timestamp"

        def append() -> dict[str, object]:
            return {"now": dt.datetime.now(dt.timezone.utc), "session": sid, "user": user,
                    "texts": json.dumps([json.dumps(ITEM)])}

        def queue_trigger(enabled: bool) -> None:
            conn.execute(f'ALTER TABLE "{schema}".agent_messages '
                         f"{'ENABLE' if enabled else 'DISABLE'} TRIGGER "
                         "sessions_dal_search_on_insert")

        def pipelined() -> None:
            # What add_items sends: BEGIN, the transaction's id and the statement
            # in one round trip, then COMMIT.
            with conn.pipeline():
                conn.execute("BEGIN", prepare=False)
                xid = conn.execute("SELECT txid_current()", prepare=False)
                added = conn.execute(sql.append_owned, append())
            xid.fetchone()
            added.fetchone()
            conn.execute("COMMIT")

        insert = f"{sql.insert_item.rsplit('VALUES', 1)[0]}VALUES (%s, %s, {stamp})"
        lines: list[tuple[str, Callable[[], object]]] = [
            ("one INSERT of the item (autocommit, no trigger)",
             lambda: conn.execute(insert, (sid, json.dumps(ITEM))) and None),
            ("+ owner check, activity stamps, openai-agents' session row (one statement)",
             lambda: conn.execute(sql.append_owned, append()).fetchone() and None),
            ("+ the search queue's trigger",
             lambda: conn.execute(sql.append_owned, append()).fetchone() and None),
            ("+ BEGIN and the transaction's id first, then COMMIT (interrupt safety)",
             pipelined),
            ("sessions_dal's add_items (checks, JSON, pool, signals held)",
             lambda: session.add_items([ITEM])),
        ]
        # Toggling the trigger is DDL: it would be timed with the lines that
        # run without it. Those run in a block of their own instead.
        plain = _take_turns(lines[:2], calls, setup=lambda: queue_trigger(False),
                            teardown=lambda: queue_trigger(True))
        queued = _take_turns(lines[2:], calls)
        indexed = session.get_items(None)
        start = time.perf_counter()
        added = repo.update_search_index()
        per_item = (time.perf_counter() - start) / max(added, 1)
        version = conn.info.server_version
        conn.close()
        repo.close()
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
    _print(f"{calls:,} calls each, PostgreSQL {version // 10000}.{version % 10000}", lines,
           {**plain, **queued}, len(indexed), per_item)
    return 0


def _take_turns(lines: list[tuple[str, Callable[[], object]]], calls: int,
                setup: Callable[[], object] = lambda: None,
                teardown: Callable[[], object] = lambda: None) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name, _ in lines}
    setup()
    try:
        for n in range(calls):
            for name, call in lines if n % 2 else lines[::-1]:
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
    finally:
        teardown()
    return samples


def _print(title: str, lines: list[tuple[str, Callable[[], object]]],
           samples: dict[str, list[float]], indexed: int, per_item: float) -> None:
    print(f"| {title} | median | vs line 1 |")
    print("|---|---:|---:|")
    base = statistics.median(samples[lines[0][0]])
    for name, _ in lines:
        median = statistics.median(samples[name])
        print(f"| {name} | {median * 1e6:.1f} µs | {median / base:.2f}x |")
    print(f"| search index, paid by the next search: per item indexed ({indexed:,}) | "
          f"{per_item * 1e6:.1f} µs | |")


if __name__ == "__main__":
    raise SystemExit(main())
