"""SQLite indexes items when it is searched (schema.sql, version 5), not when they are added."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from helpers import rows

from sessions_dal import SessionRepository
from sessions_dal.backends.sqlite._schema import INDEXED_WHEN_SEARCHED


def indexed_items(path: Path) -> int:
    return int(rows(path, "SELECT count(*) FROM sessions_dal_search WHERE rowid > 0")[0][0])


def mark(path: Path) -> int:
    return int(rows(path, "SELECT upto FROM sessions_dal_search_state")[0][0])


def child(db_path: Path, batch: int, body: str) -> str:
    """A Python script that runs ``body`` with ``repo`` open on ``db_path``, batches of
    ``batch`` items."""
    return textwrap.dedent(f"""
        from sessions_dal import SessionRepository
        from sessions_dal.backends import _migrations
        _migrations.BATCH = {batch}
        with SessionRepository({str(db_path)!r}) as repo:
    """) + textwrap.indent(textwrap.dedent(body), "    ")


def add_like_agents(path: Path, session_id: str, texts: list[str]) -> None:
    """What openai-agents' SQLiteSession.add_items() writes."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id) VALUES (?)",
                     (session_id,))
        conn.executemany("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                         [(session_id, json.dumps(text)) for text in texts])
    conn.close()


def test_appends_never_touch_the_index_and_the_first_search_indexes_them_all(
    db_path: Path
) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice", metadata={"title": "Rome trip"})
        s.add_items([f"rome {n}" for n in range(100)] + [{"id": "only an id"}])
        add_like_agents(db_path, "agents", ["rome by agents"])
        # Titles are indexed as they are set; items wait for a search.
        assert indexed_items(db_path) == 0 and mark(db_path) == 0
        assert len(repo.search("alice", "rome", limit=None)) == 101  # items and title
        assert indexed_items(db_path) == 101  # the id-only item has no words
        assert mark(db_path) == 102  # every item looked at, the agents' one too
        s.add_items(["rome again"])
        assert repo.update_search_index() == 1 and repo.update_search_index() == 0
        assert repo.check() == []
        s.pop_item()  # an indexed item takes its row with it
        assert indexed_items(db_path) == 101 and repo.check() == []
        s.add_items(["never searched"])
        s.pop_item()  # one not indexed yet has none to take
        assert indexed_items(db_path) == 101 and repo.check() == []


def test_a_session_claimed_after_its_items_were_indexed_takes_them_along(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        add_like_agents(db_path, "agents", ["zebra crossing"])
        repo.create_session("bob")
        assert repo.search("bob", "zebra") == []  # indexed as nobody's
        assert indexed_items(db_path) == 1
        repo.claim_session("alice", "agents")
        assert [hit.item for hit in repo.search("alice", "zebra")] == ["zebra crossing"]
        assert repo.search("bob", "zebra") == [] and repo.check() == []


def test_a_read_only_search_sees_what_is_not_indexed_yet(db_path: Path) -> None:
    with SessionRepository(db_path) as writer, \
            SessionRepository(db_path, read_only=True) as reader:
        s = writer.create_session("alice", session_id="trip")
        s.add_items(["rome rome rome", "rome once, among many other words here"])
        assert [h.item for h in writer.search("alice", "rome")] == [
            "rome rome rome", "rome once, among many other words here"]
        s.add_items(["rome", "naples"])  # after the mark: only in the reader's own index
        hits = reader.search("alice", "rome", limit=None)
        # One order across both indexes: best first (scores are each row's own).
        assert [h.item for h in hits] == [
            "rome rome rome", "rome", "rome once, among many other words here"]
        assert [h.item for h in reader.search("alice", "rome", limit=2)] == [
            "rome rome rome", "rome"]
        s.add_items(["rome later"])  # the reader's index grows by what is new
        assert len(reader.search("alice", "rome", limit=None)) == 4
        assert reader.search("bob", "rome") == []
        writer.search("alice", "naples")  # the mark moves on: the reader's index is redone
        s.add_items(["naples too"])
        assert [h.item for h in reader.search("alice", "naples", limit=None)] == [
            "naples", "naples too"]
        assert len(reader.search("alice", "rome", limit=None)) == 4  # nothing twice
        s.pop_item()
        assert [h.item for h in reader.search("alice", "naples")] == ["naples"]
    assert indexed_items(db_path) == 5  # the reader wrote none of them


def test_a_file_indexed_by_triggers_keeps_its_index(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with SessionRepository(path) as repo:
        repo.create_session("alice").add_items(["rome", {"id": "x"}, "naples"])
        repo.search("alice", "rome")
    # As version 4 left it: every item indexed by a trigger, no mark.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE sessions_dal_search_state")
        conn.execute("DELETE FROM sessions_dal_migrations WHERE version >= ?",
                     (INDEXED_WHEN_SEARCHED,))
    conn.close()
    with SessionRepository(path, read_only=True) as reader:
        assert [h.item for h in reader.search("alice", "naples")] == ["naples"]
        assert reader.check() == []
    with SessionRepository(path) as repo:
        assert mark(path) == 3  # the last item with a row: nothing indexed again
        assert repo.update_search_index() == 0 and repo.check() == []


def test_two_processes_catching_up_at_once_index_each_item_once(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        repo.create_session("alice", session_id="s").add_items(
            [f"word{n} rome" for n in range(3000)])
    script = child(db_path, 100, 'print(len(repo.search("alice", "rome", limit=None)))')
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    assert [run.communicate()[0] for run in runs] == ["3000\n", "3000\n"]
    assert indexed_items(db_path) == 3000 and mark(db_path) == 3000
    with SessionRepository(db_path) as repo:
        assert repo.check() == []


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9")
def test_killed_while_catching_up_loses_nothing_and_the_next_search_finishes(
    db_path: Path
) -> None:
    with SessionRepository(db_path) as repo:
        repo.create_session("alice", session_id="s").add_items(
            [f"word{n} rome" for n in range(20_000)])
    # Each batch commits, then says so: killed at once, most likely within the
    # next one (a busy machine may let it finish: the verdict holds either way).
    script = child(db_path, 500,
                   "repo.update_search_index(progress=lambda step, done: print(done, flush=True))")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    for _ in range(3):
        run.stdout.readline()
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    run.stdout.close()
    done = mark(db_path)
    assert 1500 <= done <= 20_000 and done % 500 == 0  # whole batches only
    assert indexed_items(db_path) == done
    with SessionRepository(db_path) as repo:
        assert repo.check() == []
        assert len(repo.search("alice", "rome", limit=None)) == 20_000
        assert repo.check() == [] and mark(db_path) == 20_000


def test_searches_catching_up_in_small_batches_still_see_whole_appends(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 3 ids split every append of 7: a search must not find the part
    # another search indexed of an append that committed after it began.
    monkeypatch.setattr("sessions_dal.backends._migrations.BATCH", 3)
    batch = [f"zebra {n}" for n in range(7)]
    with SessionRepository(db_path) as writer:
        s = writer.create_session("alice")
        done = threading.Event()
        seen: list[int] = []
        failures: list[BaseException] = []

        def search() -> None:
            try:
                with SessionRepository(db_path, busy_timeout=60) as repo:
                    while True:  # at least once, however late the thread starts
                        stop = done.is_set()
                        seen.append(len(repo.search("alice", "zebra", limit=None)))
                        if stop:
                            break
            except BaseException as exc:  # reported below
                failures.append(exc)

        readers = [threading.Thread(target=search) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            for _ in range(40):
                s.add_items(batch)
        finally:
            done.set()
            for reader in readers:
                reader.join()
        assert not failures and seen and all(count % 7 == 0 for count in seen), seen
        assert len(writer.search("alice", "zebra", limit=None)) == 280
        assert writer.check() == []


def test_a_read_only_search_follows_claims_and_deletes_after_it_indexed(db_path: Path) -> None:
    with SessionRepository(db_path) as writer, \
            SessionRepository(db_path, read_only=True) as reader:
        keep = writer.create_session("alice")
        keep.add_items(["hello"])
        writer.search("alice", "hello")  # the mark: after this item
        add_like_agents(db_path, "orphan", ["zebra crossing"])
        gone = writer.create_session("alice")
        gone.add_items(["apple"] * 5)
        assert reader.search("alice", "zebra") == []  # nobody's yet; the reader's index
        assert len(reader.search("alice", "apple", limit=3)) == 3  # holds them now
        writer.claim_session("alice", "orphan")
        writer.delete_session("alice", gone.session_id)
        keep.add_items(["apple, among many other words here"])
        assert [h.item for h in reader.search("alice", "zebra")] == ["zebra crossing"]
        assert [h.item for h in reader.search("alice", "apple", limit=3)] == [
            "apple, among many other words here"]


def test_ids_far_apart_cost_batches_of_items_not_of_ids(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sessions_dal.backends._migrations.BATCH", 2)
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice")
        s.add_items(["first"])
        conn = sqlite3.connect(db_path)
        with conn:  # another program's ids, 2**40 and 2**62 (AUTOINCREMENT goes on from there)
            conn.executemany("INSERT INTO agent_messages (id, session_id, message_data) "
                             "VALUES (?, ?, ?)", [(2 ** 40, s.session_id, '"far"'),
                                                  (2 ** 62, s.session_id, '"farther"')])
        conn.close()
        s.add_items(["last"])
        heard: list[float] = []
        assert repo.update_search_index(progress=lambda _, done: heard.append(done)) == 4
        assert len(heard) == 2  # 4 items, 2 at a time (by ids: 2**61 batches)
        assert [h.item for h in repo.search("alice", "farther")] == ["farther"]
        assert repo.check() == [] and repo.reindex() == 0
    with SessionRepository(db_path, read_only=True) as reader:
        assert [h.item for h in reader.search("alice", "far")] == ["far"]


def test_odd_tables_and_rows_keep_check_and_reindex_quiet(tmp_path: Path) -> None:
    # A hand-made items table without AUTOINCREMENT reuses a deleted last id.
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY,
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE agent_messages (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,
            message_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);
    """)
    conn.close()
    with SessionRepository(path) as repo:
        s = repo.create_session("alice", metadata={"title": "nul\u0000title"})
        s.add_items(["one", "two"])
        repo.search("alice", "two")
        s.pop_item()
        s.add_items(["reused"])  # id 2 again
        assert [h.item for h in repo.search("alice", "reused")] == ["reused"]
        assert [h.snippet for h in repo.search("alice", "title")] == ["nul [title]"]
        # An id of 0 or less, another program's, would be a title's row: not indexed.
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                         "VALUES (-1, ?, '\"negative\"')", (s.session_id,))
        conn.close()
        assert repo.search("alice", "negative") == []
        assert repo.check() == [] and repo.reindex() == 0 and repo.reindex() == 0
        assert [h.snippet for h in repo.search("alice", "title")] == ["nul [title]"]


def test_a_lost_mark_is_made_again_and_a_held_lock_does_not_stop_a_search(
    db_path: Path
) -> None:
    with SessionRepository(db_path, busy_timeout=0.2) as repo:
        s = repo.create_session("alice")
        s.add_items(["w1"])
        repo.search("alice", "w1")
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("DELETE FROM sessions_dal_search_state")  # by hand
        s.add_items(["w2"])
        assert repo.check() == []
        assert [h.item for h in repo.search("alice", "w2")] == ["w2"]
        assert mark(db_path) == 2 and repo.check() == []
        s.add_items(["w3"])
        conn.execute("BEGIN IMMEDIATE")  # another writer holds the file
        try:
            assert [h.item for h in repo.search("alice", "w3")] == ["w3"]
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        assert mark(db_path) == 2  # found without indexing it
        repo.search("alice", "w3")
        assert mark(db_path) == 3


def test_an_item_with_a_titles_rowid_never_touches_the_title(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        alice = repo.create_session("alice")
        bob = repo.create_session("bob", metadata={"title": "bob's title"})
        seq = rows(db_path, "SELECT seq FROM agent_user_sessions WHERE session_id = ?",
                   bob.session_id)[0][0]
        conn = sqlite3.connect(db_path)
        with conn:  # another program's item, at minus bob's seq
            conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id) VALUES (?)",
                         (alice.session_id,))
            conn.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                         "VALUES (?, ?, '\"alice words\"')", (-seq, alice.session_id))
        conn.close()
        repo.search("alice", "words")
        alice.add_items(["more"])
        alice.clear_session()  # scrubs and deletes alice's items, the odd one too
        assert [h.session for h in repo.search("bob", "title")] == [bob]
        repo.delete_session("alice", alice.session_id)
        assert [h.session for h in repo.search("bob", "title")] == [bob]
        assert repo.check() == [] and repo.reindex() == 0


def test_an_item_of_id_0_or_less_gets_its_own_words_in_the_history(db_path: Path) -> None:
    # Another program's item whose id is minus a title's row: compacted, it is
    # indexed by its own words, never by that (other user's) title's.
    with SessionRepository(db_path) as repo:
        bob = repo.create_session("bob", metadata={"title": "bobsecretplan"})
        alice = repo.create_session("alice", session_id="a")
        conn = sqlite3.connect(db_path)
        with conn:
            conn.execute("INSERT INTO agent_messages (id, session_id, message_data) "
                         "SELECT -seq, 'a', '\"harmless\"' FROM agent_user_sessions "
                         "WHERE session_id = ?", (bob.session_id,))
        conn.close()
        alice.add_items(["later"])
        repo.search("alice", "later")
        alice.compact([], upto=1)
        assert repo.search("alice", "bobsecretplan") == []
        assert [(h.item, h.layer) for h in repo.search("alice", "harmless")] == [
            ("harmless", 1)]
        assert repo.check() == []
