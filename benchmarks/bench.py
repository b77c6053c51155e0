"""Benchmark sessions_dal against the raw driver doing the same work, and openai-agents' peer.

    python benchmarks/bench.py            # default sizes (about 4 minutes on 2 cores)
    python benchmarks/bench.py --quick    # tiny sizes: checks the benchmark still runs
    python benchmarks/bench.py --backend postgresql [--url URL]
                                          # a throwaway server unless --url (or
                                          # $SESSIONS_DAL_BENCH_URL) names one

Every workload runs on fresh databases (PostgreSQL: fresh schemas). "raw" is
the driver (sqlite3, psycopg) doing the same work per call as sessions_dal
(same schema, settings and statements, one transaction per call): the
practical limit. The peer (openai-agents' SQLiteSession or SQLAlchemySession,
if installed) runs with its own defaults, driven from synchronous code through
one event loop, as a sync user must. PostgreSQL's results go to a postgresql/
folder inside --out. Writes RESULTS.md (table, targets, machine,
command), results.json and an SVG plot of W6 to --out (default: ./bench-results,
so a run never overwrites the committed results; --out benchmarks updates them).

The modules beside this one: drivers.py (the implementations and the backend
they run on), workloads.py (what is timed), report.py (what is written).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import report
import workloads
from drivers import PostgresTarget, Result, SQLiteTarget

from sessions_dal import __version__

# True of every run, so written with the results rather than after them.
NOTES = {"sqlite": [
    "- *raw sqlite3* (W1-W3, W5) is the floor: a hand-written app's two tables (openai-agents'",
    "  items table, and sessions by user) and one statement per call. sessions_dal writes",
    "  more per call on purpose: a user row, the ownership row and its indexes (listing by",
    "  creation and by activity), the activity stamp (which also checks the owner), and",
    "  openai-agents' session row; `benchmarks/write_costs.py` prices each of them.",
    "- The search index (schema version 5) is written when it is searched, not when items",
    "  are added: *sessions_dal* (index present and in use) and *sessions_dal, no index*",
    "  (its triggers dropped) write the same rows. W12 searched first, so every item's",
    "  words are erased with it; the no-index run has none to erase.",
    "- SQLiteSession runs with its own defaults (synchronous=FULL in WAL mode, an fsync",
    "  per commit), which is most of its cost on W2; sessions_dal with",
    "  synchronous='FULL' pays the same.",
    "- W4 and W6 by offset grow with the offset, as OFFSET must step over the skipped rows;",
    "  iter_sessions (keyset) stays flat. SQLiteSession cannot list sessions at all.",
    "- Every item call of a Session looks its items up by a key that is the session id only",
    "  while the session is still the handle's owner's (sessions_dal 0.2): one index lookup",
    "  per statement, which raw sqlite3 here does not do.",
    "- W8: SQLite runs one write at a time, so more threads add waiting, not throughput.",
    "- W9 reads the first page by last activity (an index range scan): flat in the user's",
    "  session count. W10's offset costs what it skips: deep offsets step over that many",
    "  index entries, in both. W11 compares fork_session (INSERT ... SELECT inside the",
    "  database) with add_items of the same items, which must encode and send each one.",
    "- W12's raw run executes sessions_dal's own statements (its SQL class) in the same",
    "  batches, including the erasing (each text overwritten before its row is deleted,",
    "  the WAL truncated after each batch): what differs is the library around them.",
], "postgresql": [
    "- Client and server share the machine's 2 cores and talk over TCP on localhost; a",
    "  round trip is 0.1 to 0.2 ms, so per-call times count round trips. *raw psycopg*",
    "  (W1-W3, W5) is the floor: one autocommit statement per call (one round trip).",
    "  sessions_dal's create_session and add_items are one statement each too, but sent",
    "  with BEGIN and a request for the transaction's id (one pipeline), then COMMIT: two",
    "  round trips, so that a COMMIT an interrupt cut off can be settled by asking the",
    "  server about that transaction. That, the triggers (activity stamps, the search",
    "  index, which PostgreSQL still writes with each item) and psycopg's pipeline cost",
    "  are the difference.",
    "- The server runs with fsync off (a throwaway test server): commits cost no disk",
    "  flush here; on a real server every write call pays one.",
    "- SQLAlchemySession goes through SQLAlchemy's async engine and asyncpg, driven from",
    "  synchronous code through one event loop.",
    "- Every item call of a Session looks its items up by a key that is the session id only",
    "  while the session is still the handle's owner's: a subquery on the ownership row,",
    "  which raw psycopg here does not run (most of W3's difference).",
    "- W8: writes to different sessions proceed together, up to the pool's size, until",
    "  the 2 cores (shared with the server) are busy.",
    "- W9 reads the first page by last activity (an index range scan): flat in the user's",
    "  session count. W10's offset costs what it skips. W12's raw run executes",
    "  sessions_dal's own statements (its SQL class) in the same batches.",
]}


def _target(args: argparse.Namespace, folder: Path) -> Any:
    if args.backend == "sqlite":
        return SQLiteTarget(folder)
    url = args.url
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pg_server

        url, origin = pg_server.start()
        if url is None:
            raise SystemExit(f"no PostgreSQL server to measure on: {origin}; pass --url")
    return PostgresTarget(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite",
                        help="the backend to measure (default: sqlite)")
    parser.add_argument("--url", default=os.environ.get("SESSIONS_DAL_BENCH_URL"),
                        help="PostgreSQL server to measure on (default: a throwaway one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="folder for RESULTS.md, results.json and w6.svg (default: "
                             "./bench-results; --out benchmarks updates the committed ones)")
    parser.add_argument("--sessions", type=int, default=2000, help="W1 sessions")
    parser.add_argument("--items", type=int, default=10_000, help="W3 and W5 items")
    parser.add_argument("--total", type=int, default=100_000, help="W4 sessions in the file")
    parser.add_argument("--owned", type=int, default=10_000, help="W4 sessions of the user")
    parser.add_argument("--scale", type=int, nargs="+", default=[1000, 10_000, 100_000],
                        help="W6 sessions per user")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 16],
                        help="W8 threads appending at once")
    parser.add_argument("--prune", type=int, default=100_000, help="W12 sessions pruned")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.items, args.total, args.owned, args.scale = 50, 1000, 2000, 500, [
            100, 1000]
        args.prune = 1000
    calls = 20 if args.quick else 200
    started = time.time()
    results: list[Result] = []
    if args.quick:
        args.threads = [1, 4]
    with tempfile.TemporaryDirectory() as tmp:
        target = _target(args, Path(tmp))
        for step in (
            lambda: workloads.w1_create(target, args.sessions),
            lambda: workloads.w2_add_single(target, 20 if args.quick else 200, 10),
            lambda: workloads.w3_get_latest(target, args.items, 50 if args.quick else 1000),
            lambda: workloads.w4_pages(target, args.owned, args.total, calls),
            lambda: workloads.w5_add_bulk(target, args.items, 2 if args.quick else 15),
            lambda: workloads.w6_scaling(target, args.scale, calls),
            lambda: [workloads.w7_memory(target, max(args.scale))],
            lambda: workloads.w8_threads(target, args.threads, 20 if args.quick else 200),
            lambda: workloads.w9_activity_pages(target, args.scale, calls),
            lambda: workloads.w10_scroll_back(target, args.items, 50 if args.quick else 500),
            lambda: workloads.w11_fork(target, args.items, 2 if args.quick else 10),
            lambda: workloads.w12_prune(target, args.prune),
            lambda: workloads.w13_compaction(target, args.items, 2 if args.quick else 10,
                                             calls),
        ):
            results += step()
            print(f"  {results[-1].workload} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)
        machine = (f"{platform.machine()}, {platform.system()}, Python "
                   f"{platform.python_version()}, {target.describe()}, "
                   f"sessions_dal {__version__}")
        target.close()
    command = ("python benchmarks/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
               ).strip()
    out = args.out / "postgresql" if args.backend == "postgresql" else args.out
    text = report.write(out, results, target=target, machine=machine, command=command,
                        seconds=time.time() - started, notes=NOTES[args.backend])
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
