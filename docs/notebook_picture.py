"""Draw docs/notebook.png: what a notebook shows for a session, a list and search hits.

Run from the repository's root: ``.venv/bin/python docs/notebook_picture.py``.
It needs Debian's ``chromium`` package (headless, to turn the HTML into a PNG).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sessions_dal import SessionRepository

CONVERSATION = [
    {"role": "user", "content": [
        {"type": "input_text", "text": "Find me a train from Rome to Naples on Friday morning."},
        {"type": "input_image", "image_url": "data:image/png;base64," + "iVBORw0KGgo" * 900}]},
    {"type": "reasoning", "summary": [
        {"type": "summary_text", "text": "Look up Friday's trains, then pick the fastest."}]},
    {"type": "function_call", "call_id": "c1", "name": "find_trains",
     "arguments": '{"from": "Roma Termini", "to": "Napoli Centrale", "day": "friday"}'},
    {"type": "function_call_output", "call_id": "c1", "output": (
        '[{"train": "FR 9511", "leaves": "08:10", "arrives": "09:20", "price": 39.9}, '
        '{"train": "IC 701", "leaves": "08:36", "arrives": "10:55", "price": 14.5}, '
        '{"train": "FR 9515", "leaves": "09:10", "arrives": "10:20", "price": 44.9}, '
        '{"train": "R 2351", "leaves": "09:18", "arrives": "12:01", "price": 12.9}, '
        '{"train": "FR 9519", "leaves": "10:10", "arrives": "11:20", "price": 29.9}, '
        '{"train": "IC 705", "leaves": "10:36", "arrives": "12:55", "price": 14.5}, '
        '{"train": "FR 9523", "leaves": "11:10", "arrives": "12:20", "price": 49.9}]')},
    {"type": "web_search_call", "id": "ws1", "status": "completed",
     "action": {"type": "search", "query": "Napoli Centrale strike Friday"}},
    {"role": "assistant", "content": [{"type": "output_text", "text": (
        "The Frecciarossa FR 9511 leaves Roma Termini at 08:10 and reaches Napoli Centrale "
        "at 09:20 (€39.90). No strike is announced for Friday.")}]},
    {"type": "function_call", "call_id": "h1", "name": "transfer_to_booking_agent",
     "arguments": "{}"},
    {"type": "function_call_output", "call_id": "h1",
     "output": '{"assistant": "Booking agent"}'},
]


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium package: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder, SessionRepository(":memory:") as repo:
        trip = repo.create_session("alice", metadata={"title": "Rome to Naples"})
        trip.add_items(CONVERSATION)
        repo.create_session("alice", metadata={"title": "Dinner in Trastevere"}).add_items(
            [{"role": "user", "content": "A quiet trattoria near Santa Maria?"}])
        sections = [
            ("repo.get_sessions(\"alice\")", repo.get_sessions("alice")._repr_html_()),
            ("repo.search(\"alice\", \"naples train*\")",
             repo.search("alice", "naples train*")._repr_html_()),
            ("trip", trip._repr_html_()),
        ]
        cells = "".join(
            f'<p style="font:13px monospace;color:#555;margin:18px 0 6px">In: {code}</p>{view}'
            for code, view in sections)
        page = Path(folder, "view.html")
        page.write_text(f'<html><body style="margin:16px;background:#fff">{cells}</body></html>',
                        encoding="utf-8")
        target = Path(__file__).with_name("notebook.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--screenshot={target}",
                        "--window-size=900,880", page.as_uri()],
                       check=True, capture_output=True)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
