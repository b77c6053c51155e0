"""Two repositories on one database against a plain in-memory model.

Every rule runs through one of the two repositories, chosen at random; after
every step both must agree with the model, so neither may cache what the other
changed. Session handles are kept across deletes, and a deleted id may be
created again by another user: an old handle must never see or change it.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from backends import KINDS, fresh
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sessions_dal import Session, _time
from sessions_dal.errors import SessionNotFoundError

USERS = st.sampled_from(["alice", "bob", "carol"])
ITEMS = st.lists(
    st.none() | st.integers() | st.text(max_size=5)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    max_size=4,
)
VIA = st.sampled_from([0, 1])


@dataclass
class ModelSession:
    session_id: str
    user_id: str
    stamp: datetime
    order: int
    items: list[Any] = field(default_factory=list)


class TwoRepositoriesAgreeWithModel(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self, kind: str = "sqlite") -> None:
        super().__init__()
        self.stack = ExitStack()
        backend = self.stack.enter_context(fresh(kind))
        self.repos = [self.stack.enter_context(backend.open()) for _ in range(2)]
        self.model: dict[str, ModelSession] = {}
        self.deleted: list[str] = []  # in deletion order: ids are random, so never sorted
        # Handles kept from creation, one per repository, used after deletion too.
        self.handles: dict[str, tuple[Session, Session]] = {}
        # Handles of sessions deleted and then created again under the same id.
        self.stale: list[Session] = []
        self.order = 0
        # A clock that repeats each instant twice, so ties in created_at happen.
        self.saved_clock = _time.now
        _time.now = self.clock  # type: ignore[assignment]

    def clock(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=self.order // 2)

    def teardown(self) -> None:
        _time.now = self.saved_clock  # type: ignore[assignment]
        self.stack.close()

    def handle(self, via: int, session_id: str) -> Session:
        return self.handles[session_id][via]

    def listing(self, user: str) -> list[str]:
        owned = [m for m in self.model.values() if m.user_id == user]
        owned.sort(key=lambda m: (m.stamp, m.order), reverse=True)
        return [m.session_id for m in owned]

    @rule(target=sessions, user=USERS, via=VIA, metadata=st.dictionaries(st.text(max_size=3),
                                                                          st.integers()))
    def create(self, user: str, via: int, metadata: dict[str, int]) -> str:
        stamp = self.clock()
        s = self.repos[via].create_session(user, metadata=metadata)
        assert s.metadata == metadata
        other = self.repos[1 - via].get_session(user, s.session_id)
        assert other is not None and other.to_dict() == s.to_dict()
        self.handles[s.session_id] = (s, other) if via == 0 else (other, s)
        self.model[s.session_id] = ModelSession(s.session_id, user, stamp, self.order)
        self.order += 1
        return s.session_id

    @precondition(lambda self: self.deleted)
    @rule(user=USERS, via=VIA, data=st.data())
    def create_again(self, user: str, via: int, data: st.DataObject) -> None:
        session_id = data.draw(st.sampled_from(self.deleted))
        stamp = self.clock()
        s = self.repos[via].create_session(user, session_id=session_id)
        other = self.repos[1 - via].get_session(user, session_id)
        assert other is not None
        old = self.handles[session_id]
        # A handle of the same user follows the session (even one that went
        # stale when another user had the id in between); another user's must not.
        self.stale = [h for h in self.stale if (h.session_id, h.user_id) != (session_id, user)]
        self.stale += [h for h in old if h.user_id != user]
        self.handles[session_id] = (s, other) if via == 0 else (other, s)
        self.model[session_id] = ModelSession(session_id, user, stamp, self.order)
        self.order += 1
        self.deleted.remove(session_id)

    @precondition(lambda self: self.stale)
    @rule(data=st.data(), items=ITEMS)
    def stale_handle_reaches_nothing(self, data: st.DataObject, items: list[Any]) -> None:
        handle = data.draw(st.sampled_from(self.stale))
        assert handle.get_items() == [] and handle.count_items() == 0
        for write in (lambda: handle.add_items(items or [1]), handle.pop_item,
                      handle.clear_session):
            with pytest.raises(SessionNotFoundError):
                write()

    @rule(session_id=sessions, items=ITEMS, via=VIA)
    def add_items(self, session_id: str, items: list[Any], via: int) -> None:
        handle = self.handle(via, session_id)
        if session_id in self.model:
            handle.add_items(items)
            self.model[session_id].items += items
        elif items:
            with pytest.raises(SessionNotFoundError):
                handle.add_items(items)

    @rule(session_id=sessions, via=VIA)
    def pop_item(self, session_id: str, via: int) -> None:
        model = self.model.get(session_id)
        if model is None:
            with pytest.raises(SessionNotFoundError):
                self.handle(via, session_id).pop_item()
            return
        expected = model.items.pop() if model.items else None
        assert self.handle(via, session_id).pop_item() == expected

    @rule(session_id=sessions, via=VIA)
    def clear(self, session_id: str, via: int) -> None:
        if session_id not in self.model:
            with pytest.raises(SessionNotFoundError):
                self.handle(via, session_id).clear_session()
            return
        self.handle(via, session_id).clear_session()
        self.model[session_id].items = []

    @rule(session_id=sessions, user=USERS, via=VIA)
    def delete_session(self, session_id: str, user: str, via: int) -> None:
        model = self.model.get(session_id)
        owned = model is not None and model.user_id == user
        assert self.repos[via].delete_session(user, session_id) is owned
        if owned:
            del self.model[session_id]
            self.deleted.append(session_id)

    @rule(user=USERS, via=VIA)
    def delete_user(self, user: str, via: int) -> None:
        gone = [m for m in self.model.values() if m.user_id == user]
        report = self.repos[via].delete_user(user)
        assert (report.sessions, report.items) == (len(gone), sum(len(m.items) for m in gone))
        for m in gone:
            del self.model[m.session_id]
            self.deleted.append(m.session_id)

    @rule(user=USERS, via=VIA, limit=st.integers(0, 5), offset=st.integers(0, 6))
    def list_page(self, user: str, via: int, limit: int, offset: int) -> None:
        page = self.repos[via].get_sessions(user, limit=limit, offset=offset)
        assert [s.session_id for s in page] == self.listing(user)[offset:offset + limit]

    @rule(user=USERS, via=VIA, page_size=st.integers(1, 4))
    def iterate(self, user: str, via: int, page_size: int) -> None:
        walked = [s.session_id for s in self.repos[via].iter_sessions(user, page_size=page_size)]
        assert walked == self.listing(user)

    @precondition(lambda self: self.deleted)
    @rule(via=VIA, data=st.data())
    def deleted_session_is_gone_for_everyone(self, via: int, data: st.DataObject) -> None:
        session_id = data.draw(st.sampled_from(self.deleted))
        for user in ("alice", "bob", "carol"):
            assert self.repos[via].get_session(user, session_id) is None
        assert self.handle(via, session_id).get_items() == []

    @rule(user=USERS, session_id=sessions, via=VIA)
    def get_one(self, user: str, session_id: str, via: int) -> None:
        model = self.model.get(session_id)
        found = self.repos[via].get_session(user, session_id)
        if model is None or model.user_id != user:
            assert found is None
        else:
            assert found is not None and found.user_id == user

    @invariant()
    def both_repositories_match_the_model(self) -> None:
        for repo in self.repos:
            for user in ("alice", "bob", "carol"):
                listed = repo.get_sessions(user)
                assert [s.session_id for s in listed] == self.listing(user)
                assert repo.count_sessions(user) == len(listed)
                for s in listed:
                    assert s.get_items() == self.model[s.session_id].items


@pytest.mark.parametrize("kind", KINDS)
def test_two_repositories_agree_with_a_model(kind: str) -> None:
    run_state_machine_as_test(
        lambda: TwoRepositoriesAgreeWithModel(kind),
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None),
    )
