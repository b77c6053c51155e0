"""Benchmark sessions_dal against the raw driver doing the same work, and openai-agents' peer.

    python benchmarks/bench.py            # default sizes (about a minute on 2 cores)
    python benchmarks/bench.py --quick    # tiny sizes: checks the benchmark still runs

Every workload runs on fresh databases. "raw" is the driver (sqlite3) doing the
same work per call as sessions_dal (same schema and settings, one transaction
per call): the practical limit. The peer (openai-agents' SQLiteSession, if
installed) runs with its own defaults, driven from synchronous code through one
event loop, as a sync user must. Writes RESULTS.md (table, targets, machine,
command), results.json and an SVG plot of W6 to --out (default: ./bench-results,
so a run never overwrites the committed results; --out benchmarks updates them).

The modules beside this one: drivers.py (the implementations and the backend
they run on), workloads.py (what is timed), report.py (what is written).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import report
import workloads
from drivers import Result, SQLiteTarget

from sessions_dal import __version__

# True of every run, so written with the results rather than after them.
NOTES = [
    "- W5 against SQLiteSession is a tie, and no claim is made either way. One call that",
    "  inserts 10,000 rows is bound by SQLite's own per-row work, the same in both;",
    "  sessions_dal also checks that every item is strict JSON and enforces foreign keys,",
    "  which SQLiteSession does not. Single samples vary about twofold on a shared machine",
    "  (a WAL checkpoint lands on whichever call crosses 1,000 pages), more than the",
    "  medians differ: compare the minimums in results.json.",
    "- SQLiteSession runs with its own defaults (synchronous=FULL in WAL mode, an fsync",
    "  per commit), which is most of its cost on W2; sessions_dal with",
    "  synchronous='FULL' pays the same.",
    "- W4 and W6 by offset grow with the offset, as OFFSET must step over the skipped rows;",
    "  iter_sessions (keyset) stays flat. SQLiteSession cannot list sessions at all.",
    "- Every item call of a Session looks its items up by a key that is the session id only",
    "  while the session is still the handle's owner's (sessions_dal 0.2): one index lookup",
    "  per statement, which raw sqlite3 here does not do.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite"], default="sqlite",
                        help="the backend to measure (default: sqlite)")
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
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.items, args.total, args.owned, args.scale = 50, 1000, 2000, 500, [
            100, 1000]
    calls = 20 if args.quick else 200
    started = time.time()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        target = SQLiteTarget(Path(tmp))
        for step in (
            lambda: workloads.w1_create(target, args.sessions),
            lambda: workloads.w2_add_single(target, 20 if args.quick else 200, 10),
            lambda: workloads.w3_get_latest(target, args.items, 50 if args.quick else 1000),
            lambda: workloads.w4_pages(target, args.owned, args.total, calls),
            lambda: workloads.w5_add_bulk(target, args.items, 2 if args.quick else 15),
            lambda: workloads.w6_scaling(target, args.scale, calls),
            lambda: [workloads.w7_memory(target, max(args.scale))],
        ):
            results += step()
            print(f"  {results[-1].workload} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)
        machine = (f"{platform.machine()}, {platform.system()}, Python "
                   f"{platform.python_version()}, {target.describe()}, "
                   f"sessions_dal {__version__}")
    command = ("python benchmarks/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
               ).strip()
    text = report.write(args.out, results, target=target, machine=machine, command=command,
                        seconds=time.time() - started, notes=NOTES)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
