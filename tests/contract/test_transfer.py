"""export_jsonl then import_jsonl into an empty database loses nothing."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest
from backends import KINDS, Backend, fresh, fresh_repository
from helpers import DeletesDuringExport, exported, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_dal import _time
from sessions_dal.transfer import export_jsonl, import_jsonl

USERS = ["alice", "bob", "ünï"]
STAMPS = [datetime(2026, 1, d, microsecond=d, tzinfo=timezone.utc) for d in range(1, 4)]
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


def body(export: str) -> list[str]:
    """An export without its first line, which records when it was made."""
    return export.splitlines()[1:]


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60)  # two databases per example: the suite's slowest property
@given(SESSIONS, UNOWNED, st.sampled_from([None, *USERS]))
def test_export_then_import_is_lossless(kind: str, sessions: list[Any], unowned: list[Any],
                                        only: str | None) -> None:
    stamps = iter(stamp for _, stamp, _, _, _ in sessions)
    with fresh(kind) as source, fresh(kind) as target:
        for session_id, created, texts in unowned:
            source.write_like_agents(session_id, texts, created_at=created)
        check_round_trip(source, target, sessions, stamps, only)


def check_round_trip(source_backend: Backend, target_backend: Backend, sessions: list[Any],
                     stamps: Any, only: str | None) -> None:
    with source_backend.open() as source, target_backend.open() as target:
        with mock.patch.object(_time, "now", side_effect=lambda: next(stamps)):
            created = [(source.create_session(user, metadata=meta), items, pop)
                       for user, _, meta, items, pop in sessions]
        for s, items, pop in created:
            with mock.patch.object(_time, "now", return_value=STAMPS[-1]):
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


# -- a full export is one consistent, complete copy ------------------------------


def test_export_is_one_snapshot_while_another_connection_deletes(backend: Backend) -> None:
    with backend.open() as repo, backend.open() as other:
        repo.create_session("alice", session_id="long").add_items(list(range(2_000)))
        out = DeletesDuringExport(other, "alice", "long")
        counts = export_jsonl(repo, out)
        assert out.done and (counts.sessions, counts.items) == (1, 2_000)
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [r["item"] for r in records if r["type"] == "item"] == list(range(2_000))
        assert records[-1] == {"type": "end", "users": 1, "sessions": 1, "items": 2_000}
        assert repo.get_session("alice", "long") is None  # the delete did happen


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_cut_at_any_line_imports_nothing(kind: str) -> None:
    with fresh_repository(kind) as source:
        source.create_session("alice").add_items([1, 2, 3])
        source.create_session("bob").add_items(list(range(6)))
        lines = exported(source)
    for cut in range(len(lines)):
        with fresh_repository(kind) as target:
            with pytest.raises(ValueError, match="without the closing 'end' record"):
                import_jsonl(target, lines[:cut])
            assert target.info().users == target.info().items == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda ls: ls[:3] + ls[4:], "the 'end' record counts"),
     (lambda ls: [*ls, ls[1]], "a record after the 'end' record"),
     (lambda ls: [ls[1], ls[0], *ls[2:]], "the 'export' record must be the first line"),
     (lambda ls: [ls[0].replace('"format": 3', '"format": 4'), *ls[1:]],
      "export format 4 is not one this sessions_dal reads")],
    ids=["item removed", "record after end", "header moved", "newer format"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_file_imports_nothing(kind: str, change: Any, message: str) -> None:
    with fresh_repository(kind) as source, fresh_repository(kind) as target:
        source.create_session("alice").add_items([1, 2, 3])
        with pytest.raises(ValueError, match=re.escape(message)):
            import_jsonl(target, change(exported(source)))
        assert target.info().users == 0


@pytest.mark.parametrize("kind", KINDS)
def test_an_export_of_sessions_dal_0_1_imports_with_require_end_false(kind: str) -> None:
    old = [
        '{"type": "user", "user_id": "alice", "created_at": "2026-01-01T00:00:00+00:00"}\n',
        '{"type": "session", "session_id": "s", "user_id": "alice", "created_at": '
        '"2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00", '
        '"metadata": {"t": 1}}\n',
        '{"type": "item", "session_id": "s", "item": [1]}\n',
    ]
    with fresh_repository(kind) as target:
        with pytest.raises(ValueError, match="require_end=False"):
            import_jsonl(target, old)
        assert import_jsonl(target, old, require_end=False).items == 1
        assert target.get_session("alice", "s").get_items() == [[1]]  # type: ignore[union-attr]


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("kind", KINDS)
def test_timestamps_past_the_representable_range_are_a_clear_error(kind: str, stamp: str
                                                                   ) -> None:
    record = {"type": "session", "session_id": "s", "user_id": "u", "created_at": stamp,
              "updated_at": stamp}
    with fresh_repository(kind) as target, pytest.raises(
        ValueError, match="line 1: created_at must be an ISO 8601 timestamp"
    ):
        import_jsonl(target, [json.dumps(record)])


# -- imports that must not half-happen ----------------------------------------------


def test_a_read_from_the_progress_callback_keeps_the_import_whole(backend: Backend) -> None:
    with fresh_repository(backend.kind) as source:
        for user in ("u1", "u2", "u3"):
            source.create_session(user).add_items(list(range(700)))
        lines = exported(source)
    with backend.open() as target:
        seen: list[int] = []
        with pytest.raises(ValueError, match="without the closing 'end' record"):
            import_jsonl(target, lines[:-1],
                         progress=lambda counts: seen.append(target.count_sessions("u1")))
        assert seen and target.info().sessions == target.info().items == 0


def test_a_write_from_inside_an_import_is_refused_and_nothing_is_imported(
    backend: Backend,
) -> None:
    with fresh_repository(backend.kind) as source:
        source.create_session("u1").add_items([1, 2])
        lines = exported(source)
    with backend.open() as target:

        def meddling() -> Any:
            yield from lines[:2]
            target.create_session("intruder")
            yield from lines[2:]

        with pytest.raises(RuntimeError, match="cannot start inside another call"):
            import_jsonl(target, meddling())
        assert target.info().users == target.info().items == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [({"type": "session", "session_id": "s", "created_at": "2026-01-01T00:00:00+00:00",
       "updated_at": "2026-01-01T00:00:00+00:00"}, "needs user_id (null for an unowned"),
     ({"type": "session", "session_id": "s", "user_id": None, "metadata": {"t": 1}},
      "an unowned session has no metadata"),
     ({"type": "session", "session_id": "s", "user_id": None, "created_at": [5]},
      "must be openai-agents' timestamp")],
    ids=["no user_id", "unowned metadata", "unowned time"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_session_records_say_whose_they_are(kind: str, record: dict[str, Any], message: str
                                            ) -> None:
    with fresh_repository(kind) as target:
        with pytest.raises(ValueError, match=re.escape(message)):
            import_jsonl(target, [json.dumps(record)], require_end=False)
        assert target.info().sessions == target.info().unowned_sessions == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_session_twice_in_one_file_is_refused_even_with_replace(kind: str) -> None:
    with fresh_repository(kind) as source:
        source.create_session("u", session_id="s").add_items([1])
        lines = exported(source)
    twice = [*lines[:-1], *lines[2:-1], lines[-1]]
    with fresh_repository(kind) as target:
        for replace in (False, True):
            with pytest.raises(ValueError, match="session 's' appears twice in the file"):
                import_jsonl(target, twice, replace=replace)
        assert target.info().sessions == 0


@pytest.mark.parametrize("kind", KINDS)
def test_what_another_writer_stored_is_restored_as_it_was(kind: str) -> None:
    # Export reads what openai-agents wrote even where sessions_dal would
    # refuse to write it; import must take it back, or the backup is useless.
    deep: Any = 1
    for _ in range(150):
        deep = [deep]
    odd_id = "x" * 300
    lines = [json.dumps(record) for record in (
        {"type": "session", "session_id": odd_id, "user_id": None, "created_at": 12345,
         "updated_at": None, "metadata": {}},
        {"type": "item", "session_id": odd_id, "item": deep},
        {"type": "session", "session_id": "", "user_id": None},
        {"type": "item", "session_id": "", "item": float("nan")},
    )]
    with fresh_repository(kind) as target:
        import_jsonl(target, lines, require_end=False)
        by_id = {s.session_id: s for s in target.get_unowned_sessions()}
        assert set(by_id) == {odd_id, ""}
        assert by_id[odd_id].get_items() == [deep]
        (nan,) = by_id[""].get_items()
        assert nan != nan


@pytest.mark.parametrize("kind", KINDS)
def test_end_counts_must_be_whole_numbers(kind: str) -> None:
    with fresh_repository(kind) as source, fresh_repository(kind) as target:
        lines = exported(source)
        assert lines[-1] == '{"type": "end", "users": 0, "sessions": 0, "items": 0}\n'
        with pytest.raises(ValueError, match="the 'end' record counts"):
            import_jsonl(target, [lines[0], lines[-1].replace("0", "false")])




def test_export_pages_through_many_users_sessions_and_items(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every page boundary, cheaply: two rows a page, each kind of row on several pages.
    monkeypatch.setattr("sessions_dal.backends._shared.PAGE", 2)
    for chat in ("c1", "c2", "c3", "c4", "c5"):
        backend.write_like_agents(chat, ["1", "2", "3"], created_at="2025-01-01 00:00:00")
    with fresh(backend.kind) as target_backend, backend.open() as source, \
            target_backend.open() as target:
        for user in ("u1", "u2", "u3", "u4", "u5"):
            for _ in range(3):
                source.create_session(user).add_items([1, 2, 3, 4, 5])
        seen: list[int] = []
        out = io.StringIO()
        counts = export_jsonl(source, out, progress=lambda c: seen.append(c.items))
        assert (counts.users, counts.sessions, counts.items) == (5, 20, 90)
        import_jsonl(target, io.StringIO(out.getvalue()))
        assert snapshot(target) == snapshot(source)
        assert seen == []  # fewer than 1,000 sessions and items: no progress calls
        # The unowned keep their order (equal times: insertion order) across pages.
        assert ([s.session_id for s in target.get_unowned_sessions()]
                == [s.session_id for s in source.get_unowned_sessions()])


def test_unowned_sessions_are_exported_and_imported_unowned(backend: Backend) -> None:
    backend.write_like_agents("chat", ['{"n": NaN}', '{"n": Infinity}'],
                              created_at="2025-03-04 05:06:07")
    with fresh(backend.kind) as target, backend.open() as repo, target.open() as copy:
        out = io.StringIO()
        export_jsonl(repo, out)
        import_jsonl(copy, io.StringIO(out.getvalue()))
        (s,) = copy.get_unowned_sessions()
        assert s.session_id == "chat" and s.user_id is None
        assert s.created_at.isoformat() == "2025-03-04T05:06:07+00:00"
        nan, inf = s.get_items()
        assert nan["n"] != nan["n"] and inf["n"] == float("inf")
        assert copy.get_unowned_sessions()[0].to_dict() == repo.get_unowned_sessions()[0].to_dict()


def test_a_commit_elsewhere_inside_a_failed_import_does_not_mark_it_committed(
    backend: Backend,
) -> None:
    from sessions_dal import COMMITTED_NOTE

    with fresh(backend.kind) as other_backend, backend.open() as target, \
            other_backend.open() as log:

        def lines() -> Any:
            yield json.dumps({"type": "session", "session_id": "s1", "user_id": "u",
                              "created_at": "2026-01-01T00:00:00+00:00",
                              "updated_at": "2026-01-01T00:00:00+00:00"})
            log.create_session("auditor")  # another repository commits meanwhile

        with pytest.raises(ValueError, match="without the closing 'end' record") as info:
            import_jsonl(target, lines())
        assert COMMITTED_NOTE not in getattr(info.value, "__notes__", [])
        assert target.info().sessions == 0 and log.count_sessions("auditor") == 1
