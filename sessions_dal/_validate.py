"""Argument checks at the public edge, and strict JSON encoding.

Everything below the public methods trusts its arguments; everything a caller
passes goes through here first, so a bad value fails before any SQL runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any

from .errors import CorruptItemError, CorruptSessionError

MAX_ID_LENGTH = 255
"""The longest ``user_id`` or ``session_id`` accepted, in characters."""

MAX_JSON_DEPTH = 100
"""The deepest nesting of lists and dicts accepted in an item or metadata.

Python's ``json`` reads a value back with one C-level recursion per level,
bounded by a limit that differs between Python versions and grows with the
caller's own stack. Refusing deeper values when they are written keeps every
stored value readable from any caller."""

MAX_INT = 2**63 - 1
"""The largest ``limit``/``offset``/``page_size`` passed to the database; a
larger value means the same thing (everything, or nothing left)."""

MAX_JSON_LENGTH = 1_000_000_000
"""The longest stored JSON text of one item or metadata dict: SQLite's default
maximum string length (SQLITE_MAX_LENGTH), under PostgreSQL's 1 GB per value.
The text is ASCII, so characters and bytes agree."""


def check_id(name: str, value: object) -> str:
    """Return ``value`` if it is a valid ``user_id``/``session_id``, else raise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(
            f"{name} is {len(value)} characters long; the maximum is {MAX_ID_LENGTH}"
        )
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{name} must be valid Unicode text; it contains a lone surrogate"
        ) from None
    return value


_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters (newlines, tabs, escapes) and Unicode's line separators."""


def check_new_id(name: str, value: object) -> str:
    """:func:`check_id`, and more for a user id about to be stored: no control
    character and no leading or trailing blank, which would make ``"alice\n"``
    or ``" alice"`` a user of its own that no one can tell from ``"alice"``.
    Ids stored before (by an older version, or another program) stay readable.
    """
    check_id(name, value)
    assert isinstance(value, str)
    if value != value.strip() or _INVISIBLE.search(value):
        visible = _INVISIBLE.sub("", value).strip()
        raise ValueError(
            f"{name} {value!r} has a control character (a newline, a tab) or blanks at "
            "either end: it would name another user than the one it looks like; pass "
            + (f"{visible!r} or " if visible else "") + "another id of visible characters"
        )
    return value


def check_role(value: object) -> str:
    """Return ``value`` if it can name a PostgreSQL role in a GRANT, else raise."""
    if not isinstance(value, str):
        raise TypeError(f"role must be a str, not {type(value).__name__}")
    if not value or "\x00" in value:
        raise ValueError("role must be a non-empty name without NUL characters")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("role must be valid Unicode text; it contains a lone surrogate") from None
    if size > 63:  # PostgreSQL would cut it to 63 bytes: perhaps another role's name
        raise ValueError(f"role is {size} bytes long; PostgreSQL names have at most 63")
    if value.lower() == "public":
        raise ValueError(
            "role must name a role: PUBLIC is every role on the server; create one for the app"
        )
    return value


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    """Check an ``offset``/``page_size``: an ``int`` (never a ``bool``) >= ``minimum``.

    Values past :data:`MAX_INT` come back as ``MAX_INT``: no database holds
    that many rows, so the answer is the same, and the driver never overflows.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return min(int(value), MAX_INT)


def check_limit(value: object) -> int | None:
    """Check a ``limit``: ``None`` (no limit) or an ``int`` >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int or None, not {type(value).__name__}")
    return check_int("limit", value)


ORDERS = ("created", "updated")
"""The orders a user's sessions list in: by creation, or by last activity."""


def check_order(value: object) -> str:
    """Check an ``order``: one of :data:`ORDERS`."""
    if not isinstance(value, str):
        raise TypeError(f"order must be a str ('created' or 'updated'), not {type(value).__name__}")
    if value not in ORDERS:
        raise ValueError(
            f"order must be 'created' (newest first) or 'updated' (last active first), "
            f"got {value!r}"
        )
    return value


def check_seconds(name: str, value: object, *, maximum: float) -> float:
    """Check a duration in seconds: a real number, not a ``bool``, from 0 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not 0 <= seconds <= maximum:  # also refuses NaN
        raise ValueError(
            f"{name} must be a finite number of seconds from 0 to {maximum:,.0f}, got {value!r}"
        )
    return seconds


class _NotJSON(Exception):
    """Internal: carries the error type, message and path of a bad JSON value."""

    def __init__(self, error: type[Exception], message: str, *, nested: bool = False) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.path = ""
        # A path a hundred levels long helps nobody: name the outermost value.
        self.nested = nested


_SCALARS = (str, int, float, bool, type(None))


def _check_json(value: object, depth: int = 1) -> None:
    # Strict JSON that round-trips exactly: json.dumps would silently turn
    # tuples into lists and int keys into str keys, and accept NaN. Hot path
    # (every item of every add_items): exact-type checks first, recursion only
    # into containers.
    kind = type(value)
    if kind is dict or kind is list:
        if depth > MAX_JSON_DEPTH:
            raise _NotJSON(
                ValueError,
                f"is nested too deeply (more than {MAX_JSON_DEPTH} levels of lists and "
                "dicts); flatten it",
                nested=True,
            )
        children = value.items() if kind is dict else enumerate(value)  # type: ignore[attr-defined, arg-type]
        for key, child in children:
            if kind is dict and type(key) is not str and not isinstance(key, str):
                raise _NotJSON(
                    TypeError, f"has a {type(key).__name__} key {key!r}; JSON keys are str"
                )
            child_kind = type(child)
            if child_kind is str or child_kind is int or child_kind is bool or child is None:
                continue
            try:
                _check_json(child, depth + 1)
            except _NotJSON as exc:
                if not exc.nested or depth == 1:
                    exc.path = f"[{key!r}]{exc.path}"
                raise
        return
    if kind is float or isinstance(value, float):
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _NotJSON(ValueError, f"is {value!r}, which strict JSON does not allow")
        return
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, dict):
        # A subclass (OrderedDict, ...) is encoded from what its items() gives,
        # which it may override: check exactly that.
        _check_json(dict(value.items()), depth)
        return
    if isinstance(value, list):
        _check_json(list(value), depth)
        return
    hint = "; use a list" if isinstance(value, tuple) else ""
    raise _NotJSON(
        TypeError, f"is a {type(value).__name__}, which is not a JSON value{hint}"
    )


# One encoder for every call: json.dumps() with keyword arguments builds a new
# JSONEncoder each time. The output is what plain json.dumps writes.
def _not_json(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")  # _check_json refuses it first


def _make_encoder() -> Callable[[object], str]:
    """``json.dumps(value)``'s text (``allow_nan=False``), for values ``_check_json`` passed.

    ``json.dumps`` builds its C encoder again on every call, which is most of
    its cost on a small item (3x, measured). This builds it once, without the
    cycle check, which ``_check_json``'s depth limit makes moot; where the C
    encoder is missing, the pure-Python one does the same.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover (CPython always has it)
        return json.JSONEncoder(allow_nan=False).encode
    chunks = make(None, _not_json, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                  False, False, False)
    return lambda value: "".join(chunks(value, 0))


_encode = _make_encoder()


def encode_json(name: str, value: object) -> str:
    """Serialise one JSON value, or raise ``TypeError``/``ValueError`` naming ``name``.

    Accepted: ``dict`` (``str`` keys), ``list``, ``str``, ``int``, finite
    ``float``, ``bool`` and ``None``, nested at most :data:`MAX_JSON_DEPTH` levels.
    The text is what ``json.dumps`` writes, as openai-agents' SQLiteSession does.
    """
    try:
        _check_json(value)
        text = _encode(value)
    except _NotJSON as exc:
        raise exc.error(f"{name}{exc.path} {exc.message}") from None
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to store as JSON") from None
    except (ValueError, TypeError) as exc:  # an int past sys.get_int_max_str_digits(), ...
        raise ValueError(f"{name} cannot be stored as JSON: {exc}") from None
    _check_length(name, text)
    return text


def _check_length(name: str, text: str) -> None:
    if len(text) > MAX_JSON_LENGTH:
        raise ValueError(
            f"{name} is {len(text):,} characters as JSON; sessions_dal stores at most "
            f"{MAX_JSON_LENGTH:,}: split it into smaller items"
        )


def encode_items(items: object, name: str = "items") -> list[str]:
    """Encode every item of ``add_items`` (or of the argument ``name``) as the JSON
    text to store.

    The first bad item raises ``TypeError``/``ValueError`` naming its index.
    """
    if type(items) is not list:  # the usual case skips the ABC checks (hot path)
        if isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(
                f"{name} must be a list of JSON values, not {type(items).__name__}; "
                "to add one item, pass [item]"
            )
        if isinstance(items, Set):
            raise TypeError(
                f"{name} must be an ordered collection, not {type(items).__name__}: a set has "
                "no order, so the stored order would be arbitrary; pass a list"
            )
    texts: list[str] = []
    # The hot loop of a bulk add: no per-item name, no per-item function layers;
    # the index is only formatted when an item is refused.
    for item in items:
        try:
            _check_json(item)
            text = _encode(item)
        except (_NotJSON, RecursionError, ValueError, TypeError):
            text = encode_json(f"{name}[{len(texts)}]", item)  # raises, with the full message
        if len(text) > MAX_JSON_LENGTH:
            _check_length(f"{name}[{len(texts)}]", text)
        texts.append(text)
    return texts


def encode_metadata(metadata: object) -> str:
    """Encode session metadata: a ``dict`` with ``str`` keys and JSON values."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, not {type(metadata).__name__}")
    return encode_json("metadata", metadata)



def json_depth(value: object) -> int:
    """How deeply lists and dicts nest in a decoded JSON value (a scalar is 0).

    Walks with an explicit stack, so any depth is measured without recursion.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children: Iterable[object]
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def decode_metadata(session_id: str, text: object) -> dict[str, Any]:
    """A session's stored metadata, or :class:`CorruptSessionError` naming its row."""
    if text == "{}":  # most sessions', in every listing: no parser needed
        return {}
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError) as exc:
        raise _corrupt(session_id, f"metadata that is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise _corrupt(session_id, f"metadata that is a JSON {type(value).__name__}, not an object")
    return value


def corrupt_item(table: str, session_id: str, row_id: int, cause: BaseException,
                 then: str = "", layer: int | None = None) -> CorruptItemError:
    """The error for a stored item that is not JSON, naming its row in ``table``
    (or, with ``layer``, in the compacted history)."""
    where = (f"{table}.id = {row_id}" if layer is None else
             f"sessions_dal_history: layer = {layer}, id = {row_id}")
    return CorruptItemError(
        f"item {row_id} of session {session_id!r} ({where}) is not valid "
        f"JSON ({cause}); repair or delete that row{then}"
    )


def _corrupt(session_id: str, what: str) -> CorruptSessionError:
    return CorruptSessionError(
        f"session {session_id!r} (its agent_user_sessions row) has {what}; repair or "
        "delete that row with the database's own tool (sqlite3, psql)"
    )


# Letters, digits and underscores, not starting with a digit, and not sqlite_*
# (reserved by SQLite): always a plain identifier, whatever the SQL around it,
# and short enough for every backend's identifiers.
_IDENTIFIER = re.compile(r"(?!sqlite_)[A-Za-z_][A-Za-z0-9_]{0,62}", re.ASCII | re.IGNORECASE)
# Our own tables: a configured name may not collide with them.
_RESERVED = {"agent_users", "agent_user_sessions", "sessions_dal_migrations"}


def check_table_name(argument: str, name: object) -> str:
    """Return ``name`` if it is a safe table name, else raise ``TypeError``/``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, not {type(name).__name__}")
    if not _IDENTIFIER.fullmatch(name) or name.lower() in _RESERVED:
        raise ValueError(
            f"{argument} must be 1-63 letters, digits or underscores, not starting with a "
            f"digit or 'sqlite_', and not one of sessions_dal's own tables; got {name!r}"
        )
    return name
