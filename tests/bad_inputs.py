"""The bad-input catalogue: every public argument with values it must refuse.

Shared by the contract tests (each case on every backend) and the
reliability report, which counts them; a module of its own so that each
test folder runs alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessions_dal import MAX_ID_LENGTH, Session, SessionRepository
from sessions_dal._validate import MAX_JSON_DEPTH

OK = "alice"


class Key(str):
    """A str subclass used as a dict key: its value must still be checked."""


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BAD_IDS: list[tuple[object, type[Exception], str]] = [
    (None, TypeError, "must be a str, not NoneType"),
    (42, TypeError, "must be a str, not int"),
    (b"alice", TypeError, "must be a str, not bytes"),
    (["alice"], TypeError, "must be a str, not list"),
    ("", ValueError, "must not be empty"),
    ("x" * (MAX_ID_LENGTH + 1), ValueError, f"the maximum is {MAX_ID_LENGTH}"),
    ("ali\x00ce", ValueError, "must not contain NUL"),
    ("\ud800", ValueError, "lone surrogate"),
]

BAD_COUNTS: list[tuple[object, type[Exception], str]] = [
    (-1, ValueError, "must be >= 0, got -1"),
    (True, TypeError, "not bool"),
    (1.0, TypeError, "not float"),
    ("10", TypeError, "not str"),
]

BAD_METADATA: list[tuple[object, type[Exception], str]] = [
    ({"t": _nested(MAX_JSON_DEPTH)}, ValueError, "metadata['t'] is nested too deeply"),
    ([("title", "x")], TypeError, "metadata must be a dict or None, not list"),
    ("title", TypeError, "metadata must be a dict or None, not str"),
    ({1: "x"}, TypeError, "metadata has a int key 1"),
    ({"t": float("inf")}, ValueError, "metadata['t'] is inf"),
    ({"t": object()}, TypeError, "metadata['t'] is a object"),
    ({"t": (1, 2)}, TypeError, "metadata['t'] is a tuple, which is not a JSON value; use a list"),
]

BAD_ITEMS: list[tuple[object, type[Exception], str]] = [
    ("hello", TypeError, "items must be a list of JSON values, not str"),
    ({"role": "user"}, TypeError, "not dict; to add one item, pass [item]"),
    (b"[]", TypeError, "not bytes"),
    (None, TypeError, "not NoneType"),
    (5, TypeError, "not int"),
    ([{"a": float("nan")}], ValueError, "items[0]['a'] is nan"),
    ([1, -float("inf")], ValueError, "items[1] is -inf"),
    ([{"a": {"b": [{1, 2}]}}], TypeError, "items[0]['a']['b'][0] is a set"),
    ([{"when": __import__("datetime").date(2026, 1, 1)}], TypeError, "is a date"),
    ([{2: "int key"}], TypeError, "items[0] has a int key 2"),
    ([(1, 2)], TypeError, "items[0] is a tuple"),
    ([b"bytes"], TypeError, "items[0] is a bytes"),
    ({1, 2}, TypeError, "items must be an ordered collection, not set"),
    (frozenset({"a"}), TypeError, "ordered collection, not frozenset"),
    ({"a": 1}.keys(), TypeError, "ordered collection, not dict_keys"),
    ([{Key("k"): float("nan")}], ValueError, "items[0]['k'] is nan"),
    ([{"ok": 1, Key("k"): {"deep": {1, 2}}}], TypeError, "items[0]['k']['deep'] is a set"),
]


CASES: list[tuple[str, Callable[[SessionRepository, Session, Any], object], object,
                  type[Exception], str]] = []
for bad, error, message in BAD_IDS:
    CASES += [
        ("create_session.user_id", lambda r, s, v: r.create_session(v), bad, error, message),
        ("get_session.user_id",
         lambda r, s, v: r.get_session(v, s.session_id), bad, error, message),
        ("get_session.session_id", lambda r, s, v: r.get_session(OK, v), bad, error, message),
        ("get_sessions.user_id", lambda r, s, v: r.get_sessions(v), bad, error, message),
        ("iter_sessions.user_id", lambda r, s, v: r.iter_sessions(v), bad, error, message),
        ("count_sessions.user_id", lambda r, s, v: r.count_sessions(v), bad, error, message),
        ("delete_session.user_id",
         lambda r, s, v: r.delete_session(v, s.session_id), bad, error, message),
        ("delete_session.session_id", lambda r, s, v: r.delete_session(OK, v), bad, error, message),
        ("delete_user.user_id", lambda r, s, v: r.delete_user(v), bad, error, message),
        ("update_metadata.user_id",
         lambda r, s, v: r.update_metadata(v, s.session_id, {}), bad, error, message),
        ("update_metadata.session_id",
         lambda r, s, v: r.update_metadata(OK, v, {}), bad, error, message),
    ]
    if bad is not None:  # session_id=None asks for a new uuid4
        CASES.append(("create_session.session_id",
                      lambda r, s, v: r.create_session(OK, session_id=v), bad, error, message))
for bad, error, message in BAD_COUNTS:
    CASES += [
        ("get_sessions.limit", lambda r, s, v: r.get_sessions(OK, limit=v), bad, error, message),
        ("get_sessions.offset", lambda r, s, v: r.get_sessions(OK, offset=v), bad, error, message),
        ("get_items.limit", lambda r, s, v: s.get_items(v), bad, error, message),
    ]
    if bad != -1:
        CASES.append(("iter_sessions.page_size",
                      lambda r, s, v: r.iter_sessions(OK, page_size=v), bad, error, message))
CASES += [
    ("get_sessions.offset", lambda r, s, v: r.get_sessions(OK, offset=v), None, TypeError,
     "offset must be an int, not NoneType"),
    ("iter_sessions.page_size", lambda r, s, v: r.iter_sessions(OK, page_size=v), 0, ValueError,
     "page_size must be >= 1, got 0"),
    ("iter_sessions.page_size", lambda r, s, v: r.iter_sessions(OK, page_size=v), None, TypeError,
     "page_size must be an int, not NoneType"),
    ("update_metadata.replace",
     lambda r, s, v: r.update_metadata(OK, s.session_id, {}, replace=v), 1, TypeError,
     "replace must be a bool, not int"),
    ("add_items.items", lambda r, s, v: s.add_items(v), _nested(100_000), ValueError,
     "nested too deeply"),
    ("add_items.items", lambda r, s, v: s.add_items(v), [1, _nested(MAX_JSON_DEPTH)], ValueError,
     f"items[1][0] is nested too deeply (more than {MAX_JSON_DEPTH} levels"),
]
for bad, error, message in BAD_METADATA:
    CASES += [
        ("create_session.metadata",
         lambda r, s, v: r.create_session(OK, metadata=v), bad, error, message),
        ("update_metadata.metadata",
         lambda r, s, v: r.update_metadata(OK, s.session_id, v), bad, error, message),
        ("update_metadata.metadata(replace)",
         lambda r, s, v: r.update_metadata(OK, s.session_id, v, replace=True), bad, error, message),
    ]
for bad, error, message in BAD_ITEMS:
    CASES.append(("add_items.items", lambda r, s, v: s.add_items(v), bad, error, message))
