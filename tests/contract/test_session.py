"""Session: items in order, atomic writes, and openai-agents' view of the same rows."""

from __future__ import annotations

import json
import threading

import pytest
from backends import Backend

from sessions_dal import Session, SessionRepository
from sessions_dal.errors import CorruptItemError, SessionNotFoundError


@pytest.fixture
def session(repo: SessionRepository) -> Session:
    return repo.create_session("alice", metadata={"title": "Trip"})


def test_items_come_back_in_the_order_they_were_added(session: Session) -> None:
    session.add_items([{"n": 1}, {"n": 2}])
    session.add_items([{"n": 3}])
    assert session.get_items() == [{"n": 1}, {"n": 2}, {"n": 3}]


@pytest.mark.parametrize(("limit", "expected"), [(None, [0, 1, 2, 3, 4]), (0, []), (1, [4]),
                                                 (3, [2, 3, 4]), (5, [0, 1, 2, 3, 4]),
                                                 (99, [0, 1, 2, 3, 4])])
def test_get_items_limit_is_the_latest_n_oldest_first(
    session: Session, limit: int | None, expected: list[int]
) -> None:
    session.add_items([0, 1, 2, 3, 4])
    assert session.get_items(limit) == expected
    assert session.get_items(limit=limit) == expected


def test_items_round_trip_exactly(session: Session) -> None:
    item = {"z": 1, "a": [1.5, -0.0, True, None, "é\u2028🙂"], "m": {"b": 2, "a": 1},
            "big": 2**70, "lone": "\ud800"}
    session.add_items([item])
    (back,) = session.get_items()
    assert back == item
    assert list(back) == ["z", "a", "m", "big", "lone"] and list(back["m"]) == ["b", "a"]


def test_items_are_stored_as_openai_agents_writes_them(session: Session, backend: Backend
                                                        ) -> None:
    item = {"role": "user", "content": "héllo"}
    session.add_items([item])
    assert backend.stored_items(session.session_id) == [json.dumps(item)]


def test_one_bad_item_fails_the_whole_call_and_writes_nothing(
    session: Session, backend: Backend
) -> None:
    session.add_items([{"ok": 1}])
    before, updated = backend.snapshot(), session.updated_at
    with pytest.raises(TypeError, match=r"items\[2\]\['x'\] is a set"):
        session.add_items([{"ok": 2}, {"ok": 3}, {"x": {1}}])
    with pytest.raises(ValueError, match=r"items\[1\]\[0\] is nan"):
        session.add_items([{"ok": 2}, [float("nan")]])
    assert backend.snapshot() == before
    assert session.updated_at == updated
    assert session.get_items() == [{"ok": 1}]


def test_add_items_accepts_any_iterable_of_items(session: Session) -> None:
    session.add_items({"n": n} for n in range(3))
    session.add_items(({"n": 3},))
    assert session.get_items() == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


def test_add_items_with_nothing_changes_nothing(session: Session, backend: Backend) -> None:
    before = backend.snapshot()
    session.add_items([])
    assert backend.snapshot() == before


def test_add_items_moves_updated_at(
    session: Session, repo: SessionRepository, backend: Backend
) -> None:
    created = session.updated_at
    session.add_items([1])
    assert session.updated_at > created
    again = repo.get_session("alice", session.session_id)
    assert again is not None and again.updated_at == session.updated_at
    assert again.created_at == session.created_at


def test_pop_item_removes_and_returns_the_latest(session: Session) -> None:
    session.add_items([{"n": 1}, {"n": 2}])
    before = session.updated_at
    assert session.pop_item() == {"n": 2}
    assert session.updated_at > before
    assert session.get_items() == [{"n": 1}]
    assert session.pop_item() == {"n": 1}
    assert session.pop_item() is None
    assert session.get_items() == []


def test_pop_item_returns_falsy_items_too(session: Session) -> None:
    session.add_items([None, 0, "", []])
    assert [session.pop_item() for _ in range(4)] == [[], "", 0, None]


def test_sessions_do_not_share_items(repo: SessionRepository, session: Session) -> None:
    other = repo.create_session("alice")
    session.add_items([1, 2])
    other.add_items([3])
    assert other.pop_item() == 3
    other.clear_session()
    assert session.get_items() == [1, 2]


def test_clear_session_keeps_the_session_and_its_metadata(
    session: Session, repo: SessionRepository
) -> None:
    session.add_items([1, 2, 3])
    session.clear_session()
    assert session.get_items() == []
    again = repo.get_session("alice", session.session_id)
    assert again is not None and again.metadata == {"title": "Trip"}
    session.add_items([4])
    assert session.get_items() == [4]


def test_corrupt_row_is_reported_never_skipped(session: Session, backend: Backend) -> None:
    session.add_items([{"n": 1}])
    bad_id = backend.insert_item_text(session.session_id, "{not json")
    with pytest.raises(CorruptItemError, match=rf"agent_messages\.id = {bad_id}\) is not valid"):
        session.get_items()
    before = backend.snapshot()
    with pytest.raises(CorruptItemError):
        session.pop_item()
    assert backend.snapshot() == before  # the bad row stays, for repair
    assert session.get_items(limit=0) == []


def test_reads_what_openai_agents_wrote_including_nan(session: Session, backend: Backend
                                                       ) -> None:
    for text in ['{"n": NaN}', json.dumps({"a": "é"}, ensure_ascii=True)]:
        backend.insert_item_text(session.session_id, text)
    first, second = session.get_items()
    assert first["n"] != first["n"] and second == {"a": "é"}


def test_survives_openai_agents_clear_session(
    session: Session, repo: SessionRepository, backend: Backend
) -> None:
    # SQLiteSession.clear_session() deletes the messages and the agent_sessions
    # row, with foreign keys off. Owner and metadata must survive it.
    session.add_items([1])
    backend.clear_like_agents(session.session_id)
    again = repo.get_session("alice", session.session_id)
    assert again is not None and again.metadata == {"title": "Trip"}
    again.add_items([2])
    assert session.get_items() == [2]
    assert repo.get_unowned_sessions() == []  # its row is back, and still alice's
    assert repo.check() == []


def test_session_handle_works_in_another_thread(session: Session) -> None:
    t = threading.Thread(target=session.add_items, args=([{"from": "thread"}],))
    t.start()
    t.join()
    assert session.get_items() == [{"from": "thread"}]


def test_equality_hash_and_to_dict(session: Session, repo: SessionRepository) -> None:
    again = repo.get_session("alice", session.session_id)
    assert again == session and hash(again) == hash(session)
    assert session != repo.create_session("alice")
    assert session != session.session_id
    assert session.to_dict() == {
        "session_id": session.session_id,
        "user_id": "alice",
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "metadata": {"title": "Trip"},
    }


# -- a handle stays bound to its owner ----------------------------------------


def test_stale_handle_never_reaches_another_users_session_of_the_same_id(
    repo: SessionRepository,
) -> None:
    alices = repo.create_session("alice", session_id="t")
    alices.add_items(["alice's"])
    assert repo.delete_session("alice", "t")
    bobs = repo.create_session("bob", session_id="t")
    bobs.add_items(["bob's 1", "bob's 2"])
    assert alices.get_items() == [] and alices.get_items(1) == [] and alices.count_items() == 0
    for write in (lambda: alices.add_items(["x"]), alices.pop_item, alices.clear_session):
        with pytest.raises(SessionNotFoundError, match="user 'alice' no longer has session 't'"):
            write()
    assert bobs.get_items() == ["bob's 1", "bob's 2"]
    # The same user's handle follows the session she creates again.
    assert repo.delete_session("bob", "t")
    again = repo.create_session("alice", session_id="t")
    alices.add_items(["new"])
    assert again.get_items() == ["new"]


def test_writes_on_a_deleted_session_raise_and_reads_are_empty(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items([1])
    repo.delete_user("alice")
    assert s.get_items() == [] and s.count_items() == 0
    for write in (lambda: s.add_items([2]), s.pop_item, s.clear_session):
        with pytest.raises(SessionNotFoundError):
            write()
    assert repo.get_sessions("alice") == []


def test_unowned_handle_stops_once_a_user_claims_the_session(
    repo: SessionRepository, backend: Backend
) -> None:
    backend.write_like_agents("chat", ["1"])
    unowned = repo.get_unowned_session("chat")
    assert unowned is not None and unowned.get_items() == [1]
    claimed = repo.claim_session("bob", "chat")
    assert unowned.get_items() == [] and unowned.count_items() == 0
    for write in (lambda: unowned.add_items([2]), unowned.pop_item, unowned.clear_session):
        with pytest.raises(SessionNotFoundError, match="claimed by a user"):
            write()
    assert claimed.get_items() == [1]
