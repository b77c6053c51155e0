"""Scrolling back through a long conversation: get_items(limit, offset=...) and iter_items."""

from __future__ import annotations

import pytest
from backends import KINDS, Backend, fresh
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_dal import Session, SessionRepository
from sessions_dal.errors import CorruptItemError


@pytest.fixture
def session(repo: SessionRepository) -> Session:
    s = repo.create_session("alice")
    s.add_items(list(range(10)))
    return s


@pytest.mark.parametrize(("limit", "offset", "expected"), [
    (3, 0, [7, 8, 9]), (3, 3, [4, 5, 6]), (3, 9, [0]), (3, 10, []), (3, 99, []),
    (None, 7, [0, 1, 2]), (None, 0, list(range(10))), (0, 4, []), (20, 5, [0, 1, 2, 3, 4]),
])
def test_offset_counts_back_from_the_newest_and_pages_stay_oldest_first(
    session: Session, limit: int | None, offset: int, expected: list[int]
) -> None:
    assert session.get_items(limit, offset=offset) == expected


def test_pages_scrolled_back_join_into_the_whole_conversation(session: Session) -> None:
    pages = [session.get_items(4, offset=offset) for offset in (0, 4, 8)]
    assert pages == [[6, 7, 8, 9], [2, 3, 4, 5], [0, 1]]
    assert [item for page in reversed(pages) for item in page] == session.get_items()


def test_iter_items_walks_every_item_in_either_direction(session: Session) -> None:
    for size in (1, 3, 10, 11, 100):
        assert list(session.iter_items(page_size=size)) == list(range(10))
        assert list(session.iter_items(page_size=size, newest_first=True)) == list(
            range(9, -1, -1))


def test_iter_items_is_lazy_and_sees_appends_but_not_what_was_removed(session: Session) -> None:
    walk = session.iter_items(page_size=3)
    assert [next(walk) for _ in range(4)] == [0, 1, 2, 3]
    session.add_items([10])  # appended: reached at the end
    session.pop_item()  # ...and removed again before the walk got there
    session.add_items([11])
    assert list(walk) == [4, 5, 6, 7, 8, 9, 11]
    backwards = session.iter_items(page_size=2, newest_first=True)
    assert [next(backwards) for _ in range(3)] == [11, 9, 8]
    session.add_items([12])  # newer than where the walk stands: not yielded
    assert list(backwards) == [7, 6, 5, 4, 3, 2, 1, 0]


def test_a_walk_ends_when_the_session_stops_being_the_handles(repo: SessionRepository,
                                                               session: Session) -> None:
    walk = session.iter_items(page_size=4)
    assert [next(walk) for _ in range(4)] == [0, 1, 2, 3]
    repo.delete_session("alice", session.session_id)
    repo.create_session("bob", session_id=session.session_id).add_items(["bob's"])
    assert list(walk) == []
    assert session.get_items(5, offset=1) == []


def test_an_empty_session_has_nothing_to_scroll(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    assert s.get_items(5, offset=5) == [] and list(s.iter_items()) == []
    assert list(s.iter_items(newest_first=True)) == []


def test_a_corrupt_row_is_reported_by_every_way_of_reading(session: Session,
                                                            backend: Backend) -> None:
    bad = backend.insert_item_text(session.session_id, "{not json")
    session.add_items([10])
    for read in (lambda: session.get_items(2, offset=1), lambda: list(session.iter_items()),
                 lambda: list(session.iter_items(newest_first=True, page_size=1))):
        with pytest.raises(CorruptItemError, match=rf"agent_messages\.id = {bad}\)"):
            read()
    assert session.get_items(1) == [10] and session.get_items(9, offset=2) == list(range(1, 10))


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"offset": -1}, ValueError, "offset must be >= 0"),
    ({"offset": 1.0}, TypeError, "offset must be an int"),
    ({"offset": True}, TypeError, "offset must be an int"),
    ({"offset": None}, TypeError, "offset must be an int"),
])
def test_bad_offsets_are_refused(session: Session, kwargs: dict[str, object],
                                 error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        session.get_items(3, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"page_size": 0}, ValueError, "page_size must be >= 1"),
    ({"page_size": "10"}, TypeError, "page_size must be an int"),
    ({"newest_first": 1}, TypeError, "newest_first must be a bool"),
    ({"newest_first": None}, TypeError, "newest_first must be a bool"),
])
def test_bad_iter_items_arguments_are_refused_at_call_time(
    session: Session, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        session.iter_items(**kwargs)  # type: ignore[arg-type]


def test_get_items_takes_offset_only_by_keyword(session: Session) -> None:
    with pytest.raises(TypeError):
        session.get_items(3, 3)  # type: ignore[misc]


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30)
@given(batches=st.lists(st.lists(st.integers(), max_size=6), max_size=6),
       limit=st.integers(0, 8) | st.none(), offset=st.integers(0, 40),
       page=st.integers(1, 7))
def test_offsets_and_keyset_pages_partition_the_items(
    kind: str, batches: list[list[int]], limit: int | None, offset: int, page: int
) -> None:
    with fresh(kind) as backend, backend.open() as repo:
        s = repo.create_session("alice")
        model: list[int] = []
        for batch in batches:
            s.add_items(batch)
            model += batch
        end = len(model) - offset
        start = 0 if limit is None else max(0, end - limit)
        assert s.get_items(limit, offset=offset) == model[start:max(end, 0)]
        assert list(s.iter_items(page_size=page)) == model
        assert list(s.iter_items(page_size=page, newest_first=True)) == model[::-1]
        # pages scrolled back from the newest rebuild the whole
        pages = [s.get_items(page, offset=o) for o in range(0, len(model), page)]
        assert [i for p in reversed(pages) for i in p] == model
