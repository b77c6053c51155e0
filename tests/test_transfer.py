"""export_jsonl then import_jsonl into an empty database loses nothing."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from agents_schema import write_like_agents
from hypothesis import given
from hypothesis import strategies as st

from sessions_dal import SessionRepository
from sessions_dal import repository as repository_module
from sessions_dal import session as session_module
from sessions_dal.transfer import export_jsonl, import_jsonl

USERS = ["alice", "bob", "ünï"]
STAMPS = [f"2026-01-0{d}T00:00:00.00000{d}+00:00" for d in range(1, 4)]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
# What openai-agents may have stored: json.dumps output (NaN and Infinity
# included), and texts another writer formatted its own way.
STORED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
).map(json.dumps) | st.sampled_from(
    ['{"a": 1, "a": 2}', '[1,   2 ]', "1E5", '"\\ud800"', ' {"x":\n[-0.0]} ', "-Infinity"])
UNOWNED = st.lists(
    st.tuples(st.sampled_from(["chat-1", "chat-2", "chat-3"]),
              st.sampled_from(["2025-03-04 05:06:07", "2025-03-04 05:06:08"]),
              st.lists(STORED, max_size=3)),
    max_size=3, unique_by=lambda t: t[0],
)
SESSIONS = st.lists(
    st.tuples(st.sampled_from(USERS), st.sampled_from(STAMPS),
              st.dictionaries(st.text(max_size=4), JSON, max_size=3),
              st.lists(JSON, max_size=4), st.booleans()),
    max_size=12,
)


def snapshot(repo: SessionRepository) -> list[Any]:
    """Everything a user of the library can observe, as plain JSON text."""
    state: list[Any] = []
    for user in repo.get_users():
        state.append(["user", user.user_id, user.created_at.isoformat(), user.sessions])
        for s in repo.get_sessions(user.user_id):
            state.append(["session", s.session_id, s.user_id, s.created_at.isoformat(),
                          s.updated_at.isoformat(), json.dumps(s.metadata),
                          json.dumps(s.get_items())])
    for s in sorted(repo.get_unowned_sessions(), key=lambda s: s.session_id):
        state.append(["unowned", s.session_id, s.created_at.isoformat(),
                      s.updated_at.isoformat(), json.dumps(s.get_items())])
    return state


def body(export: str) -> list[str]:
    """An export without its first line, which records when it was made."""
    return export.splitlines()[1:]


@given(SESSIONS, UNOWNED, st.sampled_from([None, *USERS]))
def test_export_then_import_is_lossless(sessions: list[Any], unowned: list[Any],
                                        only: str | None) -> None:
    stamps = iter(stamp for _, stamp, _, _, _ in sessions)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "source.db"
        for session_id, created, texts in unowned:
            write_like_agents(path, session_id, texts, created_at=created)
        check_round_trip(path, sessions, stamps, only)


def check_round_trip(path: Path, sessions: list[Any], stamps: Any, only: str | None) -> None:
    with SessionRepository(path) as source, SessionRepository(":memory:") as target:
        with mock.patch.object(repository_module, "utc_now", side_effect=lambda: next(stamps)):
            created = [(source.create_session(user, metadata=meta), items, pop)
                       for user, _, meta, items, pop in sessions]
        for s, items, pop in created:
            with mock.patch.object(session_module, "utc_now", return_value=STAMPS[-1]):
                s.add_items(items)
                if pop:
                    s.pop_item()
        out = io.StringIO()
        counts = export_jsonl(source, out, user_id=only)
        assert out.getvalue().count("\n") == counts.users + counts.sessions + counts.items + 2
        imported = import_jsonl(target, io.StringIO(out.getvalue()))
        assert imported == counts
        expected = snapshot(source)
        if only is not None:
            expected = [row for row in expected if row[1] == only or row[2] == only]
        assert snapshot(target) == expected
        again = io.StringIO()
        export_jsonl(target, again, user_id=only)
        assert body(again.getvalue()) == body(out.getvalue())
