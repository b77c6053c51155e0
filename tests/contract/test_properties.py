"""Properties that hold for any input: pagination, ids, JSON round trips."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest
from backends import KINDS, fresh_repository
from hypothesis import given
from hypothesis import strategies as st

from sessions_dal import _time
from sessions_dal._validate import MAX_ID_LENGTH
from sessions_dal.errors import SessionExistsError

USERS = ["alice", "bob", "carol"]
# A few instants, drawn in any order: equal stamps exercise the tie-break and
# decreasing ones a clock that steps back.
STAMPS = [datetime(2026, 1, d, tzinfo=timezone.utc) for d in range(1, 4)]


@pytest.mark.parametrize("kind", KINDS)
@given(
    owners_and_stamps=st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(STAMPS)),
                               max_size=40),
    limit=st.integers(min_value=1, max_value=12),
    page_size=st.integers(min_value=1, max_value=12),
)
def test_offset_pages_and_keyset_pages_partition_the_listing(
    kind: str, owners_and_stamps: list[tuple[str, datetime]], limit: int, page_size: int
) -> None:
    stamps = iter([stamp for _, stamp in owners_and_stamps])
    with fresh_repository(kind) as repo, mock.patch.object(
        _time, "now", side_effect=lambda: next(stamps)
    ):
        created = [(repo.create_session(owner), stamp, n)
                   for n, (owner, stamp) in enumerate(owners_and_stamps)]
        for user in USERS:
            # The specification: newest first, ties by insertion order, later first.
            expected = [s.session_id for s, _, _ in sorted(
                (c for c in created if c[0].user_id == user),
                key=lambda c: (c[1], c[2]), reverse=True)]
            listing = [s.session_id for s in repo.get_sessions(user)]
            assert listing == expected
            pages: list[str] = []
            for offset in range(0, len(expected) + limit, limit):
                page = repo.get_sessions(user, limit=limit, offset=offset)
                assert len(page) == min(limit, max(0, len(expected) - offset))
                pages += [s.session_id for s in page]
            assert pages == expected
            assert [s.session_id for s in repo.iter_sessions(user, page_size=page_size)] == expected
            assert repo.count_sessions(user) == len(expected)


@pytest.mark.parametrize("kind", KINDS)
@given(st.integers(min_value=1, max_value=60))
def test_generated_session_ids_are_distinct_uuid4_strings(kind: str, count: int) -> None:
    with fresh_repository(kind) as repo:
        ids = [repo.create_session(USERS[n % 3]).session_id for n in range(count)]
    assert len(set(ids)) == count
    for session_id in ids:
        parsed = uuid.UUID(session_id)
        assert parsed.version == 4 and str(parsed) == session_id


valid_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1, max_size=MAX_ID_LENGTH,
)


@pytest.mark.parametrize("kind", KINDS)
@given(session_ids=st.lists(valid_ids, min_size=1, max_size=10), data=st.data())
def test_explicit_ids_are_kept_and_duplicates_refused(
    kind: str, session_ids: list[str], data: st.DataObject
) -> None:
    with fresh_repository(kind) as repo:
        taken: set[str] = set()
        for session_id in session_ids:
            user = data.draw(st.sampled_from(USERS))
            if session_id in taken:
                try:
                    repo.create_session(user, session_id=session_id)
                except SessionExistsError:
                    continue
                raise AssertionError(f"duplicate {session_id!r} was accepted")
            assert repo.create_session(user, session_id=session_id).session_id == session_id
            taken.add(session_id)
        assert sum(repo.count_sessions(u) for u in USERS) == len(taken)


json_values = st.recursive(
    st.none() | st.booleans()
    | st.integers(min_value=-(2**128), max_value=2**128)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=())),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(alphabet=st.characters(blacklist_categories=())), children,
                      max_size=5),
    max_leaves=25,
)


def canonical(value: Any) -> str:
    # Equal *and* same text: catches lost key order, -0.0 turned to 0.0, 1.0 to 1.
    return json.dumps(value)


@pytest.mark.parametrize("kind", KINDS)
@given(batches=st.lists(st.lists(json_values, max_size=6), max_size=5),
       limit=st.integers(min_value=0, max_value=40))
def test_any_json_value_round_trips_and_limit_is_the_last_n(
    kind: str, batches: list[list[Any]], limit: int
) -> None:
    items = [item for batch in batches for item in batch]
    with fresh_repository(kind) as repo:
        s = repo.create_session("alice")
        for batch in batches:
            s.add_items(batch)
        back = s.get_items()
        assert back == items and [canonical(v) for v in back] == [canonical(v) for v in items]
        latest = s.get_items(limit=limit)
        expected = items[-limit:] if limit else []
        assert [canonical(v) for v in latest] == [canonical(v) for v in expected]


@pytest.mark.parametrize("kind", KINDS)
@given(metadata=st.dictionaries(st.text(), json_values, max_size=6))
def test_any_metadata_round_trips(kind: str, metadata: dict[str, Any]) -> None:
    with fresh_repository(kind) as repo:
        s = repo.create_session("alice", metadata=metadata)
        (listed,) = repo.get_sessions("alice")
    assert canonical(s.metadata) == canonical(listed.metadata) == canonical(metadata)
