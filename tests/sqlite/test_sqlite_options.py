"""Options of a SQLite repository: checked before anything is opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import sqlite_db

from sessions_dal import SessionRepository
from sessions_dal.backends.sqlite import MAX_BUSY_TIMEOUT


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"path": None}, TypeError,
         "path must be a str or os.PathLike (or a store, a backend's open_store()), not NoneType"),
        ({"path": b"x.db"}, TypeError, "not bytes"),
        ({"path": ""}, ValueError, "use ':memory:'"),
        ({"path": ":memory:", "busy_timeout": -1}, ValueError, "busy_timeout must be a finite"),
        ({"path": ":memory:", "busy_timeout": float("nan")}, ValueError, "busy_timeout"),
        ({"path": ":memory:", "busy_timeout": "5"}, TypeError, "busy_timeout must be a number"),
        ({"path": ":memory:", "busy_timeout": True}, TypeError, "not bool"),
        ({"path": ":memory:", "busy_timeout": MAX_BUSY_TIMEOUT + 1}, ValueError,
         "from 0 to 2,147,483"),
        ({"path": ":memory:", "busy_timeout": 10**400}, ValueError, "busy_timeout must be"),
        ({"path": ":memory:", "busy_timeout": float("inf")}, ValueError, "busy_timeout"),
        ({"path": ":memory:", "read_only": True}, ValueError, "read_only needs a database file"),
        ({"path": ":memory:", "read_only": 1}, TypeError, "read_only must be a bool"),
        ({"path": "x\x00.db"}, ValueError, "path must not contain NUL"),
        ({"path": ":memory:", "synchronous": "FAST"}, ValueError, "synchronous must be one of"),
        ({"path": ":memory:", "synchronous": "NORMAL; DROP TABLE x"}, ValueError, "synchronous"),
        ({"path": ":memory:", "synchronous": 1}, TypeError, "synchronous must be a str"),
    ],
)
def test_bad_repository_options(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        SessionRepository(**kwargs)
    assert message in str(info.value)


def test_positional_options_are_refused(tmp_path: Path) -> None:
    # Keyword-only options: a positional call cannot silently change meaning
    # when an option is added (the fault of the declined upstream change).
    with pytest.raises(TypeError):
        SessionRepository(tmp_path / "x.db", 5.0)  # type: ignore[misc]
    with SessionRepository(tmp_path / "x.db") as repo, pytest.raises(TypeError):
        repo.create_session("alice", "session-id")  # type: ignore[misc]


def test_longest_busy_timeout_is_honoured_not_wrapped(tmp_path: Path) -> None:
    with SessionRepository(tmp_path / "x.db", busy_timeout=MAX_BUSY_TIMEOUT) as repo:
        assert sqlite_db(repo).fetchone("PRAGMA busy_timeout")[0] == 2_147_483_000  # type: ignore[attr-defined]
