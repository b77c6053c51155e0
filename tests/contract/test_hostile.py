"""Random calls with random arguments: only documented exceptions escape, state matches a model."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from backends import KINDS, fresh_repository
from hypothesis import given, note, settings
from hypothesis import strategies as st

from sessions_dal import Session, SessionRepository, SessionsDalError
from sessions_dal.errors import DatabaseError

DOCUMENTED = (TypeError, ValueError, SessionsDalError)
USERS = ["alice", "bob"]

ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(), st.text(max_size=4),
    st.sampled_from(["", "x" * 300, "a\x00b", "\ud800", "alice", "bob",
                     "'; DROP TABLE agent_users; --", "1.5"]),
    st.binary(max_size=3), st.lists(st.integers() | st.text(max_size=2), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers() | st.floats() | st.none(), max_size=2),
    st.tuples(st.integers()), st.frozensets(st.integers(), max_size=2),
)
REPO_METHODS = ["create_session", "get_session", "get_sessions", "iter_sessions",
                "count_sessions", "update_metadata", "delete_session", "delete_user",
                "claim_session", "get_unowned_session", "find_session", "get_users",
                "fork_session"]
SESSION_METHODS = ["add_items", "get_items", "iter_items", "pop_item", "clear_session",
                   "count_items"]


def plausible(name: str, known: list[str]) -> st.SearchStrategy[Any]:
    """Values a caller would pass for the parameter called ``name``."""
    pools: dict[str, st.SearchStrategy[Any]] = {
        "user_id": st.sampled_from(USERS),
        "session_id": st.sampled_from([*known, "missing"]),
        "limit": st.sampled_from([None, 0, 1, 3]),
        "offset": st.sampled_from([0, 1, 2]),
        "page_size": st.sampled_from([1, 2, 100]),
        "upto": st.sampled_from([None, 0, 1, 5]),
        "newest_first": st.booleans(),
        "metadata": st.sampled_from([None, {}, {"title": "t"}]),
        "items": st.lists(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
                          | st.integers() | st.text(max_size=3), max_size=3),
        "replace": st.booleans(),
    }
    return pools.get(name, ANYTHING)


def arguments(data: st.DataObject, func: Any, known: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for every parameter: two in three plausible, the rest anything at all."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        value = data.draw(plausible(name, known) if data.draw(st.integers(0, 2)) else ANYTHING)
        if param.kind is param.KEYWORD_ONLY:
            if data.draw(st.booleans()):
                kwargs[name] = value
        else:
            args.append(value)
    return args, kwargs


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=100)
@given(st.data())
def test_random_calls_raise_only_documented_errors_and_keep_state(kind: str, data: st.DataObject
                                                                 ) -> None:
    model: dict[str, tuple[str, list[Any]]] = {}  # session_id -> (user, items)
    order: list[str] = []  # creation order
    with fresh_repository(kind) as repo:
        for _ in range(data.draw(st.integers(1, 25))):
            # Sessions in creation order: ids are random uuid4s, so choosing among
            # them sorted by id would make the same draws pick different sessions.
            live = [sid for sid in order if sid in model]
            on_session = live and data.draw(st.booleans())
            if on_session:
                found = repo.find_session(data.draw(st.sampled_from(live)))
                assert found is not None
                session: Session = found
                name = data.draw(st.sampled_from(SESSION_METHODS))
                func = getattr(session, name)
            else:
                name = data.draw(st.sampled_from(REPO_METHODS))
                func = getattr(repo, name)
            args, kwargs = arguments(data, func, live)
            try:
                result = func(*args, **kwargs)
                if name in ("iter_sessions", "iter_items"):
                    result = list(result)
            except DatabaseError:
                raise  # no I/O fault here: a database-level error is a bug
            except DOCUMENTED as exc:
                result = error = True
                note(f"{name}(*{args!r}, **{kwargs!r}) raised {exc!r}")
            else:
                error = False
                note(f"{name}(*{args!r}, **{kwargs!r}) -> {result!r}")
            if not error:
                apply(model, order, name, args, kwargs, result,
                      session if on_session else None)
            check(repo, model, order)


def apply(model: dict[str, tuple[str, list[Any]]], order: list[str], name: str,
          args: list[Any], kwargs: dict[str, Any], result: Any, session: Session | None) -> None:
    """Update the model after a call that succeeded, checking what it returned."""
    if session is not None:
        items = model[session.session_id][1]
        if name == "add_items":
            items.extend(args[0])
        elif name == "pop_item":
            assert result == (items.pop() if items else None)
        elif name == "clear_session":
            items.clear()
        elif name == "get_items":
            limit, offset = args[0], kwargs.get("offset", 0)
            before = items[:max(len(items) - offset, 0)]
            assert result == (before if limit is None else before[-limit:] if limit else [])
        elif name == "iter_items":
            assert result == (items[::-1] if kwargs.get("newest_first") else items)
        elif name == "count_items":
            assert result == len(items)
        return
    if name == "create_session":
        model[result.session_id] = (args[0], [])
        if result.session_id in order:  # an id deleted earlier, created again
            order.remove(result.session_id)
        order.append(result.session_id)
    elif name == "delete_session":
        owned = args[1] in model and model[args[1]][0] == args[0]
        assert result is owned
        if owned:
            del model[args[1]]
    elif name == "delete_user":
        gone = [sid for sid, (u, _) in model.items() if u == args[0]]
        assert result.sessions == len(gone)
        for sid in gone:
            del model[sid]
    elif name == "count_sessions":
        assert result == sum(1 for u, _ in model.values() if u == args[0])
    elif name == "get_session":
        owned = args[1] in model and model[args[1]][0] == args[0]
        assert (result is not None) is owned
    elif name == "get_unowned_session":
        assert result is None  # every session here has an owner
    elif name == "fork_session":
        user, parent = args[0], args[1]
        assert model[parent][0] == user == result.user_id
        upto = kwargs.get("upto")
        copied = model[parent][1][:upto] if upto is not None else list(model[parent][1])
        assert result.metadata["forked_from"] == {"session_id": parent, "items": len(copied)}
        model[result.session_id] = (user, copied)
        order.append(result.session_id)
    elif name == "claim_session":  # no unowned sessions here: only re-claiming one's own
        assert args[1] in model and model[args[1]][0] == args[0] == result.user_id


def check(repo: SessionRepository, model: dict[str, tuple[str, list[Any]]],
          order: list[str]) -> None:
    for user in sorted(set(USERS) | {u for u, _ in model.values()}):
        expected = [sid for sid in reversed(order) if sid in model and model[sid][0] == user]
        listed = repo.get_sessions(user)
        assert [s.session_id for s in listed] == expected
        for s in listed:
            assert s.get_items() == model[s.session_id][1]
    assert sum(repo.count_sessions(u) for u in {u for u, _ in model.values()}) == len(model)
