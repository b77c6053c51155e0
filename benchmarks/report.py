"""Reporting a benchmark run: the table, the targets, the plot, RESULTS.md and results.json."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from drivers import Result


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


NO_INDEX = "sessions_dal, no index"

# The issue-18 goals: sessions_dal's median over the minimal raw statements'.
GOALS = {
    "sqlite": {"W1": 2.0, "W2": 2.5, "W3": 1.2, "W5": 1.3},
    "postgresql": {"W1": 1.3, "W2": 1.3, "W3": 1.3, "W5": 1.3},
}
INDEX_GOAL = 1.2
"""The most the search index may add to a write (W2, W5): with it over without."""
PRUNE_INDEX_GOAL = 2.0
"""The most the search index may add to W12's prune, erasure included."""


def table(results: list[Result], raw_name: str, peer_name: str) -> str:
    by_key = {(r.workload, r.operation, r.impl): r for r in results}
    lines = ["| workload | operation | implementation | median | p95 | ops/s | vs raw "
             f"| vs no index | vs {peer_name} |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.workload == "W7":
            lines.append(f"| W7 | {r.operation} | {r.impl} | {r.samples[0]:.2f} MB "
                         "| | | | | |")
            continue
        if not r.samples:
            lines.append(f"| {r.workload} | {r.operation} | {r.impl} | n/a | n/a | n/a | n/a "
                         f"| | {r.note} |")
            continue
        ratios = []
        for other in (raw_name, NO_INDEX, peer_name):
            peer = by_key.get((r.workload, r.operation, other))
            ratios.append(f"{r.median / peer.median:.2f}x" if peer and peer.samples and
                          r.impl != other and (other != NO_INDEX or r.impl == "sessions_dal")
                          else "")
        lines.append(f"| {r.workload} | {r.operation} | {r.impl} | {fmt_time(r.median)} | "
                     f"{fmt_time(r.p95)} | {r.throughput or 1 / r.median:,.0f} | {ratios[0]} | "
                     f"{ratios[1]} | {ratios[2] or r.note} |")
    return "\n".join(lines)


def targets(results: list[Result], raw_name: str, peer_name: str, backend: str = "sqlite"
            ) -> list[tuple[str, bool, str]]:
    get = {(r.workload, r.operation, r.impl): r for r in results}
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ratio: float, limit: float) -> None:
        checks.append((f"{name} <= {limit}x", ratio <= limit, f"{ratio:.2f}x"))

    for r in results:
        if r.impl != "sessions_dal" or not r.samples or r.workload == "W7":
            continue
        raw = get.get((r.workload, r.operation, raw_name))
        goal = GOALS[backend].get(r.workload)
        if raw and goal:
            check(f"{r.workload} {r.operation} vs raw (minimal statements)",
                  r.median / raw.median, goal)
        plain = get.get((r.workload, r.operation, NO_INDEX))
        if plain and plain.samples and r.workload in ("W2", "W5", "W12"):
            check(f"{r.workload} {r.operation} with the search index vs without",
                  r.median / plain.median,
                  PRUNE_INDEX_GOAL if r.workload == "W12" else INDEX_GOAL)
        peer = get.get((r.workload, r.operation, peer_name))
        if peer and peer.samples:
            ratio = r.median / peer.median
            checks.append((f"{r.workload} {r.operation} faster than {peer_name}", ratio < 1,
                           f"{ratio:.2f}x"))
    keyset = [r for r in results if r.workload == "W6" and "keyset" in r.operation]
    if len(keyset) >= 2:
        ratio = keyset[-1].median / keyset[0].median
        checks.append((f"keyset page at {keyset[-1].operation.split(', ')[1]} <= 1.5x at "
                       f"{keyset[0].operation.split(', ')[1]}", ratio <= 1.5, f"{ratio:.2f}x"))
    activity = [r for r in results if r.workload == "W9" and r.impl == "sessions_dal"]
    if len(activity) >= 2:
        ratio = activity[-1].median / activity[0].median
        checks.append((f"activity page at {activity[-1].operation.split(', ')[1]} <= 1.5x at "
                       f"{activity[0].operation.split(', ')[1]}", ratio <= 1.5, f"{ratio:.2f}x"))
    for r in results:
        raw = get.get((r.workload, r.operation, raw_name))
        if r.impl == "sessions_dal" and raw and r.workload in ("W9", "W10", "W11", "W12"):
            check(f"{r.workload} {r.operation} vs raw (same statements)",
                  r.median / raw.median, 1.3)
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






def write(out: Path, results: list[Result], *, target: object, machine: str, command: str,
          seconds: float, notes: list[str]) -> str:
    """Write RESULTS.md, results.json and w6.svg to ``out``; return the report text."""
    raw, peer = target.raw, target.peer  # type: ignore[attr-defined]
    same, backend = target.same, target.backend  # type: ignore[attr-defined]
    checks = targets(results, raw, peer, backend)
    report = "\n".join([
        "# Benchmark results", "",
        "Written by `benchmarks/bench.py`; do not edit by hand. Medians and 95th percentiles",
        "per operation; ratios compare medians. Implementations take turns call by call",
        f"(W1-W3, W5). In W1-W3 and W5, *{raw}* runs the minimal statements (one INSERT",
        "to create a session, one per item, one SELECT to read: no users, activity, owner",
        f"check or search) with the same settings; *{same}* runs sessions_dal's own",
        f"statements by hand; *{NO_INDEX}* is sessions_dal on a database without the",
        "search index. From W4 on, *raw* runs sessions_dal's own statements. "
        f"*{peer}* runs with",
        "openai-agents' own defaults, driven from synchronous code.",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine}, {os.cpu_count()} cores",
        f"- command: `{command}` ({seconds:.0f} s)", "",
        table(results, raw, peer), "", "![W6 page latency](w6.svg)", "", "## Targets", "",
        *[f"- {'met' if ok else '**NOT met**'}: {name} ({value})" for name, ok, value in checks],
        "", "## Notes", "", *notes])
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(report + "\n")
    # One result per line, samples in whole microseconds: readable, and small
    # enough to commit (W7's single sample is megabytes, kept as measured).
    lines = [json.dumps({
        "workload": r.workload, "operation": r.operation, "impl": r.impl, "note": r.note,
        "n": len(r.samples),
        **({"median": r.median, "p95": r.p95, "min": min(r.samples),
            "samples_us": [round(x * 1e6) for x in r.samples] if r.workload != "W7"
            else r.samples} if r.samples else {}),
    }) for r in results]
    (out / "results.json").write_text(
        "{\n" + f'"machine": {json.dumps(machine)},\n"command": {json.dumps(command)},\n'
        + '"targets": ' + json.dumps([{"target": n, "met": ok, "value": v}
                                      for n, ok, v in checks]) + ",\n"
        + '"results": [\n' + ",\n".join(lines) + "\n]\n}\n")
    (out / "w6.svg").write_text(svg_plot(results))
    return report
