"""SessionRepository: creating, finding, listing, counting, updating and deleting sessions."""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from backends import Backend

from sessions_dal import DeletedUser, Session, SessionRepository, _time, repository
from sessions_dal._validate import check_id
from sessions_dal.errors import (
    CorruptDataError,
    CorruptSessionError,
    Remedy,
    SessionExistsError,
    SessionNotFoundError,
    SessionsDalError,
)

# -- create_session ----------------------------------------------------------


def test_create_session_persists_user_and_session_at_once(
    repo: SessionRepository, backend: Backend
) -> None:
    before = datetime.now(timezone.utc)
    s = repo.create_session("alice", metadata={"title": "Trip"})
    parsed = uuid.UUID(s.session_id)
    assert parsed.version == 4 and str(parsed) == s.session_id
    assert (s.user_id, s.metadata) == ("alice", {"title": "Trip"})
    assert s.created_at.tzinfo is not None and s.created_at.utcoffset() == timedelta(0)
    assert before <= s.created_at <= datetime.now(timezone.utc)
    assert s.updated_at == s.created_at
    # Visible to another connection (another process) without further calls.
    with backend.open() as other:
        found = other.get_session("alice", s.session_id)
        assert found is not None and found.to_dict() == s.to_dict()
        assert [u.user_id for u in other.get_users()] == ["alice"]


def test_second_session_reuses_the_user(repo: SessionRepository) -> None:
    first = repo.create_session("alice")
    repo.create_session("alice")
    (user,) = repo.get_users()
    assert (user.user_id, user.sessions, user.created_at) == ("alice", 2, first.created_at)


def test_create_session_with_explicit_id_and_no_metadata(repo: SessionRepository) -> None:
    s = repo.create_session("alice", session_id="chat-1")
    assert (s.session_id, s.metadata) == ("chat-1", {})
    assert repo.get_session("alice", "chat-1") == s


@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_duplicate_explicit_session_id_is_refused_and_writes_nothing(
    repo: SessionRepository, backend: Backend, owner: str
) -> None:
    repo.create_session(owner, session_id="chat-1", metadata={"v": 1})
    before = backend.snapshot()
    with pytest.raises(SessionExistsError, match="'chat-1' already exists"):
        repo.create_session("alice", session_id="chat-1", metadata={"v": 2})
    with pytest.raises(SessionExistsError):
        repo.create_session("carol", session_id="chat-1")  # would also create carol
    assert backend.snapshot() == before


def test_session_id_written_by_openai_agents_is_taken(
    repo: SessionRepository, backend: Backend
) -> None:
    backend.write_like_agents("agents-1", [])
    before = backend.snapshot()
    with pytest.raises(SessionExistsError):
        repo.create_session("alice", session_id="agents-1")
    assert backend.snapshot() == before


def test_metadata_is_copied_not_aliased(repo: SessionRepository) -> None:
    meta = {"title": "Trip", "tags": ["a"]}
    s = repo.create_session("alice", metadata=meta)
    meta["tags"].append("b")
    assert s.metadata == {"title": "Trip", "tags": ["a"]}


# -- get_session / get_sessions / iter_sessions / count_sessions ---------------


def test_get_session_returns_a_ready_to_use_session(repo: SessionRepository) -> None:
    created = repo.create_session("alice", metadata={"k": [1, {"x": None}]})
    created.add_items([{"role": "user"}])
    found = repo.get_session("alice", created.session_id)
    assert isinstance(found, Session)
    assert found.to_dict() == created.to_dict() | {"updated_at": found.updated_at}
    assert found.get_items() == [{"role": "user"}]
    found.add_items([{"role": "assistant"}])
    assert created.get_items() == [{"role": "user"}, {"role": "assistant"}]


def test_get_session_hides_other_users_and_unknown_ids(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    assert repo.get_session("bob", s.session_id) is None
    assert repo.get_session("alice", "no-such-id") is None


def test_get_sessions_is_newest_first(repo: SessionRepository) -> None:
    created = [repo.create_session("alice", metadata={"n": n}) for n in range(5)]
    repo.create_session("bob")
    listed = repo.get_sessions("alice")
    assert listed == created[::-1]
    assert [s.metadata["n"] for s in listed] == [4, 3, 2, 1, 0]


def test_ties_in_created_at_are_broken_by_insertion_order(
    repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_time, "now", lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    created = [repo.create_session("alice") for _ in range(7)]
    assert len({s.created_at for s in created}) == 1
    assert repo.get_sessions("alice") == created[::-1]
    assert list(repo.iter_sessions("alice", page_size=2)) == created[::-1]
    assert [s for o in range(0, 7, 3) for s in repo.get_sessions("alice", limit=3, offset=o)] == (
        created[::-1]
    )


def test_created_at_orders_before_insertion(
    repo: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that goes backwards: the later-inserted but earlier-stamped
    # session sorts as older.
    stamps = iter([datetime(2026, 1, 2, tzinfo=timezone.utc),
                   datetime(2026, 1, 1, tzinfo=timezone.utc)])
    monkeypatch.setattr(_time, "now", lambda: next(stamps))
    first = repo.create_session("alice")
    second = repo.create_session("alice")
    assert repo.get_sessions("alice") == [first, second]
    assert list(repo.iter_sessions("alice", page_size=1)) == [first, second]


def test_limit_and_offset(repo: SessionRepository) -> None:
    created = [repo.create_session("alice") for _ in range(5)][::-1]
    assert repo.get_sessions("alice", limit=2) == created[:2]
    assert repo.get_sessions("alice", limit=2, offset=2) == created[2:4]
    assert repo.get_sessions("alice", limit=2, offset=4) == created[4:]
    assert repo.get_sessions("alice", limit=10, offset=5) == []
    assert repo.get_sessions("alice", offset=3) == created[3:]
    assert repo.get_sessions("alice", limit=0) == []
    assert repo.get_sessions("alice", limit=None) == created


def test_unknown_user_has_no_sessions(repo: SessionRepository) -> None:
    repo.create_session("alice")
    assert repo.get_sessions("nobody") == []
    assert list(repo.iter_sessions("nobody")) == []
    assert repo.count_sessions("nobody") == 0


def test_iter_sessions_is_lazy_and_survives_writes_between_pages(
    repo: SessionRepository,
) -> None:
    created = [repo.create_session("alice") for _ in range(5)][::-1]
    pages = repo.iter_sessions("alice", page_size=2)
    first = next(pages)
    newer = repo.create_session("alice")  # newer than the cursor: not yielded
    repo.delete_session("alice", created[3].session_id)  # not yet reached: skipped
    rest = list(pages)
    assert [first, *rest] == [created[0], created[1], created[2], created[4]]
    assert newer not in rest


def test_iter_sessions_checks_its_arguments_at_call_time(repo: SessionRepository) -> None:
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        repo.iter_sessions("alice", page_size=0)


def test_count_sessions(repo: SessionRepository) -> None:
    for _ in range(3):
        repo.create_session("alice")
    repo.create_session("bob")
    assert (repo.count_sessions("alice"), repo.count_sessions("bob")) == (3, 1)


# -- update_metadata ---------------------------------------------------------


def test_update_metadata_merges_by_default(repo: SessionRepository) -> None:
    s = repo.create_session("alice", metadata={"title": "Trip", "pinned": True})
    s.add_items([1, 2])
    updated = repo.update_metadata("alice", s.session_id, {"title": "Rome", "n": 3})
    assert updated.metadata == {"title": "Rome", "pinned": True, "n": 3}
    assert list(updated.metadata) == ["title", "pinned", "n"]
    assert repo.get_sessions("alice")[0].metadata == updated.metadata
    assert s.get_items() == [1, 2]
    assert updated.updated_at == s.updated_at  # metadata is not an item change


def test_update_metadata_can_replace(repo: SessionRepository) -> None:
    s = repo.create_session("alice", metadata={"title": "Trip", "pinned": True})
    updated = repo.update_metadata("alice", s.session_id, {"title": "Rome"}, replace=True)
    assert updated.metadata == {"title": "Rome"}
    assert repo.update_metadata("alice", s.session_id, {}, replace=True).metadata == {}


@pytest.mark.parametrize("replace", [False, True])
def test_update_metadata_of_another_users_session_changes_nothing(
    repo: SessionRepository, backend: Backend, replace: bool
) -> None:
    s = repo.create_session("alice", metadata={"title": "Trip"})
    before = backend.snapshot()
    with pytest.raises(SessionNotFoundError, match="user 'bob' has no session"):
        repo.update_metadata("bob", s.session_id, {"title": "x"}, replace=replace)
    with pytest.raises(SessionNotFoundError):
        repo.update_metadata("alice", "missing", {"title": "x"}, replace=replace)
    assert backend.snapshot() == before


# -- delete_session / delete_user ----------------------------------------------


def test_delete_session_removes_it_and_its_items(repo: SessionRepository, backend: Backend
                                                 ) -> None:
    keep = repo.create_session("alice")
    keep.add_items([1])
    gone = repo.create_session("alice")
    gone.add_items([1, 2, 3])
    assert repo.delete_session("alice", gone.session_id) is True
    assert repo.get_session("alice", gone.session_id) is None
    assert repo.get_sessions("alice") == [keep]
    assert backend.stored_items(gone.session_id) == []
    assert backend.stored_items(keep.session_id) == ["1"]
    assert repo.find_session(gone.session_id) is None
    assert repo.get_unowned_sessions() == []  # nothing left behind for openai-agents either
    assert repo.delete_session("alice", gone.session_id) is False
    assert gone.get_items() == []
    with pytest.raises(SessionNotFoundError, match="no longer has session"):
        gone.add_items([4])


def test_delete_session_of_another_user_is_false_and_changes_nothing(
    repo: SessionRepository, backend: Backend
) -> None:
    s = repo.create_session("alice")
    s.add_items([1])
    before = backend.snapshot()
    assert repo.delete_session("bob", s.session_id) is False
    assert repo.delete_session("alice", "missing") is False
    assert backend.snapshot() == before


def test_delete_user_erases_everything_of_theirs_only(
    repo: SessionRepository, backend: Backend
) -> None:
    alices = [repo.create_session("alice") for _ in range(3)]
    for n, s in enumerate(alices):
        s.add_items(list(range(n + 1)))
    bob = repo.create_session("bob")
    bob.add_items(["b"])
    assert repo.delete_user("alice") == DeletedUser("alice", found=True, sessions=3, items=6)
    assert repo.count_sessions("alice") == 0
    assert [u.user_id for u in repo.get_users()] == ["bob"]
    assert all(backend.stored_items(s.session_id) == [] for s in alices)
    assert repo.get_unowned_sessions() == []
    info = repo.info()
    assert (info.users, info.sessions, info.items) == (1, 1, 1)
    assert repo.get_sessions("bob") == [bob] and bob.get_items() == ["b"]


def test_info_keeps_what_only_its_backend_has_in_details(repo: SessionRepository,
                                                         backend: Backend) -> None:
    details = repo.info().details
    if backend.has_file:
        assert details == {"sqlite_version": sqlite3.sqlite_version, "journal_mode": "wal"}
    else:
        assert list(details) == ["server_version"]
        assert re.fullmatch(r"\d+\.\d+", details["server_version"])
    # A copy: changing it changes nothing the repository holds.
    details.clear()
    assert repo.info().details


def test_delete_user_reports_unknown_and_empty_users(repo: SessionRepository) -> None:
    assert repo.delete_user("nobody") == DeletedUser("nobody", found=False, sessions=0, items=0)
    s = repo.create_session("carol")
    repo.delete_session("carol", s.session_id)
    assert repo.delete_user("carol") == DeletedUser("carol", found=True, sessions=0, items=0)


def test_user_can_come_back_after_delete_user(repo: SessionRepository) -> None:
    repo.create_session("alice")
    repo.delete_user("alice")
    s = repo.create_session("alice")
    assert repo.get_sessions("alice") == [s]


# -- data, not SQL -------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE agent_sessions; --",
    'alice" OR 1=1 --',
    "x' UNION SELECT session_id, user_id, metadata, created_at, updated_at"
    " FROM agent_user_sessions --",
    "🙂 ünïcödé",
    "a b",
]


@pytest.mark.parametrize("user_id", HOSTILE)
def test_sql_looking_ids_are_plain_data(repo: SessionRepository, user_id: str) -> None:
    other = repo.create_session("alice")
    s = repo.create_session(user_id, session_id=user_id, metadata={user_id: user_id})
    s.add_items([user_id])
    again = repo.get_session(user_id, user_id)
    assert again is not None and again.metadata == {user_id: user_id}
    assert again.get_items() == [user_id]
    assert repo.get_sessions(user_id) == [s]
    assert repo.get_sessions("alice") == [other]
    assert repo.delete_user(user_id).sessions == 1
    assert repo.get_sessions("alice") == [other]


@pytest.mark.parametrize("user_id", ["alice\n", " alice", "alice ", "a\tb", "a\rb", "a\x1bb",
                                     "a\u2028b", "a\x85b", " "])
def test_new_user_ids_with_control_characters_or_outer_blanks_are_refused(
    repo: SessionRepository, user_id: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match=r"user_id .* control character .* blanks at either end"):
        repo.create_session(user_id)
    with pytest.raises(ValueError, match="control character"):
        repo.claim_sessions(user_id, [])
    assert repo.get_users() == []  # nothing was written
    # One an older sessions_dal stored stays readable and writable, under its own name.
    monkeypatch.setattr(repository, "check_new_id", check_id)
    old = repo.create_session(user_id, session_id="old")
    monkeypatch.undo()
    old.add_items(["still here"])
    assert [s.session_id for s in repo.get_sessions(user_id)] == ["old"]
    if user_id.strip() and user_id.strip() != user_id:
        assert repo.get_sessions(user_id.strip()) == []  # the look-alike is another user
    assert repo.get_session(user_id, "old").get_items() == ["still here"]  # type: ignore[union-attr]


def test_repr_is_short_and_runs_no_query(backend: Backend) -> None:
    repo = backend.open()
    s = repo.create_session("alice", session_id="s1")
    repo.close()
    # Both reprs work on a closed repository, so neither touches the database.
    assert repr(repo) == f"<SessionRepository {repo.path!r} closed>"
    assert repr(s) == (f"Session(session_id='s1', user_id='alice', "
                       f"updated_at='{s.updated_at.isoformat(timespec='seconds')}')")


def test_repr_shows_the_title_and_the_last_activity(repo: SessionRepository,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_time, "now", lambda: datetime(2026, 3, 1, 9, 30, 15, 123456,
                                                       tzinfo=timezone.utc))
    s = repo.create_session("alice", session_id="s1", metadata={"title": "Trip to Rome"})
    assert repr(s) == ("Session(session_id='s1', user_id='alice', title='Trip to Rome', "
                       "updated_at='2026-03-01T09:30:15+00:00')")
    monkeypatch.setattr(_time, "now", lambda: datetime(2026, 3, 2, tzinfo=timezone.utc))
    s.add_items([1])
    assert repr(s).endswith("updated_at='2026-03-02T00:00:00+00:00')")
    long = repo.create_session("alice", metadata={"title": "x" * 100 + "\x1b[2J"})
    assert f"title='{'x' * 39}…'" in repr(long) and "\x1b" not in repr(long)
    odd = repo.create_session("alice", metadata={"title": ["not", "text"]})
    assert "title=['not', 'text']" in repr(odd)
    huge = repo.create_session("alice", metadata={"title": {"deep": ["x" * 1000] * 100}})
    assert "title={'deep': ['xxx" in repr(huge) and len(repr(huge)) < 200
    assert s.to_dict()["metadata"] == {"title": "Trip to Rome"}  # to_dict: the plain values


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("metadata", "{not json", "metadata that is not valid JSON"),
     ("metadata", "[1, 2]", "metadata that is a JSON list, not an object")],
)
def test_damaged_session_row_is_a_library_error_naming_the_row(
    repo: SessionRepository, backend: Backend, column: str, value: str, message: str
) -> None:
    s = repo.create_session("alice", session_id="hurt")
    repo.create_session("alice", session_id="fine")
    backend.set_session_column("hurt", column, value)
    expected = rf"session 'hurt' \(its agent_user_sessions row\) has {re.escape(message)}"
    calls = [lambda: repo.get_sessions("alice"), lambda: repo.get_session("alice", "hurt"),
             lambda: list(repo.iter_sessions("alice")), lambda: repo.find_session("hurt")]
    if column == "metadata":
        calls.append(lambda: repo.update_metadata("alice", "hurt", {"a": 1}))
    for call in calls:
        with pytest.raises(CorruptSessionError, match=expected):
            call()
    assert isinstance(CorruptSessionError("x"), CorruptDataError)
    assert repo.get_session("alice", "fine") is not None
    s.add_items([1])  # items are untouched by a damaged session row
    assert s.get_items() == [1]



def test_errors_carry_their_remedy_apart_from_the_problem(repo: SessionRepository) -> None:
    repo.create_session("alice", session_id="s")
    with pytest.raises(SessionExistsError) as taken:
        repo.create_session("alice", session_id="s")
    assert taken.value.problem == "session_id 's' already exists"
    assert taken.value.remedy is Remedy.NEW_OR_EXISTING
    assert str(taken.value) == f"{taken.value.problem}; {Remedy.NEW_OR_EXISTING.value}"
    with pytest.raises(SessionNotFoundError) as missing:
        repo.claim_session("bob", "nowhere")
    assert missing.value.remedy is Remedy.LIST_UNOWNED
    assert SessionsDalError("plain").remedy is None and str(SessionsDalError("plain")) == "plain"
    with pytest.raises(TypeError, match="remedy must be a Remedy"):
        SessionsDalError("x", "use --foo")  # type: ignore[arg-type]


def test_optional_abilities_are_there_or_say_what_to_use(repo: SessionRepository,
                                                         backend: Backend, tmp_path: Path
                                                         ) -> None:
    with pytest.raises(TypeError, match=r"target must be a str or os\.PathLike, not int"):
        repo.backup(5)  # type: ignore[arg-type]
    if backend.has_file:
        repo.backup(tmp_path / "copy.db")
        assert (tmp_path / "copy.db").stat().st_size > 0
    else:
        with pytest.raises(NotImplementedError, match="pg_dump, or export_to"):
            repo.backup(tmp_path / "copy.db")
    if backend.has_roles:
        assert any(line.startswith("GRANT") for line in repo.grant("someone", dry_run=True))
    else:
        with pytest.raises(NotImplementedError, match="has no roles"):
            repo.grant("someone", dry_run=True)


def test_info_stays_hashable_and_keeps_0_2s_attributes(repo: SessionRepository,
                                                       backend: Backend) -> None:
    info = repo.info()
    assert hash(info) == hash(repo.info()) and info == repo.info()
    assert {info, repo.info()} == {info}
    if backend.has_file:
        assert (info.sqlite_version, info.server_version, info.journal_mode) == (
            sqlite3.sqlite_version, sqlite3.sqlite_version, "wal")
    else:
        assert info.sqlite_version == info.journal_mode == ""
        assert info.server_version == info.details["server_version"]
