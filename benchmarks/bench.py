"""Benchmark sessions_dal against raw sqlite3 and openai-agents' SQLiteSession.

    python benchmarks/bench.py            # default sizes (about a minute on 2 cores)
    python benchmarks/bench.py --quick    # tiny sizes: checks the benchmark still runs

Every workload runs on fresh files in a temporary folder. "raw" is hand-written
sqlite3 doing the same work per call as sessions_dal (same schema, WAL,
synchronous=NORMAL, one transaction per call): the practical limit.
"SQLiteSession" (if openai-agents is installed) runs with its own defaults,
driven from synchronous code through one event loop, as a sync user must.
Writes RESULTS.md (table, targets, machine, command), results.json and an SVG
plot of W6 to --out (default: ./bench-results, so a run never overwrites the
committed results; pass --out benchmarks to update them).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessions_dal.connection import CACHE_KIB

from sessions_dal import SessionRepository, __version__
from sessions_dal.session import utc_now

try:
    import agents as _agents
    from agents import SQLiteSession
except ImportError:  # the peer is optional
    SQLiteSession = None
    _agents = None

ITEM = {"role": "user", "content": "Find me a train from Paris to Rome tomorrow morning."}


@dataclass
class Result:
    workload: str
    operation: str
    impl: str
    samples: list[float]  # seconds per operation
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(samples: list[float], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, append its duration in seconds to ``samples``, return its value."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    samples.append(time.perf_counter() - start)
    return value


# -- raw sqlite3: the same statements sessions_dal runs, without the library ----------


class Raw:
    def __init__(self, path: Path) -> None:
        SessionRepository(path).close()  # the same schema
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # as sessions_dal configures it
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA journal_mode = WAL")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def create_session(self, user: str) -> str:
        session_id, now = str(uuid.uuid4()), utc_now()
        with self.tx() as c:
            c.execute("INSERT INTO agent_users (user_id, created_at) VALUES (?, ?) "
                      "ON CONFLICT (user_id) DO NOTHING", (user, now))
            c.execute("INSERT INTO agent_sessions (session_id) VALUES (?)", (session_id,))
            c.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, "
                      "created_at, updated_at) VALUES (?, ?, '{}', ?, ?)",
                      (session_id, user, now, now))
        return session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        texts = [(session_id, json.dumps(item)) for item in items]
        with self.tx() as c:
            c.execute("UPDATE agent_user_sessions SET updated_at = ? WHERE session_id = ?",
                      (utc_now(), session_id))
            c.execute("INSERT INTO agent_sessions (session_id) VALUES (?) ON CONFLICT "
                      "(session_id) DO UPDATE SET updated_at = CURRENT_TIMESTAMP", (session_id,))
            c.executemany("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                          texts)

    def get_items(self, session_id: str, limit: int) -> list[Any]:
        rows = self.conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? "
            "ORDER BY id DESC LIMIT ?", (session_id, limit)).fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]

    def page(self, user: str, limit: int, offset: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT session_id, user_id, metadata, created_at, updated_at "
            "FROM agent_user_sessions WHERE user_id = ? ORDER BY created_at DESC, seq DESC "
            "LIMIT ? OFFSET ?", (user, limit, offset)).fetchall()

    def close(self) -> None:
        self.conn.close()


class Ours:
    def __init__(self, path: Path) -> None:
        self.repo = SessionRepository(path)
        self.handles: dict[str, Any] = {}

    def create_session(self, user: str) -> str:
        s = self.repo.create_session(user)
        self.handles[s.session_id] = s
        return s.session_id

    def add_items(self, session_id: str, items: list[Any]) -> None:
        self.handles[session_id].add_items(items)

    def get_items(self, session_id: str, limit: int) -> list[Any]:
        return self.handles[session_id].get_items(limit)  # type: ignore[no-any-return]

    def page(self, user: str, limit: int, offset: int) -> list[Any]:
        return self.repo.get_sessions(user, limit=limit, offset=offset)

    def close(self) -> None:
        self.repo.close()


class Peer:
    """openai-agents' SQLiteSession, from synchronous code: one loop, one call at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[str, Any] = {}

    def session(self, session_id: str) -> Any:
        if session_id not in self.sessions:
            self.sessions[session_id] = SQLiteSession(session_id, self.path)
        return self.sessions[session_id]

    def add_items(self, session_id: str, items: list[Any]) -> None:
        self.loop.run_until_complete(self.session(session_id).add_items(items))

    def get_items(self, session_id: str, limit: int) -> list[Any]:
        return self.loop.run_until_complete(  # type: ignore[no-any-return]
            self.session(session_id).get_items(limit))

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.loop.close()


def impls(folder: Path, name: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [
        ("sessions_dal", Ours(folder / f"{name}-ours.db")),
        ("raw sqlite3", Raw(folder / f"{name}-raw.db")),
    ]
    if SQLiteSession is not None:
        found.append(("SQLiteSession", Peer(folder / f"{name}-peer.db")))
    return found


# -- workloads ---------------------------------------------------------------------


def round_robin(runners: list[tuple[str, Any]], rounds: int,
                call: Callable[[str, Any, int], None]) -> dict[str, list[float]]:
    """Time ``call(name, impl, n)`` for n in range(rounds), alternating implementations.

    On a shared machine a slow spell then hits every implementation alike,
    instead of whichever happened to run during it.
    """
    samples: dict[str, list[float]] = {name: [] for name, _ in runners}
    for n in range(rounds):
        for name, impl in runners if n % 2 else runners[::-1]:
            timed(samples[name], call, name, impl, n)
    return samples


def w1_create(folder: Path, n: int) -> list[Result]:
    runners = [(name, impl) for name, impl in impls(folder, "w1") if name != "SQLiteSession"]
    samples = round_robin(runners, n, lambda _, impl, i: impl.create_session(f"user{i % 50}"))
    for _, impl in runners:
        impl.close()
    out = [Result("W1", "create_session", name, samples[name]) for name, _ in runners]
    if SQLiteSession is not None:
        out.append(Result("W1", "create_session", "SQLiteSession", [],
                          "no equivalent: SQLiteSession has no users and no create call"))
    return out


def w2_add_single(folder: Path, sessions: int, per_session: int) -> list[Result]:
    runners = impls(folder, "w2")
    ids = {name: [impl.create_session("alice") if name != "SQLiteSession" else
                  str(uuid.uuid4()) for _ in range(sessions)] for name, impl in runners}
    samples = round_robin(runners, sessions * per_session,
                          lambda name, impl, n: impl.add_items(ids[name][n % sessions], [ITEM]))
    for _, impl in runners:
        impl.close()
    return [Result("W2", "add_items([1 item])", name, samples[name]) for name, _ in runners]


def w3_get_latest(folder: Path, items: int, calls: int) -> list[Result]:
    runners = impls(folder, "w3")
    ids = {}
    for name, impl in runners:
        ids[name] = impl.create_session("alice") if name != "SQLiteSession" else "s"
        for start in range(0, items, 1000):
            impl.add_items(ids[name], [dict(ITEM, n=i) for i in range(start, start + 1000)])
    for name, impl in runners:
        got = impl.get_items(ids[name], 20)
        assert len(got) == 20 and got[-1]["n"] == items - 1
    samples = round_robin(runners, calls, lambda name, impl, _: impl.get_items(ids[name], 20))
    for _, impl in runners:
        impl.close()
    return [Result("W3", "get_items(limit=20)", name, samples[name]) for name, _ in runners]


def w5_add_bulk(folder: Path, items: int, repeats: int) -> list[Result]:
    batch = [dict(ITEM, n=i) for i in range(items)]
    runners = impls(folder, "w5")
    fresh = {name: [impl.create_session("alice") if name != "SQLiteSession" else
                    str(uuid.uuid4()) for _ in range(repeats)] for name, impl in runners}
    samples = round_robin(runners, repeats,
                          lambda name, impl, n: impl.add_items(fresh[name][n], batch))
    for _, impl in runners:
        impl.close()
    return [Result("W5", f"add_items([{items} items])", name, samples[name])
            for name, _ in runners]


def fill_users(path: Path, owned: dict[str, int], total: int) -> None:
    """Bulk-load sessions (users' counts in ``owned``, the rest spread over others)."""
    SessionRepository(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    rows: list[tuple[str, str, str]] = []
    for user, count in owned.items():
        rows += [(user, f"{user}-{i}", "") for i in range(count)]
    rest = total - len(rows)
    rows += [(f"other{i % 1000}", f"other-{i}", "") for i in range(max(0, rest))]
    conn.executemany("INSERT OR IGNORE INTO agent_users VALUES (?, ?)",
                     [(u, base.isoformat()) for u in {r[0] for r in rows}])
    conn.executemany("INSERT INTO agent_sessions (session_id) VALUES (?)", [(r[1],) for r in rows])
    conn.executemany(
        "INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, updated_at)"
        " VALUES (?, ?, '{}', ?, ?)",
        [(sid, user, stamp, stamp) for n, (user, sid, _) in enumerate(rows)
         for stamp in [(base + dt.timedelta(seconds=n)).isoformat(timespec="microseconds")]])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def w4_pages(folder: Path, owned: int, total: int, calls: int) -> list[Result]:
    path = folder / "w4.db"
    fill_users(path, {"big": owned}, total)
    out = []
    last = owned - 50
    for impl_name, make in (("sessions_dal", Ours), ("raw sqlite3", Raw)):
        impl = make.__new__(make)
        if make is Ours:
            impl.repo = SessionRepository(path)
        else:
            impl.conn = sqlite3.connect(path, isolation_level=None)
        for label, offset in (("offset 0", 0), ("last page", last)):
            samples: list[float] = []
            for _ in range(calls):
                page = timed(samples, impl.page, "big", 50, offset)
            assert len(page) == 50
            out.append(Result("W4", f"page of 50, {label} ({owned:,} of {total:,})",
                              impl_name, samples))
        impl.close()
    out += [Result("W4", f"page of 50, {label} ({owned:,} of {total:,})", "SQLiteSession", [],
                   "no equivalent: SQLiteSession cannot list sessions")
            for label in ("offset 0", "last page")] if SQLiteSession is not None else []
    return out


def w6_scaling(folder: Path, sizes: list[int], calls: int) -> list[Result]:
    path = folder / "w6.db"
    fill_users(path, {f"u{n}": n for n in sizes}, sum(sizes))
    out = []
    with SessionRepository(path) as repo:
        for n in sizes:
            user = f"u{n}"
            samples: list[float] = []
            for k in range(calls):  # offsets spread over the whole listing
                offset = (n - 50) * k // max(1, calls - 1)
                timed(samples, repo.get_sessions, user, limit=50, offset=offset)
            out.append(Result("W6", f"by offset, {n:,} sessions", "sessions_dal", samples))
            keyset: list[float] = []
            # One sample per page (the time to get the next 50), walking the whole
            # listing as often as needed for as many samples as by offset: a small
            # listing alone has too few pages for a steady median.
            while len(keyset) < calls:
                pages = repo.iter_sessions(user, page_size=50)
                while True:
                    start = time.perf_counter()
                    batch = [s for _, s in zip(range(50), pages, strict=False)]
                    if not batch:
                        break
                    keyset.append(time.perf_counter() - start)
            out.append(Result("W6", f"by keyset, {n:,} sessions", "sessions_dal", keyset))
    return out


def w7_memory(folder: Path, n: int) -> Result:
    path = folder / "w7.db"
    fill_users(path, {"big": n}, n)
    with SessionRepository(path) as repo:
        gc.collect()
        tracemalloc.start()
        count = sum(1 for _ in repo.iter_sessions("big", page_size=100))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert count == n
    return Result("W7", f"peak traced memory iterating {n:,} sessions (MB)", "sessions_dal",
                  [peak / 1e6])


# -- report ----------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def table(results: list[Result]) -> str:
    by_key = {(r.workload, r.operation, r.impl): r for r in results}
    lines = ["| workload | operation | implementation | median | p95 | ops/s | vs raw "
             "| vs SQLiteSession |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.workload == "W7":
            lines.append(f"| W7 | {r.operation} | {r.impl} | {r.samples[0]:.2f} MB | | | | |")
            continue
        if not r.samples:
            lines.append(f"| {r.workload} | {r.operation} | {r.impl} | n/a | n/a | n/a | n/a "
                         f"| {r.note} |")
            continue
        ratios = []
        for other in ("raw sqlite3", "SQLiteSession"):
            peer = by_key.get((r.workload, r.operation, other))
            ratios.append(f"{r.median / peer.median:.2f}x" if peer and peer.samples and
                          r.impl != other else "")
        lines.append(f"| {r.workload} | {r.operation} | {r.impl} | {fmt_time(r.median)} | "
                     f"{fmt_time(r.p95)} | {1 / r.median:,.0f} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def targets(results: list[Result]) -> list[tuple[str, bool, str]]:
    get = {(r.workload, r.operation, r.impl): r for r in results}
    checks: list[tuple[str, bool, str]] = []
    for r in results:
        if r.impl != "sessions_dal" or not r.samples or r.workload == "W7":
            continue
        raw = get.get((r.workload, r.operation, "raw sqlite3"))
        if raw and r.workload in ("W1", "W2", "W3", "W5"):
            ratio = r.median / raw.median
            checks.append((f"{r.workload} {r.operation} <= 1.3x raw", ratio <= 1.3,
                           f"{ratio:.2f}x"))
        peer = get.get((r.workload, r.operation, "SQLiteSession"))
        if peer and peer.samples:
            ratio = r.median / peer.median
            checks.append((f"{r.workload} {r.operation} faster than SQLiteSession", ratio < 1,
                           f"{ratio:.2f}x"))
    keyset = [r for r in results if r.workload == "W6" and "keyset" in r.operation]
    if len(keyset) >= 2:
        ratio = keyset[-1].median / keyset[0].median
        checks.append((f"keyset page at {keyset[-1].operation.split(', ')[1]} <= 1.5x at "
                       f"{keyset[0].operation.split(', ')[1]}", ratio <= 1.5, f"{ratio:.2f}x"))
    for r in results:
        if r.workload == "W7":
            checks.append(("W7 peak memory < 10 MB", r.samples[0] < 10, f"{r.samples[0]:.2f} MB"))
    return checks


def svg_plot(results: list[Result]) -> str:
    """Median page latency against sessions owned, by offset and by keyset (log-log)."""
    import math

    series: dict[str, list[tuple[int, float]]] = {"by offset": [], "by keyset": []}
    for r in results:
        if r.workload == "W6":
            kind, size = r.operation.split(", ")
            series[kind].append((int(size.split()[0].replace(",", "")), r.median * 1e3))
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    w, h, pad = 640, 400, 70
    xs = [math.log10(p[0]) for p in points]
    ys = [math.log10(p[1]) for p in points]
    x0, x1 = min(xs), max(xs) + 1e-9
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys)) + 1e-9

    def px(x: float, y: float) -> tuple[float, float]:
        return (pad + (math.log10(x) - x0) / (x1 - x0) * (w - 2 * pad),
                h - pad - (math.log10(y) - y0) / (y1 - y0) * (h - 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             'font-family="sans-serif" font-size="13">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">'
             'W6: median latency of one page of 50 sessions</text>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 20}" text-anchor="middle">sessions owned by the user '
             '(log scale)</text>',
             f'<text x="18" y="{h / 2}" text-anchor="middle" transform="rotate(-90 18 {h / 2})">'
             'ms per page (log scale)</text>']
    for size in sorted({p[0] for p in points}):
        x, _ = px(size, 10 ** y0)
        parts.append(f'<text x="{x}" y="{h - pad + 18}" text-anchor="middle">{size:,}</text>')
    for e in range(int(y0), math.ceil(y1) + 1):
        _, y = px(10 ** x0, 10.0 ** e)
        parts.append(f'<text x="{pad - 8}" y="{y + 4}" text-anchor="end">{10.0 ** e:g}</text>')
        parts.append(f'<line x1="{pad}" y1="{y}" x2="{w - pad}" y2="{y}" stroke="#ddd"/>')
    for (name, pts), color in zip(series.items(), ("#d62728", "#1f77b4"), strict=True):
        coords = " ".join(f"{px(x, y)[0]:.1f},{px(x, y)[1]:.1f}" for x, y in sorted(pts))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                     'stroke-width="2.5"/>')
        for x, y in pts:
            cx, cy = px(x, y)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{color}"/>')
        lx, ly = pad + 20, pad + (20 if name == "by offset" else 40)
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="14" height="4" fill="{color}"/>')
        call = ("get_sessions(limit=50, offset=k), k across the listing" if name == "by offset"
                else "iter_sessions(page_size=50), every page")
        parts.append(f'<text x="{lx + 20}" y="{ly - 4}">{name}: {call}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


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
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        folder = Path(tmp)
        for step in (
            lambda: w1_create(folder, args.sessions),
            lambda: w2_add_single(folder, 20 if args.quick else 200, 10),
            lambda: w3_get_latest(folder, args.items, 50 if args.quick else 1000),
            lambda: w4_pages(folder, args.owned, args.total, calls),
            lambda: w5_add_bulk(folder, args.items, 2 if args.quick else 15),
            lambda: w6_scaling(folder, args.scale, calls),
            lambda: [w7_memory(folder, max(args.scale))],
        ):
            results += step()
            print(f"  {results[-1].workload} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)
    command = "python benchmarks/bench.py" + (" " + " ".join(argv) if argv else
                                              " " + " ".join(sys.argv[1:])).rstrip()
    machine = (f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
               f"SQLite {sqlite3.sqlite_version}, sessions_dal {__version__}"
               + (f", openai-agents {_agents.__version__}" if _agents else ""))
    checks = targets(results)
    report = "\n".join([
        "# Benchmark results", "",
        "Written by `benchmarks/bench.py`; do not edit by hand. Medians and 95th percentiles",
        "per operation; ratios compare medians. *raw sqlite3* runs the same statements with",
        "the same settings (WAL, synchronous=NORMAL, 16 MB page cache, foreign keys on, one",
        "transaction per call); implementations take turns call by call (W1-W3, W5);",
        "*SQLiteSession* runs with openai-agents' own defaults, driven from synchronous code.",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine}, {os.cpu_count()} cores",
        f"- command: `{command.strip()}` ({time.time() - started:.0f} s)", "",
        table(results), "", "![W6 page latency](w6.svg)", "", "## Targets", "",
        *[f"- {'met' if ok else '**NOT met**'}: {name} ({value})" for name, ok, value in checks],
        "", "## Notes", "", *NOTES])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "RESULTS.md").write_text(report + "\n")
    # One result per line, samples in whole microseconds: readable, and small
    # enough to commit (W7's single sample is megabytes, kept as measured).
    lines = [json.dumps({
        "workload": r.workload, "operation": r.operation, "impl": r.impl, "note": r.note,
        "n": len(r.samples),
        **({"median": r.median, "p95": r.p95, "min": min(r.samples),
            "samples_us": [round(x * 1e6) for x in r.samples] if r.workload != "W7"
            else r.samples} if r.samples else {}),
    }) for r in results]
    (args.out / "results.json").write_text(
        "{\n" + f'"machine": {json.dumps(machine)},\n"command": {json.dumps(command.strip())},\n'
        + '"targets": ' + json.dumps([{"target": n, "met": ok, "value": v}
                                      for n, ok, v in checks]) + ",\n"
        + '"results": [\n' + ",\n".join(lines) + "\n]\n}\n")
    (args.out / "w6.svg").write_text(svg_plot(results))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
