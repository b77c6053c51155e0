"""prune: retention by age and by count, on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from backends import Backend

import sessions_dal.repository
from sessions_dal import COMMITTED_NOTE, PruneReport, Session, SessionRepository, _time

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    now = [START]
    monkeypatch.setattr(_time, "now", lambda: now[0])
    return now


def make(repo: SessionRepository, clock: list[datetime], user: str, day: int, items: int = 2
         ) -> Session:
    """A session of ``user`` last active on ``day`` (days after START), with ``items`` items."""
    clock[0] = START + timedelta(days=day)
    s = repo.create_session(user, session_id=f"{user}-{day}")
    if items:
        s.add_items(list(range(items)))
    return s


def left(repo: SessionRepository, user: str) -> list[str]:
    return sorted(s.session_id for s in repo.get_sessions(user))


@pytest.fixture
def history(repo: SessionRepository, clock: list[datetime]) -> SessionRepository:
    """alice: days 0, 10, 20, 30 (2 items each); bob: days 5, 25 (3 items); now: day 40."""
    for day in (0, 10, 20, 30):
        make(repo, clock, "alice", day)
    for day in (5, 25):
        make(repo, clock, "bob", day, items=3)
    clock[0] = START + timedelta(days=40)
    return repo


def test_older_than_deletes_sessions_last_active_before_the_cutoff(
    history: SessionRepository, clock: list[datetime]
) -> None:
    report = history.prune(older_than=timedelta(days=25))  # before day 15
    assert report == PruneReport(sessions=3, items=2 + 2 + 3)
    assert left(history, "alice") == ["alice-20", "alice-30"]
    assert left(history, "bob") == ["bob-25"]
    assert {u.user_id for u in history.get_users()} == {"alice", "bob"}  # users stay
    assert history.prune(older_than=timedelta(days=25)) == PruneReport(0, 0)


def test_activity_not_creation_decides_the_age(history: SessionRepository,
                                               clock: list[datetime]) -> None:
    old = history.get_session("alice", "alice-0")
    assert old is not None
    old.pop_item()  # active on day 40
    assert history.prune(older_than=timedelta(days=25)).sessions == 2
    assert left(history, "alice") == ["alice-0", "alice-20", "alice-30"]


def test_older_than_takes_an_aware_datetime(history: SessionRepository) -> None:
    report = history.prune(older_than=START + timedelta(days=10))
    assert report == PruneReport(sessions=2, items=5)  # alice-0 and bob-5; day 10 is not before
    assert left(history, "alice") == ["alice-10", "alice-20", "alice-30"]


def test_keep_last_keeps_each_users_most_recently_active(history: SessionRepository) -> None:
    history.get_session("alice", "alice-0").add_items(["back"])  # type: ignore[union-attr]
    assert history.prune(keep_last=2) == PruneReport(sessions=2, items=4)
    assert left(history, "alice") == ["alice-0", "alice-30"]
    assert left(history, "bob") == ["bob-25", "bob-5"]
    assert history.prune(keep_last=0, user_id="bob") == PruneReport(sessions=2, items=6)
    assert left(history, "bob") == [] and len(left(history, "alice")) == 2


def test_both_rules_delete_what_either_one_matches(history: SessionRepository) -> None:
    report = history.prune(older_than=timedelta(days=32), keep_last=2)  # before day 8
    # alice-0: old and beyond the last 2; alice-10: beyond them; bob-5: old.
    assert report == PruneReport(sessions=3, items=7)
    assert left(history, "alice") == ["alice-20", "alice-30"] and left(history, "bob") == [
        "bob-25"]


def test_user_id_limits_a_prune_to_that_user(history: SessionRepository) -> None:
    assert history.prune(older_than=timedelta(0), user_id="bob") == PruneReport(2, 6)
    assert len(left(history, "alice")) == 4
    assert history.prune(keep_last=1, user_id="nobody") == PruneReport(0, 0)


def test_a_dry_run_reports_the_same_counts_and_deletes_nothing(
    history: SessionRepository, backend: Backend
) -> None:
    before = backend.snapshot()
    for rules in ({"older_than": timedelta(days=18)}, {"keep_last": 1},
                  {"keep_last": 1, "older_than": timedelta(days=28), "user_id": "alice"}):
        planned = history.prune(**rules, dry_run=True)  # type: ignore[arg-type]
        assert planned.dry_run and backend.snapshot() == before
    real = history.prune(keep_last=1, older_than=timedelta(days=28), user_id="alice")
    assert (real.sessions, real.items, real.dry_run) == (planned.sessions, planned.items, False)


def test_unowned_sessions_are_pruned_only_when_asked(history: SessionRepository,
                                                     backend: Backend) -> None:
    backend.write_like_agents("chat", ["1", "2"])  # stamped by the real clock: after START
    assert history.prune(older_than=timedelta(0), dry_run=True).sessions == 6  # not "chat"
    # By openai-agents' own time: the real clock, so the cutoff is a real instant.
    real_now = datetime.now(timezone.utc)
    assert history.prune(older_than=real_now - timedelta(days=1), unowned=True) == (
        PruneReport(0, 0))
    assert history.prune(older_than=real_now + timedelta(days=1), unowned=True) == (
        PruneReport(1, 2))
    assert history.count_unowned_sessions() == 0
    assert len(left(history, "alice")) == 4 and len(left(history, "bob")) == 2


def test_cutoffs_at_the_edges_of_time_mean_what_they_say(history: SessionRepository,
                                                         backend: Backend) -> None:
    backend.write_like_agents("chat", ["1"])
    long_ago = [datetime(900, 1, 1, tzinfo=timezone.utc), datetime(26, 1, 1, tzinfo=timezone.utc),
                datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
                datetime.min.replace(tzinfo=timezone.utc)]
    for cutoff in long_ago:  # nothing is older than these
        assert history.prune(older_than=cutoff, dry_run=True) == PruneReport(0, 0, True)
        assert history.prune(older_than=cutoff, unowned=True) == PruneReport(0, 0)
    far = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))  # after 9999 in UTC
    assert history.prune(older_than=far, dry_run=True).sessions == 6
    assert history.prune(older_than=far, unowned=True) == PruneReport(1, 1)


def test_a_session_written_after_it_was_found_stays(
    history: SessionRepository, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_dal.repository, "PRUNE_BATCH", 1)
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 1:  # between batches, a later candidate comes back to life
            history.get_session("bob", "bob-5").add_items(["again"])  # type: ignore[union-attr]

    report = history.prune(older_than=timedelta(days=18), progress=progress)
    # Found: alice-0, alice-10, alice-20, bob-5; bob-5 written after the first batch.
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert report == PruneReport(sessions=3, items=6)
    assert left(history, "bob") == ["bob-25", "bob-5"]


def test_an_interrupted_prune_keeps_what_it_deleted_and_says_so(
    history: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_dal.repository, "PRUNE_BATCH", 2)

    def progress(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        history.prune(keep_last=0, progress=progress)
    assert caught.value.__notes__ == [  # type: ignore[attr-defined]
        COMMITTED_NOTE,  # something stayed deleted
        "sessions_dal: prune had deleted 2 sessions (4 items) before this; "
        "run it again to finish"]
    assert history.prune(keep_last=0) == PruneReport(sessions=4, items=10)


def test_an_interrupt_after_the_last_batch_says_the_prune_finished(
    history: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_dal.repository, "PRUNE_BATCH", 2)
    def progress(done: int, all_of_them: int) -> None:
        if done == all_of_them:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        history.prune(keep_last=0, progress=progress)
    notes = caught.value.__notes__  # type: ignore[attr-defined]
    assert notes[0] == COMMITTED_NOTE and notes[1].startswith(
        "sessions_dal: prune had finished before this: it deleted ")
    assert history.prune(keep_last=0) == PruneReport(sessions=0, items=0)  # nothing left


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({}, ValueError, "needs older_than, keep_last or both"),
    ({"user_id": "alice"}, ValueError, "needs older_than, keep_last or both"),
    ({"keep_last": -1}, ValueError, "keep_last must be >= 0"),
    ({"keep_last": True}, TypeError, "keep_last must be an int"),
    ({"keep_last": 2.0}, TypeError, "keep_last must be an int"),
    ({"older_than": 30}, TypeError, "timedelta or an aware datetime, not int"),
    ({"older_than": "90d"}, TypeError, "timedelta or an aware datetime, not str"),
    ({"older_than": timedelta(days=-1)}, ValueError, "must not be negative"),
    ({"older_than": timedelta.max}, ValueError, "before year 1"),
    ({"older_than": datetime(2026, 1, 1)}, ValueError, "must be timezone-aware"),
    ({"keep_last": 1, "user_id": ""}, ValueError, "user_id must not be empty"),
    ({"keep_last": 1, "user_id": 5}, TypeError, "user_id must be a str"),
    ({"keep_last": 1, "unowned": True}, ValueError, "give older_than only"),
    ({"older_than": timedelta(1), "keep_last": 1, "unowned": True}, ValueError,
     "give older_than only"),
    ({"older_than": timedelta(1), "unowned": True, "user_id": "a"}, ValueError,
     "no user_id"),
    ({"keep_last": 1, "unowned": 1}, TypeError, "unowned must be a bool"),
    ({"keep_last": 1, "dry_run": "yes"}, TypeError, "dry_run must be a bool"),
    ({"keep_last": 1, "progress": 3}, TypeError, "progress must be callable"),
])
def test_bad_arguments_are_refused_before_anything_is_deleted(
    history: SessionRepository, backend: Backend, kwargs: dict[str, object],
    error: type[Exception], message: str
) -> None:
    before = backend.snapshot()
    with pytest.raises(error, match=message):
        history.prune(**kwargs)  # type: ignore[arg-type]
    assert backend.snapshot() == before
