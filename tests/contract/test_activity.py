"""Listing a user's sessions by last activity (order="updated"), on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from backends import KINDS, fresh
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_dal import Session, SessionRepository, _time


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """A clock the test sets: ``clock[0]`` is now."""
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    monkeypatch.setattr(_time, "now", lambda: now[0])
    return now


def ids(sessions: list[Session]) -> list[str]:
    return [s.session_id for s in sessions]


def test_every_change_of_items_moves_a_session_to_the_front(
    repo: SessionRepository, clock: list[datetime]
) -> None:
    a, b, _ = (repo.create_session("alice", session_id=name) for name in "abc")
    by_activity = lambda: ids(repo.get_sessions("alice", order="updated"))  # noqa: E731
    assert by_activity() == ["c", "b", "a"] == ids(repo.get_sessions("alice"))
    for move, session, expected in [
        (lambda s: s.add_items([1, 2]), a, ["a", "c", "b"]),
        (lambda s: s.add_items([3]), b, ["b", "a", "c"]),
        (lambda s: s.pop_item(), a, ["a", "b", "c"]),
        (lambda s: s.clear_session(), b, ["b", "a", "c"]),
    ]:
        clock[0] += timedelta(seconds=1)
        move(session)
        assert by_activity() == expected
        assert repo.get_session("alice", session.session_id).updated_at == clock[0]  # type: ignore[union-attr]
    assert ids(repo.get_sessions("alice")) == ["c", "b", "a"]  # creation order stays


def test_what_changes_no_items_does_not_move_a_session(
    repo: SessionRepository, clock: list[datetime]
) -> None:
    a = repo.create_session("alice", session_id="a")
    repo.create_session("alice", session_id="b")
    clock[0] += timedelta(seconds=1)
    a.pop_item()  # nothing to pop
    a.clear_session()  # nothing to clear
    a.add_items([])
    repo.update_metadata("alice", "a", {"title": "renamed"})  # a rename is not activity
    assert ids(repo.get_sessions("alice", order="updated")) == ["b", "a"]
    assert repo.get_session("alice", "a").updated_at == a.created_at  # type: ignore[union-attr]


def test_ties_in_activity_fall_back_to_creation_order(
    repo: SessionRepository, clock: list[datetime]
) -> None:
    made = [repo.create_session("alice") for _ in range(6)]
    clock[0] += timedelta(seconds=1)
    for s in made[1::2]:
        s.add_items(["x"])  # three sessions, one instant
    expected = ids(made[1::2][::-1] + made[0::2][::-1])
    assert ids(repo.get_sessions("alice", order="updated")) == expected
    assert ids(list(repo.iter_sessions("alice", order="updated", page_size=1))) == expected
    assert ids([s for o in range(0, 6, 4)
                for s in repo.get_sessions("alice", order="updated", limit=4, offset=o)]
               ) == expected


def test_a_keyset_walk_by_activity_yields_every_unwritten_session_once(
    repo: SessionRepository, clock: list[datetime]
) -> None:
    made = [repo.create_session("alice", session_id=f"s{n}") for n in range(7)]
    walk = repo.iter_sessions("alice", order="updated", page_size=2)
    seen = [next(walk).session_id for _ in range(3)]  # s6, s5, s4
    clock[0] += timedelta(seconds=1)
    made[5].add_items([1])  # seen: moves to the front, behind the walk
    made[1].add_items([1])  # not seen yet: moves to the front, out of the walk's way
    seen += [s.session_id for s in walk]
    assert seen == ["s6", "s5", "s4", "s3", "s2", "s0"]


def test_other_users_and_unowned_sessions_stay_out(repo: SessionRepository) -> None:
    repo.create_session("bob").add_items([1])
    mine = repo.create_session("alice")
    assert repo.get_sessions("alice", order="updated") == [mine]
    assert list(repo.iter_sessions("nobody", order="updated")) == []


@pytest.mark.parametrize("order", [None, 1, b"updated", ["updated"]])
def test_an_order_of_the_wrong_type_is_a_type_error(repo: SessionRepository, order: object
                                                     ) -> None:
    for call in (repo.get_sessions, repo.iter_sessions):
        with pytest.raises(TypeError, match="order must be a str"):
            call("alice", order=order)  # type: ignore[arg-type]


@pytest.mark.parametrize("order", ["", "Updated", "updated_at", "last", "created DESC"])
def test_an_unknown_order_is_a_value_error_naming_the_choices(repo: SessionRepository,
                                                               order: str) -> None:
    for call in (repo.get_sessions, repo.iter_sessions):  # at call time, not at next()
        with pytest.raises(ValueError, match=r"'created'.*'updated'"):
            call("alice", order=order)


# A clock that advances or stands still; sessions are created and written in
# any order; both orders, by offset pages and by keyset pages, agree with a
# plain sort of the model.
STEPS = st.lists(st.tuples(st.sampled_from(["create", "write", "pop"]),
                           st.integers(0, 9), st.booleans()), max_size=30)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40)
@given(steps=STEPS, page=st.integers(1, 4))
def test_both_orders_are_total_and_every_page_walk_partitions_them(
    kind: str, steps: list[tuple[str, int, bool]], page: int
) -> None:
    saved = _time.now
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    _time.now = lambda: now[0]  # type: ignore[assignment]
    try:
        with fresh(kind) as backend, backend.open() as repo:
            made: list[Session] = []
            created: dict[str, tuple[datetime, int]] = {}
            active: dict[str, datetime] = {}
            items: dict[str, int] = {}
            for action, pick, tick in steps:
                if tick:
                    now[0] += timedelta(milliseconds=1)
                if action == "create" or not made:
                    s = repo.create_session("alice")
                    made.append(s)
                    created[s.session_id] = (now[0], len(made))
                    active[s.session_id], items[s.session_id] = now[0], 0
                    continue
                s = made[pick % len(made)]
                if action == "write":
                    s.add_items([pick])
                    items[s.session_id] += 1
                    active[s.session_id] = now[0]
                elif s.pop_item() is not None:
                    items[s.session_id] -= 1
                    active[s.session_id] = now[0]
            by_created = sorted(created, key=lambda i: created[i], reverse=True)
            by_updated = sorted(created, key=lambda i: (active[i], created[i]), reverse=True)
            for order, expected in (("created", by_created), ("updated", by_updated)):
                assert ids(repo.get_sessions("alice", order=order)) == expected
                assert ids(list(repo.iter_sessions("alice", order=order, page_size=page))
                           ) == expected
                pages = [repo.get_sessions("alice", order=order, limit=page, offset=o)
                         for o in range(0, len(expected) + 1, page)]
                assert [i for p in pages for i in ids(p)] == expected
    finally:
        _time.now = saved  # type: ignore[assignment]
