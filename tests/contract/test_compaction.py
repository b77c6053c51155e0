"""Compaction keeps the history: the model's view shrinks, the transcript never does."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from backends import KINDS, Backend, fresh_repository
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_dal import Session, SessionRepository, Size
from sessions_dal.errors import ReadOnlyDatabaseError, SessionNotFoundError
from sessions_dal.transfer import export_jsonl, import_jsonl


def test_the_first_items_leave_the_view_for_the_replacement(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items([f"i{n}" for n in range(6)])
    assert s.compact([{"role": "system", "content": "sum"}], upto=4) == 4
    assert s.get_items() == [{"role": "system", "content": "sum"}, "i4", "i5"]
    assert s.count_items() == 3 and s.get_items(1) == ["i5"]
    assert list(s.iter_history()) == [f"i{n}" for n in range(6)]
    again = repo.get_session("alice", s.session_id)
    assert again is not None and again.get_items() == s.get_items()


def test_every_layer_stays_in_order_across_compactions(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["a", "b", "c"])
    s.compact(["S1"], upto=2)           # view: S1 c
    s.add_items(["d", "e"])             # view: S1 c d e
    s.compact(["S2", "S2b"], upto=3)    # S1 (a replacement) and c, d leave
    s.add_items(["f"])
    assert s.get_items() == ["S2", "S2b", "e", "f"]
    assert list(s.iter_history()) == ["a", "b", "c", "d", "e", "f"]
    assert s.compact([]) == 4           # all of it, and nothing in its place
    assert s.get_items() == [] and list(s.iter_history()) == ["a", "b", "c", "d", "e", "f"]
    s.add_items(["g"])
    assert list(s.iter_history(page_size=1)) == ["a", "b", "c", "d", "e", "f", "g"]


def test_compacting_nothing_changes_nothing(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    assert s.compact([]) == 0 and s.compact([], upto=0) == 0
    s.add_items(["a"])
    before = s.updated_at
    assert s.compact([], upto=0) == 0 and s.updated_at == before
    assert s.compact(["note"], upto=0) == 0  # a replacement before everything
    assert s.get_items() == ["note", "a"] and list(s.iter_history()) == ["a"]


def test_bad_arguments_are_refused_and_change_nothing(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["a", "b"])
    with pytest.raises(ValueError, match=r"upto=3, but session .* holds 2 items; nothing"):
        s.compact(["x"], upto=3)
    with pytest.raises(ValueError, match="upto"):
        s.compact(["x"], upto=-1)
    with pytest.raises(TypeError, match="upto"):
        s.compact(["x"], upto="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="replacement must be a list"):
        s.compact("summary")
    with pytest.raises(TypeError, match=r"replacement\[1\]"):
        s.compact(["ok", object()])
    assert s.get_items() == ["a", "b"] and list(s.iter_history()) == ["a", "b"]


def test_a_stale_handle_cannot_compact_and_sees_no_history(repo: SessionRepository) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["secret"])
    s.compact(["sum"])
    repo.delete_session("alice", "s")
    with pytest.raises(SessionNotFoundError):
        s.compact(["x"])
    assert list(s.iter_history()) == []
    bob = repo.create_session("bob", session_id="s")  # the same id, another owner
    bob.add_items(["his"])
    assert list(s.iter_history()) == [] and list(bob.iter_history()) == ["his"]


def test_an_unowned_session_compacts_too(repo: SessionRepository, backend: Backend) -> None:
    backend.write_like_agents("chat", ['"a"', '"b"', '"c"'])
    chat = repo.get_unowned_session("chat")
    assert chat is not None
    assert chat.compact(["sum"], upto=2) == 2
    assert chat.get_items() == ["sum", "c"] and list(chat.iter_history()) == ["a", "b", "c"]
    claimed = repo.claim_session("alice", "chat")
    assert list(claimed.iter_history()) == ["a", "b", "c"]


def test_openai_agents_sees_the_compacted_view(repo: SessionRepository,
                                                backend: Backend) -> None:
    s = repo.create_session("alice")
    s.add_items([{"n": n} for n in range(5)])
    s.compact([{"summary": True}], upto=3)
    s.add_items([{"n": 5}])
    # openai-agents' order: id on SQLite, (created_at, id) on PostgreSQL.
    assert [backend.stored_items(s.session_id)] == [
        ['{"summary": true}', '{"n": 3}', '{"n": 4}', '{"n": 5}']]


def test_pop_takes_the_replacement_when_it_is_last(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["a", "b"])
    s.compact(["sum"])
    assert s.pop_item() == "sum"  # the view is empty; the history stays
    assert s.get_items() == [] and list(s.iter_history()) == ["a", "b"]


def test_clear_session_erases_the_history_and_delete_paths_too(repo: SessionRepository,
                                                                backend: Backend) -> None:
    s = repo.create_session("alice")
    s.add_items(["a", "b"])
    s.compact(["sum"])
    s.clear_session()
    assert s.get_items() == [] and list(s.iter_history()) == []
    s.add_items(["c"])
    s.compact([])  # history only, an empty view: clear still erases it
    s.clear_session()
    assert list(s.iter_history()) == []
    for delete in (lambda t: repo.delete_session("alice", t.session_id),
                   lambda t: repo.delete_user("alice"),
                   lambda t: repo.prune(keep_last=0, user_id="alice")):
        t = repo.create_session("alice")
        t.add_items(["x", "y"])
        t.compact(["sum"], upto=1)
        delete(t)
        assert list(t.iter_history()) == []
    assert backend.history_rows() == 0


def test_a_fork_keeps_the_history(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["a", "b", "c", "d"])
    s.compact(["S"], upto=2)  # view: S c d
    whole = repo.fork_session("alice", s.session_id)
    assert whole.get_items() == ["S", "c", "d"]
    assert list(whole.iter_history()) == ["a", "b", "c", "d"]
    part = repo.fork_session("alice", s.session_id, upto=2)
    assert part.get_items() == ["S", "c"] and list(part.iter_history()) == ["a", "b", "c"]
    whole.compact(["W"])  # the fork's layers are its own
    assert list(whole.iter_history()) == ["a", "b", "c", "d"]
    assert s.get_items() == ["S", "c", "d"]


def test_export_and_import_keep_every_layer(backend: Backend) -> None:
    with backend.open() as repo, fresh_repository(backend.kind) as copy:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["a", "b", "c"])
        s.compact(["S1"], upto=2)
        s.add_items(["d"])
        s.compact(["S2"], upto=2)  # S1 compacted in turn
        out = io.StringIO()
        counts = export_jsonl(repo, out)
        assert (counts.items, counts.history) == (2, 4)  # S2 d; a b S1 c
        import_jsonl(copy, io.StringIO(out.getvalue()))
        t = copy.get_session("alice", "s")
        assert t is not None
        assert t.get_items() == ["S2", "d"] and list(t.iter_history()) == ["a", "b", "c", "d"]
        again = io.StringIO()
        export_jsonl(copy, again)
        assert again.getvalue().splitlines()[1:] == out.getvalue().splitlines()[1:]
        t.compact(["S3"], upto=1)  # a third layer after the imported ones
        assert list(t.iter_history()) == ["a", "b", "c", "d"]


def test_a_walk_through_the_history_survives_a_compaction_midway(
    repo: SessionRepository,
) -> None:
    s = repo.create_session("alice")
    s.add_items([f"i{n}" for n in range(10)])
    walk = s.iter_history(page_size=3)
    seen = [next(walk) for _ in range(4)]
    s.compact(["S"], upto=6)  # the rest of the view gets new ids
    seen += list(walk)
    assert seen == [f"i{n}" for n in range(10)]


@pytest.mark.parametrize("upto", [0, 1, 6])
def test_a_walk_survives_any_compaction_midway_even_one_that_moves_nothing(
    repo: SessionRepository, upto: int,
) -> None:
    # upto=0 moves nothing to the history but still gives the view new ids.
    s = repo.create_session("alice")
    s.add_items([f"i{n}" for n in range(10)])
    walk = s.iter_history(page_size=3)
    seen = [next(walk) for _ in range(4)]
    s.compact(["S"], upto=upto)
    s.compact(["T"], upto=0)
    seen += list(walk)
    assert seen == [f"i{n}" for n in range(10)]
    assert [layer for layer, _ in s.iter_history(with_layers=True)] == (
        [1] * upto + [None] * (10 - upto))


def test_appends_during_compactions_are_neither_lost_nor_compacted(backend: Backend) -> None:
    with backend.open() as repo:
        session_id = repo.create_session("alice").session_id
    rounds, errors = 15, []

    def append(n: int) -> None:
        with backend.open(busy_timeout=60) as own:
            mine = own.get_session("alice", session_id)
            assert mine is not None
            for k in range(rounds):
                try:
                    mine.add_items([[n, k]])
                except BaseException as exc:  # handed to the test
                    errors.append(exc)

    def compact() -> None:
        with backend.open(busy_timeout=60) as own:
            mine = own.get_session("alice", session_id)
            assert mine is not None
            for _ in range(rounds):
                try:
                    count = mine.count_items()
                    mine.compact([["summary"]], upto=count // 2)
                except BaseException as exc:
                    errors.append(exc)

    workers = [threading.Thread(target=append, args=(n,)) for n in range(2)]
    workers.append(threading.Thread(target=compact))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == [] and not any(worker.is_alive() for worker in workers)
    with backend.open() as repo:
        s = repo.get_session("alice", session_id)
        assert s is not None
        transcript = list(s.iter_history())
    # Every append once, each writer's in its order; no summary among them.
    assert sorted(map(tuple, transcript)) == sorted((n, k) for n in range(2)
                                                    for k in range(rounds))
    for n in range(2):
        assert [item for item in transcript if item[0] == n] == [[n, k] for k in range(rounds)]


# -- a model of the view and the transcript, on random operations -----------------------

OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 3)),
    st.tuples(st.just("compact"), st.integers(0, 2), st.integers(0, 6)),
    st.tuples(st.just("pop")),
    st.tuples(st.just("fork")),
), max_size=12)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(OPERATIONS)
def test_view_and_transcript_follow_a_model(kind: str, operations: list[Any]) -> None:
    with fresh_repository(kind) as repo:
        s: Session = repo.create_session("alice")
        view: list[Any] = []
        transcript: list[Any] = []
        made = 0
        for operation in operations:
            if operation[0] == "add":
                new = [f"i{made + n}" for n in range(operation[1])]
                made += operation[1]
                s.add_items(new)
                view += new
                transcript += new
            elif operation[0] == "compact":
                replacement = [f"s{made + n}" for n in range(operation[1])]
                made += operation[1]
                upto = min(operation[2], len(view))
                assert s.compact(replacement, upto=upto) == upto
                view = replacement + view[upto:]
            elif operation[0] == "pop":
                popped = s.pop_item()
                assert popped == (view.pop() if view else None)
                if popped is not None and popped.startswith("i"):
                    transcript.remove(popped)
            else:
                s = repo.fork_session("alice", s.session_id)
            assert s.get_items() == view
            assert list(s.iter_history(page_size=2)) == transcript


# -- sizes ------------------------------------------------------------------------------


def test_sizes_count_the_view_and_the_history_apart(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    assert s.size() == Size(0, 0, 0, 0)
    s.add_items(["ab", {"k": "é"}])  # stored as '"ab"' and '{"k": "\\u00e9"}'
    assert s.size() == Size(2, 4 + 15, 0, 0)
    s.compact(["S"], upto=1)
    assert s.size() == Size(2, 3 + 15, 1, 4)
    other = repo.create_session("alice")
    other.add_items(["x" * 98])
    assert repo.user_size("alice") == Size(3, 18 + 100, 1, 4)
    assert repo.user_size("nobody") == Size(0, 0, 0, 0)
    assert repo.info().history_items == 1
    largest = repo.largest(limit=1)
    assert [u.user_id for u in largest.users] == ["alice"]
    assert largest.users[0].sessions == 2 and largest.users[0].size == repo.user_size("alice")
    assert [(x.session_id, x.size) for x in largest.sessions] == [
        (other.session_id, Size(1, 100, 0, 0))]
    repo.delete_session("alice", s.session_id)
    assert s.size() == Size(0, 0, 0, 0)  # a stale handle sees nothing
    with pytest.raises(ValueError, match="limit"):
        repo.largest(limit=0)
    with pytest.raises(TypeError, match="user_id"):
        repo.user_size(3)  # type: ignore[arg-type]


def test_vacuum_gives_room_back_on_sqlite_only(repo: SessionRepository,
                                               backend: Backend) -> None:
    s = repo.create_session("alice")
    s.add_items([{"text": "x" * 1000} for _ in range(500)])
    kept = repo.create_session("bob")
    kept.add_items(["kept"])
    repo.delete_session("alice", s.session_id)
    if not backend.has_file:
        with pytest.raises(NotImplementedError, match="VACUUM FULL"):
            repo.vacuum()
        return
    assert repo.vacuum() > 400_000
    assert kept.get_items() == ["kept"] and repo.check() == []
    assert repo.vacuum() < 100_000  # nothing much left to give back
    with backend.open(read_only=True) as reader, pytest.raises(ReadOnlyDatabaseError,
                                                               match="read_only"):
        reader.vacuum()


def test_an_import_refuses_history_it_cannot_trust(repo: SessionRepository) -> None:
    head = '{"type": "export", "format": %d}\n'
    session = ('{"type": "session", "session_id": "s", "user_id": "u", "created_at": '
               '"2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}\n')
    end = '{"type": "end", "users": 0, "sessions": 1, "items": 0, "history": 1}\n'
    for fmt, record, message in [
        (2, '{"type": "history", "session_id": "s", "layer": 1, "item": 1}\n',
         "export format 2"),
        (3, '{"type": "history", "session_id": "s", "layer": 1}\n', "needs its item"),
        (3, '{"type": "history", "session_id": "s", "layer": 0, "item": 1}\n',
         "a layer must be a whole number from 1"),
        (3, '{"type": "history", "session_id": "s", "layer": 1, "replaced": 1, "item": 1}\n',
         "replaced must be true or false"),
    ]:
        with pytest.raises(ValueError, match=message):
            repo.import_from([head % fmt, session, record, end])
        assert repo.get_session("u", "s") is None  # nothing was imported
