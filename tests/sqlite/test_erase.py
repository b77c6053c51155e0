"""Erase means erased: after a delete, the deleted text is not in the database's files."""

from __future__ import annotations

import io
import sqlite3
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from agents_schema import write_like_agents

from sessions_dal import Session, SessionRepository


def traces(db_path: Path, marker: bytes) -> dict[str, int]:
    """How often ``marker`` occurs in the database file and its WAL."""
    found = {}
    for suffix in ("", "-wal"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            found[suffix or "db"] = path.read_bytes().count(marker)
    return found


def fill(repo: SessionRepository, marker: str) -> str:
    """A session of alice's full of ``marker``: items of most of a page, then short ones."""
    s = repo.create_session("alice", metadata={"title": f"{marker} trip"})
    s.add_items([{"content": f"{marker} " + "y" * 3000} for _ in range(5)])
    s.add_items([f"{marker} {n}" for n in range(20)])
    return s.session_id


DELETES: dict[str, Callable[[SessionRepository, str], object]] = {
    "delete_session": lambda repo, session_id: repo.delete_session("alice", session_id),
    "delete_user": lambda repo, session_id: repo.delete_user("alice"),
    "prune": lambda repo, session_id: repo.prune(keep_last=0, user_id="alice"),
}


@pytest.mark.parametrize("compacted", [False, True], ids=["", "compacted"])
@pytest.mark.parametrize("delete", DELETES)
def test_deleted_text_is_gone_from_the_file_and_the_wal(db_path: Path, delete: str,
                                                         compacted: bool) -> None:
    marker = f"MARK-{uuid.uuid4().hex}"
    kept = f"KEEP-{uuid.uuid4().hex}"
    with SessionRepository(db_path) as repo:
        session_id = fill(repo, marker)
        if compacted:  # its history, twice compacted, and the replacements
            session = repo.get_session("alice", session_id)
            assert session is not None
            session.compact([f"{marker} summary"], upto=10)
            assert repo.search("alice", marker.split("-")[1])  # the copies indexed too
            session.compact([f"{marker} summary 2"], upto=5)
            assert len(list(session.iter_history())) == 25
        # Then another user's many small items: the pages alice's items end in
        # also hold bob's, so deleting hers rebalances the tree around his, the
        # case where SQLite's secure_delete alone leaves copies behind.
        bob = repo.create_session("bob", metadata={"title": kept})
        bob.add_items(["x" * 100] * 500)
        second = fill(repo, marker)  # alice has a second session, after bob's
        # Longer than a page (overflow pages) and not ASCII, too.
        repo.get_session("alice", second).add_items(  # type: ignore[union-attr]
            [{"content": f"{marker} " + "z" * 9000}, f"{marker} é ü ✓"])
        assert traces(db_path, marker.encode())["-wal"] > 0  # the test sees text that is there
        DELETES[delete](repo, session_id)
        if delete == "delete_session":
            repo.delete_session("alice", second)
        assert traces(db_path, marker.encode()) == {"db": 0, "-wal": 0}
        assert traces(db_path, kept.encode())["db"] == 2  # bob's stays (and in the index)
        assert len(bob.get_items()) == 500 and repo.check() == []
    assert traces(db_path, marker.encode()) == {"db": 0}


def test_a_reader_holding_the_wal_delays_the_erase_to_the_next_one(db_path: Path) -> None:
    marker = f"MARK-{uuid.uuid4().hex}"
    with SessionRepository(db_path) as repo:
        session_id = fill(repo, marker)
        reader = sqlite3.connect(db_path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM agent_messages").fetchone()  # holds a snapshot
        repo.delete_session("alice", session_id)
        assert traces(db_path, marker.encode())["-wal"] > 0  # the reader may still read it
        reader.execute("COMMIT")
        reader.close()
        repo.prune(older_than=timedelta(0))  # the next erase (here: of nothing) ...
        repo.create_session("carol")
        repo.delete_user("carol")  # ... finishes the job
        assert traces(db_path, marker.encode()) == {"db": 0, "-wal": 0}


def test_secure_delete_is_on_for_the_repository(repo: SessionRepository) -> None:
    db = repo._store._db  # type: ignore[attr-defined]
    assert db._conn.execute("PRAGMA secure_delete").fetchone() == (1,)


@pytest.mark.parametrize("delete", [*DELETES, "prune in batches"])
def test_deleted_words_are_gone_from_the_search_index(db_path: Path, delete: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The index keeps words lower-cased and one by one: look for a word alone.
    word = uuid.uuid4().hex
    if delete == "prune in batches":  # the index is merged once, after the last
        monkeypatch.setattr("sessions_dal.repository.PRUNE_BATCH", 1)
        delete = "prune"
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice", metadata={"title": f"about {word}"})
        s.add_items([f"{word} {n}" for n in range(50)])
        bob = repo.create_session("bob")
        bob.add_items([f"bob {n}" for n in range(300)])  # more segments around hers
        repo.create_session("alice").add_items([{"content": f"x {word}"}])
        assert len(repo.search("alice", word, limit=None)) == 52
        assert sum(traces(db_path, word.encode()).values()) > 0
        DELETES[delete](repo, s.session_id)
        if delete == "delete_session":
            for other in repo.get_sessions("alice"):
                repo.delete_session("alice", other.session_id)
        assert repo.search("alice", word) == []
        assert traces(db_path, word.encode()) == {"db": 0, "-wal": 0}
        assert len(repo.search("bob", "bob", limit=None)) == 300


def fill_items(session: Session, marker: str) -> None:
    """``fill``'s items, in a session of any owner (or none)."""
    session.add_items([{"content": f"{marker} " + "y" * 3000} for _ in range(5)])
    session.add_items([f"{marker} {n}" for n in range(20)])
    session.add_items([{"content": f"{marker} " + "z" * 9000}, f"{marker} é ü ✓"])


def _replacement(session_id: str) -> list[str]:
    """An export holding session ``session_id`` of alice's with other words."""
    with SessionRepository(":memory:") as other:
        other.create_session("alice", session_id=session_id,
                             metadata={"title": "new"}).add_items(["new words"])
        out = io.StringIO()
        other.export_to(out)
    return out.getvalue().splitlines(keepends=True)


REMOVALS: dict[str, Callable[[SessionRepository, Session], object]] = {
    "clear_session, compacted": lambda repo, s: (s.compact(["summary"], upto=10),
                                                 s.clear_session()),
    "delete_unowned_session": lambda repo, s: repo.delete_unowned_session(s.session_id),
    "import --replace": lambda repo, s: repo.import_from(_replacement(s.session_id),
                                                         replace=True),
    "clear_session": lambda repo, s: s.clear_session(),
}


@pytest.mark.parametrize("removal", REMOVALS)
def test_every_path_that_removes_a_sessions_items_erases_them(db_path: Path,
                                                              removal: str) -> None:
    marker = f"MARK-{uuid.uuid4().hex}"
    word = marker.split("-")[1]  # as the index keeps it: lower case, alone
    with SessionRepository(db_path) as repo:
        if removal == "delete_unowned_session":
            write_like_agents(db_path, "agents", [])
            session = repo.get_unowned_session("agents")
            assert session is not None
        elif removal == "import --replace":
            session = repo.create_session("carol", metadata={"title": f"{marker} trip"})
        else:
            session = repo.create_session("alice", metadata={"title": "kept"})
        fill_items(session, marker)
        bob = repo.create_session("bob", metadata={"title": "bob"})
        bob.add_items(["x" * 100] * 500)  # around hers, as in the test above
        if removal != "delete_unowned_session":
            assert len(repo.search(session.user_id or "", word, limit=None)) >= 27
        assert traces(db_path, word.encode())["-wal"] > 0
        REMOVALS[removal](repo, session)
        assert traces(db_path, marker.encode()) == {"db": 0, "-wal": 0}
        assert traces(db_path, word.encode()) == {"db": 0, "-wal": 0}
        assert len(bob.get_items()) == 500 and repo.check() == []
    assert traces(db_path, word.encode()) == {"db": 0}


def test_a_popped_item_is_overwritten_and_its_words_go_at_the_next_erase(
    db_path: Path,
) -> None:
    # The guarantee of pop_item: its text is overwritten in the items table and
    # in the index's copy before it is deleted (no stale copy stays in free
    # space), but the index is not merged (a merge rewrites all of it, and
    # pops are frequent) and the WAL not emptied: the popped words leave the
    # index's word lists, and the WAL, with the next erasing call.
    marker = f"MARK-{uuid.uuid4().hex}"
    word = marker.split("-")[1]
    text = f"{marker} popped " + "p" * 5000
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice")
        s.add_items(["before"] * 200 + [{"content": text}])
        assert s.pop_item() == {"content": text}
        assert repo.search("alice", word) == [] and repo.check() == []
    assert traces(db_path, marker.encode()) == {"db": 0}  # checkpointed at close
    assert traces(db_path, text[-5000:].encode()) == {"db": 0}
    with SessionRepository(db_path) as repo:
        repo.create_session("zoe").add_items(["z"])
        repo.delete_user("zoe")  # the next erasing call
        assert traces(db_path, word.encode()) == {"db": 0, "-wal": 0}
