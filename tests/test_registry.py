"""Backends register themselves: a third one needs its package and one line."""

from __future__ import annotations

import fake_backend
import pytest

from sessions_dal import SessionRepository, backends
from sessions_dal.backends import Backend, is_url
from sessions_dal.backends.sqlite import open_store as open_sqlite
from sessions_dal.cli import _is_file


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "BACKENDS", list(backends.BACKENDS))  # undone after
    backends.register(Backend("fake", "fake_backend", ("fake",),
                              options={"fast": "no durability at all"}))
    fake_backend.OPENED.clear()


def test_a_registered_backend_opens_by_its_scheme_with_its_own_options(registered: None
                                                                       ) -> None:
    with SessionRepository("FAKE://anything", sessions_table="chats",
                           messages_table="lines") as repo:
        session = repo.create_session("alice")
        session.add_items(["hi"])
        assert repo.get_sessions("alice")[0].get_items() == ["hi"]
        assert repo.info().backend == "fake"
    assert fake_backend.OPENED == [("fake://anything", {"fast": None})]  # scheme lower-cased
    SessionRepository("fake://y", options={"fast": True}).close()
    assert fake_backend.OPENED[-1] == ("fake://y", {"fast": True})
    assert is_url("fake://x") and not _is_file("fake://x")  # the command line asks the registry


def test_options_belong_to_their_backend(registered: None) -> None:
    with pytest.raises(ValueError, match=r"pool_size is postgresql's option .* not fake's"):
        SessionRepository("fake://x", pool_size=2)
    with pytest.raises(ValueError, match=r"synchronous is sqlite's option .* not fake's"):
        SessionRepository("fake://x", synchronous="FULL")
    with pytest.raises(ValueError, match="cannot open: pass one of fake://, postgresql://"):
        SessionRepository("nope://x")
    with pytest.raises(ValueError, match=r"'speed' is no backend's option \(fake's: fast\)"):
        SessionRepository("fake://x", options={"speed": 1})
    with pytest.raises(ValueError, match="pool_size is given twice"):
        SessionRepository("fake://x", pool_size=1, options={"pool_size": 2})
    with pytest.raises(TypeError, match="options must be a dict, not list"):
        SessionRepository("fake://x", options=[("fast", True)])  # type: ignore[arg-type]


def test_a_ready_store_is_taken_as_it_is() -> None:
    store = open_sqlite(":memory:", backends.Common(5.0, "agent_sessions", "agent_messages",
                                                    False), {"synchronous": "FULL"})
    with SessionRepository(store) as repo:
        repo.create_session("alice", session_id="s")
        assert repo.get_session("alice", "s") is not None and repo.path == ":memory:"
    with pytest.raises(ValueError, match="pass it alone"):
        SessionRepository(store, read_only=True)
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike .*, not int"):
        SessionRepository(42)  # type: ignore[arg-type]
    store.close()
    with pytest.raises(ValueError, match="the store passed is closed"):
        SessionRepository(store)
    with pytest.raises(ValueError, match="busy_timeout is a keyword of SessionRepository"):
        SessionRepository(":memory:", options={"busy_timeout": 3})
