"""repo.check() compares the search index with the items; repo.reindex() repairs it."""

from __future__ import annotations

import json

import pytest
from backends import Backend

from sessions_dal import SessionRepository
from sessions_dal.errors import ReadOnlyDatabaseError

REPAIR = "run 'sessions-dal reindex' (or repo.reindex())"


def texts(repo: SessionRepository, query: str, user: str = "alice") -> list[object]:
    return sorted(str(hit.item) for hit in repo.search(user, query, limit=None))


def test_a_sound_index_checks_clean_and_reindexes_nothing(backend: Backend,
                                                          repo: SessionRepository) -> None:
    assert repo.check() == [] and repo.reindex() == 0  # empty
    s = repo.create_session("alice", session_id="trip", metadata={"title": "Rome trip"})
    s.add_items([{"role": "user", "content": "trains to Naples"}, {"type": "message"},
                 "plain words"])
    backend.insert_item_text("trip", "not json at all")
    repo.create_session("bob", metadata={"title": 7}).add_items(["bob's words"])
    backend.write_like_agents("agents", ['{"content": "nobody owns this"}'])
    repo.update_search_index()  # SQLite indexes items when searched: now, to compare
    rows = backend.index_rows()
    assert repo.check() == [] and repo.reindex() == 0
    assert backend.index_rows() == rows
    assert texts(repo, "naples") == ["{'role': 'user', 'content': 'trains to Naples'}"]


def test_each_kind_of_drift_is_reported_then_repaired(backend: Backend,
                                                      repo: SessionRepository) -> None:
    s = repo.create_session("alice", session_id="trip", metadata={"title": "Rome trip"})
    lost = backend.insert_item_text("trip", json.dumps({"content": "lost zebra"}))
    stolen = backend.insert_item_text("trip", json.dumps({"content": "stolen zebra"}))
    bobs = repo.create_session("bob", session_id="bobs")
    backend.insert_item_text("bobs", json.dumps({"content": "bob zebra"}))
    repo.update_search_index()  # SQLite indexes items when searched: now, to damage them
    backend.index_drop(lost)  # missing
    backend.index_set_owner(stolen, "bob")  # bob would find alice's item
    backend.index_add(stolen + 1000, "ghost zebra", "alice", "trip")  # of no item
    backend.index_drop(-1)  # alice's title (seq 1)
    assert texts(repo, "zebra") == [] and texts(repo, "rome") == []
    problems = repo.check()
    assert len(problems) == 4 and all(p.endswith(REPAIR) for p in problems)
    missing, extra, owner, titles = problems
    assert missing.startswith(f"search index: 1 item(s) with words have no row in it "
                              f"(by item id): {lost};")
    assert extra.startswith(f"search index: 1 row(s) of items that do not exist (by item id): "
                            f"{stolen + 1000};")
    assert owner.startswith(f"search index: 1 item(s) indexed under another owner or session "
                            f"(by item id): {stolen};")
    assert titles.startswith("search index: 1 session title(s) indexed otherwise than the "
                             "metadata says (by session id): 'trip';")

    assert repo.reindex() == 4
    assert repo.check() == [] and repo.reindex() == 0
    assert texts(repo, "zebra") == ["{'content': 'lost zebra'}", "{'content': 'stolen zebra'}"]
    assert texts(repo, "zebra", "bob") == ["{'content': 'bob zebra'}"]
    assert texts(repo, "ghost") == [] and texts(repo, "rome") == ["None"]
    # Writes after the repair keep the index right, as before it.
    s.add_items(["zebra again"])
    bobs.add_items(["zebra for bob"])
    assert len(texts(repo, "zebra")) == 3 and repo.check() == []


def test_a_problem_line_counts_all_and_shows_a_few(backend: Backend,
                                                   repo: SessionRepository) -> None:
    repo.create_session("alice", session_id="s")
    ids = [backend.insert_item_text("s", f'"word {n}"') for n in range(8)]
    repo.update_search_index()
    for item_id in ids:
        backend.index_drop(item_id)
    [problem] = repo.check()
    shown = ", ".join(str(n) for n in ids[:5])
    assert problem == (f"search index: 8 item(s) with words have no row in it (by item id): "
                       f"{shown}, ...; {REPAIR}")
    assert repo.reindex() == 8 and len(texts(repo, "word")) == 8


def test_reindex_reports_its_progress_in_batches(backend: Backend, repo: SessionRepository,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sessions_dal.backends._migrations.BATCH", 10)
    s = repo.create_session("alice", metadata={"title": "t"})
    s.add_items([f"word {n}" for n in range(25)])
    heard: list[tuple[str, float]] = []
    assert repo.reindex(progress=lambda step, done: heard.append((step, done))) == 0
    items = [done for step, done in heard if step == "search index: items"]
    assert items == [0.4, 0.8, 1.0]
    assert heard[-1] == ("search index: session titles", 1.0)
    with pytest.raises(TypeError, match="progress must be callable"):
        repo.reindex(progress=3)  # type: ignore[arg-type]


def test_reindex_is_a_write(backend: Backend, repo: SessionRepository) -> None:
    repo.create_session("alice").add_items(["word"])
    with backend.open(read_only=True) as reader:
        assert reader.check() == []
        with pytest.raises(ReadOnlyDatabaseError, match="read_only"):
            reader.reindex()


def test_update_search_index_indexes_what_is_new_once(backend: Backend,
                                                      repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["rome", {"id": "no words"}, "naples"])
    backend.write_like_agents("agents", ['"zebra"'])
    heard: list[tuple[str, float]] = []
    # Items are indexed when searched: the three with words now.
    assert repo.update_search_index(progress=lambda *step: heard.append(step)) == 3
    assert heard == [("search index: new items", 1.0)]
    assert repo.update_search_index() == 0 and repo.check() == []
    assert [h.item for h in repo.search("alice", "naples")] == ["naples"]
    with pytest.raises(TypeError, match="progress must be callable"):
        repo.update_search_index(progress="yes")  # type: ignore[arg-type]
    s.add_items(["more"])
    with SessionRepository(backend.target, read_only=True) as reader:
        with pytest.raises(ReadOnlyDatabaseError, match="read_only=True"):
            reader.update_search_index()
        assert [h.item for h in reader.search("alice", "more")] == ["more"]
