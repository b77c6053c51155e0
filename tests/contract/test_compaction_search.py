"""Search finds the compacted history too, and says which hits come from it."""

from __future__ import annotations

import io
import threading

import pytest
from backends import Backend, fresh_repository

from sessions_dal import SessionRepository
from sessions_dal.errors import CorruptItemError
from sessions_dal.transfer import export_jsonl, import_jsonl


def found(repo: SessionRepository, query: str, user: str = "alice",
          session_id: str | None = None) -> list[tuple[object, int | None]]:
    """(item, layer) of every hit, best first."""
    return [(hit.item, hit.layer)
            for hit in repo.search(user, query, limit=None, session_id=session_id)]


def test_hits_say_which_compaction_moved_them(repo: SessionRepository) -> None:
    s = repo.create_session("alice", metadata={"title": "zebra trip"})
    s.add_items(["zebra one", "zebra two", "zebra three", "zebra four"])
    assert s.compact(["zebra summary one"], upto=2) == 2
    s.add_items(["zebra five"])
    assert s.compact(["zebra summary two"], upto=2) == 2  # summary one compacted in turn
    # The view: summary two, zebra four, zebra five; the transcript: all five.
    hits = repo.search("alice", "zebra", limit=None)
    assert sorted((str(h.item), h.layer) for h in hits) == sorted([
        ("zebra summary two", None), ("zebra four", None), ("zebra five", None),
        ("zebra one", 1), ("zebra two", 1), ("zebra three", 2), ("None", None)])
    assert [h.compacted for h in hits if h.layer] == [True] * 3
    assert not any(h.compacted for h in hits if h.layer is None)
    # An earlier summary that a later compaction replaced is in no transcript.
    assert found(repo, "summary one") == []
    assert found(repo, "three") == [("zebra three", 2)]
    (hit,) = repo.search("alice", "three")
    assert "compacted history, layer 2" in repr(hit) and "layer 2" in hit._repr_html_()
    assert hit.snippet == "zebra [three]" and hit.session == s


def test_ties_come_newest_first_view_before_history_before_titles(
    repo: SessionRepository
) -> None:
    s = repo.create_session("alice", metadata={"title": "same words"})
    s.add_items(["same words", "same words", "same words"])
    s.compact(["other"], upto=1)
    s.compact(["other"], upto=2)  # the first "other" and one "same words": layer 2
    s.add_items(["same words"])
    hits = repo.search("alice", "same words", limit=None)
    assert [(h.item, h.layer) for h in hits] == [
        ("same words", None), ("same words", None), ("same words", 2), ("same words", 1),
        (None, None)]
    assert [(h.item, h.layer) for h in repo.search("alice", "same", limit=3)] == [
        ("same words", None), ("same words", None), ("same words", 2)]


def test_only_the_owner_finds_the_history_and_only_in_the_session_asked(
    repo: SessionRepository
) -> None:
    a = repo.create_session("alice")
    a.add_items(["secret zebra", "later"])
    a.compact(["sum"], upto=1)
    other = repo.create_session("alice")
    other.add_items(["zebra elsewhere"])
    assert found(repo, "zebra", "bob") == []
    assert found(repo, "zebra", session_id=a.session_id) == [("secret zebra", 1)]
    assert found(repo, "zebra", session_id=other.session_id) == [("zebra elsewhere", None)]
    repo.delete_session("alice", a.session_id)
    assert found(repo, "secret") == []


def test_a_claimed_session_brings_its_history_to_its_new_owner(repo: SessionRepository,
                                                               backend: Backend) -> None:
    backend.write_like_agents("nobodys", ['"unowned zebra"', '"tail"'])
    unowned = repo.find_session("nobodys")
    assert unowned is not None
    unowned.compact(["sum"], upto=1)
    assert found(repo, "zebra") == []
    repo.claim_session("alice", "nobodys")
    assert found(repo, "zebra") == [("unowned zebra", 1)]
    assert found(repo, "zebra", "bob") == []


def test_forks_and_imports_find_their_own_copies(backend: Backend) -> None:
    with backend.open() as repo, fresh_repository(backend.kind) as copy:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["rome by train", "naples"])
        s.compact(["sum"], upto=1)
        fork = repo.fork_session("alice", "s")
        assert sorted(h.session.session_id for h in repo.search("alice", "rome")) == sorted(
            ["s", fork.session_id])
        fork.clear_session()  # the original's copy stays
        assert [h.session.session_id for h in repo.search("alice", "rome")] == ["s"]
        out = io.StringIO()
        export_jsonl(repo, out)
        import_jsonl(copy, io.StringIO(out.getvalue()))
        assert found(copy, "rome") == [("rome by train", 1)]
        assert found(copy, "rome", session_id="s") == [("rome by train", 1)]


def test_every_erasing_call_takes_the_history_out_of_search(repo: SessionRepository) -> None:
    def compacted(word: str) -> str:
        s = repo.create_session("alice")
        s.add_items([f"{word} old", "new"])
        s.compact(["sum"], upto=1)
        assert found(repo, word) == [(f"{word} old", 1)]
        return s.session_id

    session = repo.get_session("alice", compacted("cleared"))
    assert session is not None
    session.clear_session()
    assert found(repo, "cleared") == []
    repo.delete_session("alice", compacted("deleted"))
    assert found(repo, "deleted") == []
    compacted("pruned")
    repo.prune(keep_last=0, user_id="alice")
    assert found(repo, "pruned") == []
    compacted("gone")
    repo.delete_user("alice")
    assert found(repo, "gone") == [] and repo.check() == []


def test_openai_agents_clearing_a_session_takes_its_history_out_of_search(
    repo: SessionRepository, backend: Backend
) -> None:
    s = repo.create_session("alice")
    s.add_items(["zebra old", "new"])
    s.compact(["sum"], upto=1)
    backend.clear_like_agents(s.session_id)  # deletes the agent_sessions row
    assert found(repo, "zebra") == [] and repo.check() == []


def test_a_read_only_repository_finds_the_history(backend: Backend) -> None:
    with backend.open() as repo:
        s = repo.create_session("alice")
        s.add_items(["zebra old", "new"])
        s.compact(["sum"], upto=1)
    with backend.open(read_only=True) as reader:
        assert found(reader, "zebra") == [("zebra old", 1)]
        assert reader.check() == []


def test_check_reports_a_damaged_history_index_and_reindex_repairs_it(
    repo: SessionRepository, backend: Backend
) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra old", "new"])
    s.compact(["sum"], upto=1)
    assert repo.check() == [] and repo.reindex() == 0
    backend.history_index_drop("s")
    assert found(repo, "zebra") == []
    (problem,) = repo.check()
    assert problem.startswith("search index: 1 session(s) whose compacted history is indexed "
                              "otherwise than it is (by session id): 's';")
    assert repo.reindex() == 1
    assert repo.check() == [] and found(repo, "zebra") == [("zebra old", 1)]


def test_a_search_during_compactions_finds_each_item_exactly_once(backend: Backend) -> None:
    # A compaction moves items from the view to the history, and copies the
    # items it keeps, in one transaction; a search reads one state: it finds
    # the needle once, in the view (kept, perhaps just copied) or in the
    # history, never twice, never not at all.
    with backend.open() as repo:
        s = repo.create_session("alice")
        s.add_items([f"item {n}" for n in range(30)] + ["needle"]
                    + [f"item {n}" for n in range(30, 40)])
        repo.update_search_index()
        seen: list[tuple[object, int | None]] = []
        stop = threading.Event()

        def compact() -> None:
            with backend.open() as other:
                t = other.get_session("alice", s.session_id)
                assert t is not None
                while not stop.is_set() and t.count_items() > 2:
                    t.compact(["summary"], upto=2)

        worker = threading.Thread(target=compact)
        worker.start()
        try:
            while worker.is_alive():
                hits = found(repo, "needle")
                assert len(hits) == 1, hits
                seen.append(hits[0])
        finally:
            stop.set()
            worker.join()
        assert found(repo, "needle") == [("needle", 30)]  # item 30: the 30th compaction


def test_a_damaged_history_item_is_named_where_it_is(repo: SessionRepository,
                                                     backend: Backend) -> None:
    s = repo.create_session("alice", session_id="s")
    s.add_items(["zebra old", "new"])
    s.compact(["sum"], upto=1)
    backend.set_history_text("s", "not json zebra")
    with pytest.raises(CorruptItemError, match=r"\(sessions_dal_history: layer = 1, id = \d+\)"):
        list(s.iter_history())
    with pytest.raises(CorruptItemError, match="sessions_dal_history: layer = 1"):
        repo.search("alice", "zebra")
