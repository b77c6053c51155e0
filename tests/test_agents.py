"""Interop with the real openai-agents package: SQLiteSession on the same file, and the Runner."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from backends import Backend
from helpers import rows

from sessions_dal import Session, SessionRepository

agents = pytest.importorskip("agents")

from agents import Agent, Runner, SQLiteSession  # noqa: E402
from agents.extensions.memory import AdvancedSQLiteSession  # noqa: E402
from agents.memory import SessionSettings  # noqa: E402
from agents.testing import ScriptedModel, assistant_message  # noqa: E402

from sessions_dal.agents import AgentsSession  # noqa: E402

agents.set_tracing_disabled(True)

MESSAGES = "SELECT id, session_id, message_data FROM agent_messages ORDER BY id"


@pytest.fixture(autouse=True)
def default_loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Runner.run_sync() runs on the thread's default loop and leaves it open on
    # purpose; give every test its own and close it, so none leaks.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def run(coro: Any) -> Any:
    """Await ``coro`` on the test's default loop (the one run_sync uses too)."""
    return asyncio.get_event_loop_policy().get_event_loop().run_until_complete(coro)


class Peer:
    """A real SQLiteSession on a file, closed after each use."""

    def __init__(self, path: Path, session_id: str, **kwargs: Any) -> None:
        self.path, self.session_id, self.kwargs = path, session_id, kwargs

    def __call__(self, method: str, *args: Any) -> Any:
        session = SQLiteSession(self.session_id, self.path, **self.kwargs)
        try:
            return run(getattr(session, method)(*args))
        finally:
            session.close()


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel([[assistant_message("Hello!", item_id="m1")],
                          [assistant_message("Rome, then.", item_id="m2")],
                          [assistant_message("Paris, then.", item_id="m3")]])


# -- both libraries on one file ------------------------------------------------------


def test_file_written_by_sqlite_session_is_adopted_in_place(db_path: Path) -> None:
    items = [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": [1, 2.5]}]
    Peer(db_path, "legacy")("add_items", items)
    Peer(db_path, "other")("add_items", [{"n": 1}])
    before = rows(db_path, MESSAGES)
    with SessionRepository(db_path) as repo:
        assert rows(db_path, MESSAGES) == before  # message_data byte for byte, same ids
        legacy = repo.get_unowned_session("legacy")
        assert legacy is not None and legacy.get_items() == items
        repo.claim_session("alice", "legacy", metadata={"title": "Imported"})
    # SQLiteSession still reads and writes the adopted file.
    assert Peer(db_path, "legacy")("get_items") == items
    Peer(db_path, "legacy")("add_items", [{"n": 3}])
    with SessionRepository(db_path) as repo:
        (s,) = repo.get_sessions("alice")
        assert s.get_items() == [*items, {"n": 3}]


def test_sqlite_session_sees_what_sessions_dal_wrote_and_the_reverse(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice", metadata={"title": "Trip"})
        s.add_items([{"n": 1}, {"n": 2}])
        peer = Peer(db_path, s.session_id)
        assert peer("get_items") == [{"n": 1}, {"n": 2}]
        peer("add_items", [{"n": 3}])
        assert s.get_items() == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert peer("pop_item") == {"n": 3}
        assert s.pop_item() == {"n": 2}
        assert peer("get_items", 5) == [{"n": 1}]


def test_sqlite_session_clear_keeps_owner_and_metadata(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice", metadata={"title": "Trip"})
        s.add_items([{"n": 1}])
        peer = Peer(db_path, s.session_id)
        peer("clear_session")  # deletes the agent_sessions row too
        again = repo.get_session("alice", s.session_id)
        assert again is not None and again.metadata == {"title": "Trip"}
        assert again.get_items() == []
        peer("add_items", [{"n": 2}])
        s.add_items([{"n": 3}])
        assert repo.get_session("alice", s.session_id).get_items() == [  # type: ignore[union-attr]
            {"n": 2}, {"n": 3}]
        assert repo.get_unowned_sessions() == []
        assert repo.check() == []


def test_sqlite_session_writes_move_the_session_to_the_front(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice")
        other = repo.create_session("alice")
        peer = Peer(db_path, s.session_id)
        for method, args in [("add_items", ([{"n": 1}, {"n": 2}],)), ("pop_item", ()),
                             ("clear_session", ())]:
            other.add_items([{"n": 0}])  # now other is the last active
            assert repo.get_sessions("alice", order="updated")[0] == other
            before = repo.get_session("alice", s.session_id).updated_at  # type: ignore[union-attr]
            time.sleep(0.002)  # SQLite's trigger clock has milliseconds: be in the next one
            peer(method, *args)
            now = repo.get_session("alice", s.session_id)
            assert now is not None and now.updated_at > before, method
            assert repo.get_sessions("alice", order="updated")[0] == s, method
        peer("pop_item")  # nothing left to pop: no activity
        assert repo.get_session("alice", s.session_id).updated_at == now.updated_at  # type: ignore[union-attr]
        assert repo.check() == []


def test_custom_table_names_with_the_real_sqlite_session(db_path: Path) -> None:
    names = {"sessions_table": "chat_sessions", "messages_table": "chat_messages"}
    Peer(db_path, "legacy", **names)("add_items", [{"n": 1}])
    with SessionRepository(db_path, **names) as repo:
        s = repo.claim_session("alice", "legacy")
        s.add_items([{"n": 2}])
    assert Peer(db_path, "legacy", **names)("get_items") == [{"n": 1}, {"n": 2}]


def test_advanced_sqlite_session_still_opens_an_adopted_file(db_path: Path) -> None:
    async def write(session_id: str, items: list[Any]) -> list[Any]:
        session = AdvancedSQLiteSession(session_id=session_id, db_path=db_path,
                                        create_tables=True)
        try:
            await session.add_items(items)
            return await session.get_items()
        finally:
            session.close()

    run(write("adv", [{"role": "user", "content": "hi"}]))
    own = [r for r in rows(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")
           if not str(r[0]).startswith(("agent_", "sqlite_"))]
    snapshot = {t: rows(db_path, f"SELECT * FROM {t}") for (t,) in own}
    with SessionRepository(db_path) as repo:
        assert {t: rows(db_path, f"SELECT * FROM {t}") for (t,) in own} == snapshot
        repo.claim_session("alice", "adv").add_items([{"role": "assistant", "content": "yo"}])
    assert "message_structure" in snapshot and "turn_usage" in snapshot
    # AdvancedSQLiteSession lists the items it has branch structure for (the
    # ones it wrote); sessions_dal lists every item of the session.
    assert run(write("adv", [{"role": "user", "content": "more"}])) == [
        {"role": "user", "content": "hi"}, {"role": "user", "content": "more"}]
    with SessionRepository(db_path) as repo:
        assert repo.get_session("alice", "adv").get_items() == [  # type: ignore[union-attr]
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
            {"role": "user", "content": "more"}]
        assert repo.check() == []


# -- the adapter ---------------------------------------------------------------------


def test_adapter_is_an_agents_session(repo: SessionRepository) -> None:
    adapter = AgentsSession(repo.create_session("alice"))
    assert isinstance(adapter, agents.memory.Session)
    assert adapter.session_id == adapter.session.session_id
    assert isinstance(adapter.session_settings, SessionSettings)
    with pytest.raises(TypeError, match="must be a sessions_dal Session"):
        AgentsSession("alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="session_settings"):
        AgentsSession(adapter.session, session_settings={"limit": 1})  # type: ignore[arg-type]


def test_core_package_never_imports_openai_agents() -> None:
    code = "import sys, sessions_dal, sessions_dal.cli; print('agents' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent).stdout
    assert out.strip() == "False"


OPS: list[tuple[str, tuple[Any, ...]]] = [
    ("add_items", ([{"role": "user", "content": "a"}, {"n": 1}],)),
    ("get_items", ()), ("get_items", (1,)), ("get_items", (0,)), ("get_items", (10,)),
    ("add_items", ([{"n": 2}, {"n": 3}, {"nested": {"z": 1, "a": [None, True]}}],)),
    ("get_items", (2,)), ("pop_item", ()), ("get_items", ()), ("add_items", ([],)),
    ("clear_session", ()), ("pop_item", ()), ("get_items", ()),
    ("add_items", ([{"after": "clear"}],)), ("get_items", (None,)),
]


@pytest.mark.parametrize("settings_limit", [None, 2])
def test_adapter_matches_sqlite_session(
    repo: SessionRepository, tmp_path: Path, settings_limit: int | None
) -> None:
    settings = SessionSettings(limit=settings_limit)
    ours = AgentsSession(repo.create_session("alice"), session_settings=settings)
    theirs = SQLiteSession("peer", tmp_path / "peer.db", session_settings=settings)
    try:
        for method, args in OPS:
            expected = run(getattr(theirs, method)(*args))
            assert run(getattr(ours, method)(*args)) == expected, (method, args)
    finally:
        theirs.close()


# -- the Runner, offline ---------------------------------------------------------------


def texts(items: list[Any]) -> list[str]:
    out = []
    for item in items:
        content = item.get("content")
        out.append(content if isinstance(content, str) else content[0]["text"])
    return out


def test_runner_run_and_run_sync_keep_history_in_the_users_session(
    db_path: Path, scripted: ScriptedModel
) -> None:
    agent = Agent(name="guide", instructions="Help plan trips.", model=scripted)
    with SessionRepository(db_path) as repo:
        session = repo.create_session("alice", metadata={"title": "Trip"})
        first = run(Runner.run(agent, "Hi", session=AgentsSession(session)))
        assert first.final_output == "Hello!"
        second = Runner.run_sync(agent, "Rome or Paris?", session=AgentsSession(session))
        assert second.final_output == "Rome, then."
        # The second model call saw the first turn from the store.
        assert texts(list(scripted.calls[1].input)) == ["Hi", "Hello!", "Rome or Paris?"]
    with SessionRepository(db_path) as repo:  # persisted to the file
        (stored,) = repo.get_sessions("alice")
        assert texts(stored.get_items()) == ["Hi", "Hello!", "Rome or Paris?", "Rome, then."]


def test_runner_run_streamed(db_path: Path, scripted: ScriptedModel) -> None:
    agent = Agent(name="guide", model=scripted)

    async def stream(session: Session, text: str) -> str:
        result = Runner.run_streamed(agent, text, session=AgentsSession(session))
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    with SessionRepository(db_path) as repo:
        session = repo.create_session("alice")
        assert run(stream(session, "Hi")) == "Hello!"
        assert run(stream(session, "Again")) == "Rome, then."
        assert texts(session.get_items()) == ["Hi", "Hello!", "Again", "Rome, then."]


def test_rewind_with_pop_item_then_run_again(db_path: Path, scripted: ScriptedModel) -> None:
    agent = Agent(name="guide", model=scripted)
    with SessionRepository(db_path) as repo:
        memory = AgentsSession(repo.create_session("alice"))
        Runner.run_sync(agent, "Hi", session=memory)
        Runner.run_sync(agent, "Rome?", session=memory)
        # The user takes the question back: drop the answer and the question.
        answer = run(memory.pop_item())
        question = run(memory.pop_item())
        assert texts([question, answer]) == ["Rome?", "Rome, then."]
        assert Runner.run_sync(agent, "Paris?", session=memory).final_output == "Paris, then."
        assert texts(scripted.calls[2].input) == ["Hi", "Hello!", "Paris?"]
        assert texts(run(memory.get_items())) == ["Hi", "Hello!", "Paris?", "Paris, then."]


def test_runner_items_round_trip_exactly(repo: SessionRepository, backend: Backend,
                                         scripted: ScriptedModel) -> None:
    agent = Agent(name="guide", model=scripted)
    memory = AgentsSession(repo.create_session("alice"))
    Runner.run_sync(agent, "Hi", session=memory)
    stored = run(memory.get_items())
    raw = backend.stored_items(memory.session_id)
    assert [json.dumps(item) for item in stored] == raw


def test_what_sqlite_session_writes_is_searchable_and_what_it_pops_is_not(
    db_path: Path,
) -> None:
    with SessionRepository(db_path) as repo:
        owned = repo.create_session("alice")
    Peer(db_path, owned.session_id)("add_items", [
        {"role": "user", "content": "Gelato in Bologna?"},
        {"role": "assistant", "content": "Yes, and tortellini."}])
    Peer(db_path, "theirs")("add_items", [{"role": "user", "content": "tortellini recipe"}])
    with SessionRepository(db_path) as repo:
        assert [h.item["content"] for h in repo.search("alice", "tortellini")] == [
            "Yes, and tortellini."]  # "theirs" is nobody's yet
        repo.claim_session("alice", "theirs")
        assert len(repo.search("alice", "tortellini")) == 2
    Peer(db_path, owned.session_id)("pop_item")
    Peer(db_path, "theirs")("clear_session")
    with SessionRepository(db_path) as repo:
        assert [h.item["content"] for h in repo.search("alice", "gelato")] == [
            "Gelato in Bologna?"]
        assert repo.search("alice", "tortellini") == []


def test_an_item_that_is_not_json_is_stored_and_not_indexed(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice")
    conn = sqlite3.connect(db_path)
    with conn:  # what SQLiteSession stores is whatever it is given
        conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                     (s.session_id, "not json: pizza"))
        conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                     (s.session_id, '{"content": "pizza", "x": NaN}'))
    conn.close()
    with SessionRepository(db_path) as repo:
        assert repo.search("alice", "pizza") == []
        repo.get_session("alice", s.session_id).add_items(["pizza"])  # type: ignore[union-attr]
        assert [h.item for h in repo.search("alice", "pizza")] == ["pizza"]


# -- openai-agents' own compaction ------------------------------------------------------

SUMMARY = {"type": "compaction", "encrypted_content": "a summary only the model reads"}


class FakeResponses:
    """responses.compact without a network: one opaque compaction item, as the API's."""

    def __init__(self) -> None:
        self.inputs: list[Any] = []

    async def compact(self, **kwargs: Any) -> Any:
        self.inputs.append(kwargs.get("input"))

        return SimpleNamespace(output=[SUMMARY], usage=None)


class FakeClient:
    def __init__(self) -> None:
        self.responses = FakeResponses()


def _turns(n: int) -> list[dict[str, Any]]:
    return [{"role": "user" if k % 2 == 0 else "assistant", "content": f"turn {k}"}
            for k in range(n)]


def test_openai_agents_compaction_keeps_the_history(repo: SessionRepository) -> None:
    from agents.memory import OpenAIResponsesCompactionSession

    session = repo.create_session("alice")
    session.add_items(_turns(6))
    client = FakeClient()
    compacting = OpenAIResponsesCompactionSession(
        session.session_id, AgentsSession(session), client=client)  # type: ignore[arg-type]
    asyncio.run(compacting.run_compaction({"force": True}))
    assert client.responses.inputs and session.get_items() == [SUMMARY]
    assert list(session.iter_history()) == _turns(6)  # one transaction: nothing lost
    assert asyncio.run(compacting.get_items()) == [SUMMARY]


def test_keep_history_on_clear_moves_the_items_to_the_history(repo: SessionRepository
                                                               ) -> None:
    session = repo.create_session("alice")
    session.add_items(_turns(3))
    memory = AgentsSession(session, keep_history_on_clear=True)
    asyncio.run(memory.clear_session())
    assert session.get_items() == [] and list(session.iter_history()) == _turns(3)
    with pytest.raises(TypeError, match="keep_history_on_clear must be a bool"):
        AgentsSession(session, keep_history_on_clear="yes")  # type: ignore[arg-type]


_KILLED_BETWEEN = """
import asyncio, os, signal, sys
from agents.memory import OpenAIResponsesCompactionSession
from sessions_dal import SessionRepository
from sessions_dal.agents import AgentsSession
from test_agents import FakeClient

class ClearThenAdd(AgentsSession):
    # No atomic hook: the wrapper clears, then adds, and the process dies between.
    _atomic_replace_items = None
    async def add_items(self, items):
        os.kill(os.getpid(), signal.SIGKILL)

with SessionRepository(sys.argv[1]) as repo:
    session = repo.get_session("alice", sys.argv[2])
    memory = ClearThenAdd(session, keep_history_on_clear=True)
    compacting = OpenAIResponsesCompactionSession(sys.argv[2], memory, client=FakeClient())
    asyncio.run(compacting.run_compaction({"force": True}))
"""


def test_a_process_killed_between_clear_and_add_loses_no_history(backend: Backend) -> None:
    with backend.open() as repo:
        session = repo.create_session("alice")
        session.add_items(_turns(4))
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN, backend.target, session.session_id],
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    with backend.open() as repo:
        again = repo.get_session("alice", session.session_id)
        assert again is not None
        assert again.get_items() == []  # cleared, and killed before the add
        assert list(again.iter_history()) == _turns(4)  # but nothing lost
