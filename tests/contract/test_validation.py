"""Bad arguments raise TypeError/ValueError naming the argument, and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from backends import Backend
from bad_inputs import CASES, OK, _nested

from sessions_dal import MAX_ID_LENGTH, Session, SessionRepository
from sessions_dal._validate import MAX_INT, MAX_JSON_DEPTH


@pytest.mark.parametrize(
    ("call", "bad", "error", "message"),
    [case[1:] for case in CASES],
    ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)],
)
def test_bad_argument_is_refused_and_the_database_is_unchanged(
    repo: SessionRepository,
    backend: Backend,
    call: Callable[[SessionRepository, Session, Any], object],
    bad: object,
    error: type[Exception],
    message: str,
) -> None:
    s = repo.create_session(OK, metadata={"title": "kept"})
    s.add_items([{"role": "user", "content": "kept"}])
    before = backend.snapshot()
    with pytest.raises(error) as info:
        call(repo, s, bad)
    assert type(info.value) is error
    assert message in str(info.value)
    assert backend.snapshot() == before


def test_the_catalogue_covers_every_public_argument() -> None:
    covered = {case[0].split("(")[0] for case in CASES}
    assert covered == {
        "create_session.user_id", "create_session.session_id", "create_session.metadata",
        "get_session.user_id", "get_session.session_id", "get_sessions.user_id",
        "get_sessions.limit", "get_sessions.offset", "iter_sessions.user_id",
        "iter_sessions.page_size", "count_sessions.user_id", "delete_session.user_id",
        "delete_session.session_id", "delete_user.user_id", "update_metadata.user_id",
        "update_metadata.session_id", "update_metadata.metadata", "update_metadata.replace",
        "get_items.limit", "add_items.items",
    }


@pytest.mark.parametrize("where", ["items", "metadata"])
def test_item_or_metadata_larger_than_sqlite_stores_is_refused(
    repo: SessionRepository, backend: Backend, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # SQLite's limit is 1e9 characters; lower ours so the test allocates little.
    monkeypatch.setattr("sessions_dal._validate.MAX_JSON_LENGTH", 10_000)
    s = repo.create_session(OK)
    s.add_items([{"fits": "x" * 9_000}])
    before = backend.snapshot()
    call = (
        (lambda: s.add_items([1, {"big": "x" * 10_000}])) if where == "items"
        else (lambda: repo.update_metadata(OK, s.session_id, {"big": "x" * 10_000}))
    )
    with pytest.raises(ValueError,
                       match=r"is 10,0\d\d characters as JSON; sessions_dal stores at most"):
        call()
    assert backend.snapshot() == before


def test_large_valid_items_round_trip(repo: SessionRepository) -> None:
    big = {"text": "é" * 2_000_000, "list": list(range(100_000))}
    s = repo.create_session(OK)
    s.add_items([big, big])
    assert s.get_items(limit=1) == [big]


def test_longest_id_is_accepted(repo: SessionRepository) -> None:
    longest = "x" * MAX_ID_LENGTH
    s = repo.create_session(longest, session_id=longest)
    assert repo.get_session(longest, longest) == s


def test_deepest_accepted_nesting_is_stored_and_read_back(repo: SessionRepository) -> None:
    deepest = _nested(MAX_JSON_DEPTH - 1)  # the item itself is the first level
    s = repo.create_session(OK, metadata={"t": _nested(MAX_JSON_DEPTH - 2)})
    s.add_items([deepest])
    assert s.get_items() == [deepest]
    assert repo.get_sessions(OK)[0].metadata == {"t": _nested(MAX_JSON_DEPTH - 2)}


@pytest.mark.parametrize("huge", [2**63 - 1, 2**63, 2**64, 10**100])
def test_huge_counts_mean_everything_and_never_overflow(repo: SessionRepository, huge: int
                                                        ) -> None:
    s = repo.create_session(OK)
    s.add_items([1, 2, 3])
    assert repo.get_sessions(OK, limit=huge) == [s]
    assert repo.get_sessions(OK, offset=huge) == []
    assert repo.get_users(limit=huge, offset=0)[0].user_id == OK
    assert repo.get_unowned_sessions(limit=huge, offset=huge) == []
    assert list(repo.iter_sessions(OK, page_size=huge)) == [s]
    assert s.get_items(huge) == [1, 2, 3]
    assert MAX_INT == 2**63 - 1


def test_dict_and_list_subclasses_are_stored_as_plain_json(repo: SessionRepository) -> None:
    from collections import OrderedDict

    class Items(list):  # type: ignore[type-arg]
        pass

    s = repo.create_session(OK)
    s.add_items(Items([OrderedDict(b=1, a=2), Items([1])]))
    assert s.get_items() == [{"b": 1, "a": 2}, [1]]


def test_an_integer_too_long_for_json_is_refused(repo: SessionRepository) -> None:
    s = repo.create_session(OK)
    with pytest.raises(ValueError, match=r"items\[0\] cannot be stored as JSON: Exceeds"):
        s.add_items([10**5000])
    assert s.get_items() == []


def test_a_caller_deep_in_its_own_stack_gets_a_clear_error(repo: SessionRepository) -> None:
    import sys

    s = repo.create_session(OK)
    deep = _nested(90)

    def recurse(depth: int) -> None:
        if depth:
            recurse(depth - 1)
        else:
            s.add_items([deep])

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        with pytest.raises(ValueError, match="is nested too deeply"):
            recurse(40)
    finally:
        sys.setrecursionlimit(limit)
    assert s.get_items() == []


def test_a_dict_subclass_is_checked_as_json_will_write_it(repo: SessionRepository) -> None:
    import datetime

    class Lying(dict):  # type: ignore[type-arg]
        def items(self) -> Any:
            return [("when", datetime.date(2026, 1, 1))]

    s = repo.create_session(OK)
    with pytest.raises(TypeError, match=r"items\[1\]\['when'\] is a date"):
        s.add_items([1, Lying(k=1)])
    assert s.get_items() == []
