"""fork_session: branching a conversation, on every backend."""

from __future__ import annotations

import threading
import uuid

import pytest
from backends import Backend

from sessions_dal import Session, SessionRepository
from sessions_dal.errors import SessionNotFoundError

ITEMS = [{"role": "user", "content": "Rome?"}, {"role": "assistant", "content": "Yes."},
         {"role": "user", "content": "By plane?"}, {"role": "assistant", "content": "Or train."}]


@pytest.fixture
def trip(repo: SessionRepository) -> Session:
    s = repo.create_session("alice", session_id="trip", metadata={"title": "Trip"})
    s.add_items(ITEMS[:2])
    s.add_items(ITEMS[2:])
    return s


@pytest.mark.parametrize(("upto", "copied"), [(None, 4), (0, 0), (1, 1), (3, 3), (4, 4),
                                              (99, 4)])
def test_a_fork_copies_the_first_items_in_order_and_leaves_the_original(
    repo: SessionRepository, trip: Session, backend: Backend, upto: int | None, copied: int
) -> None:
    before = trip.get_items()
    branch = repo.fork_session("alice", "trip", upto=upto)
    assert branch.get_items() == ITEMS[:copied]
    assert branch.metadata == {"forked_from": {"session_id": "trip", "items": copied}}
    assert branch.user_id == "alice" and uuid.UUID(branch.session_id).version == 4
    assert branch.created_at == branch.updated_at
    assert trip.get_items() == before and repo.get_session("alice", "trip") == trip
    again = repo.get_session("alice", branch.session_id)
    assert again is not None and again.to_dict() == branch.to_dict()
    assert repo.get_sessions("alice") == [branch, trip]


def test_the_branch_and_the_original_go_their_own_ways(repo: SessionRepository,
                                                       trip: Session) -> None:
    branch = repo.fork_session("alice", "trip", upto=2)
    branch.add_items([{"role": "user", "content": "By train?"}])
    trip.pop_item()
    assert branch.get_items() == [*ITEMS[:2], {"role": "user", "content": "By train?"}]
    assert trip.get_items() == ITEMS[:3]
    assert branch.pop_item() == {"role": "user", "content": "By train?"}
    repo.delete_session("alice", "trip")
    assert branch.get_items() == ITEMS[:2]  # a copy, not a reference
    assert repo.fork_session("alice", branch.session_id).get_items() == ITEMS[:2]


def test_metadata_given_is_kept_and_the_record_of_the_origin_wins(
    repo: SessionRepository, trip: Session
) -> None:
    branch = repo.fork_session("alice", "trip", upto=1, metadata={
        "title": "Trip (train)", "forked_from": "something else", "n": [1, 2]})
    assert branch.metadata == {"title": "Trip (train)", "n": [1, 2],
                               "forked_from": {"session_id": "trip", "items": 1}}
    assert repo.get_session("alice", branch.session_id).metadata == branch.metadata  # type: ignore[union-attr]


def test_forking_a_session_that_is_not_the_users_raises_and_writes_nothing(
    repo: SessionRepository, trip: Session, backend: Backend
) -> None:
    repo.create_session("bob", session_id="bobs").add_items([1])
    backend.write_like_agents("unowned", ["1"])
    before = backend.snapshot()
    for user, session_id in [("bob", "trip"), ("alice", "bobs"), ("alice", "nope"),
                             ("carol", "trip"), ("alice", "unowned")]:
        with pytest.raises(SessionNotFoundError, match=f"user '{user}' has no session"):
            repo.fork_session(user, session_id)
    assert backend.snapshot() == before


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"upto": -1}, ValueError, "upto must be >= 0"),
    ({"upto": 1.5}, TypeError, "upto must be an int"),
    ({"upto": True}, TypeError, "upto must be an int"),
    ({"metadata": ["x"]}, TypeError, "metadata must be a dict"),
    ({"metadata": {"x": float("nan")}}, ValueError, "metadata"),
])
def test_bad_arguments_are_refused_before_anything_is_written(
    repo: SessionRepository, trip: Session, backend: Backend, kwargs: dict[str, object],
    error: type[Exception], message: str
) -> None:
    before = backend.snapshot()
    with pytest.raises(error, match=message):
        repo.fork_session("alice", "trip", **kwargs)  # type: ignore[arg-type]
    assert backend.snapshot() == before


def test_a_fork_racing_appends_copies_a_whole_prefix(backend: Backend) -> None:
    # Appends from other connections land before or after the fork, never inside:
    # the copy is always whole batches, in order.
    with backend.open() as setup:
        setup.create_session("alice", session_id="busy").add_items([0])
    stop = threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            with backend.open() as repo:
                s = repo.get_session("alice", "busy")
                assert s is not None
                n = 1
                while not stop.is_set():
                    s.add_items([n, n + 1, n + 2])
                    n += 3
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        with backend.open() as repo:
            for _ in range(15):
                branch = repo.fork_session("alice", "busy")
                items = branch.get_items()
                assert items == list(range(len(items))) and len(items) % 3 == 1
                assert branch.metadata["forked_from"]["items"] == len(items)
    finally:
        stop.set()
        writer.join(30)
    assert errors == []
