"""The sessions-dal command line, driven as a subprocess like a person or a script would."""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from agents_schema import write_like_agents
from helpers import dump

import sessions_dal
from sessions_dal import SCHEMA_VERSION, SessionRepository, repository
from sessions_dal._validate import check_id
from sessions_dal.cli import main

# The subprocess imports the same sessions_dal as these tests, installed or not.
IMPORT_ROOT = str(Path(sessions_dal.__file__).resolve().parent.parent)


def cli(cwd: Path, *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SESSIONS_DAL_DB"}
    environ["PYTHONPATH"] = IMPORT_ROOT
    return subprocess.run(
        [sys.executable, "-m", "sessions_dal", *args], cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=60, env={**environ, **(env or {})},
    )


def ok(cwd: Path, *args: str, stdin: str | None = None) -> str:
    result = cli(cwd, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(cwd: Path, *args: str) -> Any:
    return json.loads(ok(cwd, *args, "--json"))


def fails(cwd: Path, *args: str, code: int = 1, stdin: str | None = None) -> str:
    result = cli(cwd, *args, stdin=stdin)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.startswith("sessions-dal: error: ")
        assert result.stderr.count("\n") == 1
    return result.stderr


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A ./sessions.db with two users; returns the folder."""
    with SessionRepository(tmp_path / "sessions.db") as repo:
        trip = repo.create_session("alice", session_id="trip", metadata={"title": "Trip"})
        trip.add_items([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                        {"role": "user", "content": "train?"}])
        repo.create_session("alice", session_id="work", metadata={"title": "Work"})
        repo.create_session("bob", session_id="b1").add_items(["x"])
    return tmp_path


def test_create_then_list_then_show_on_the_default_database(tmp_path: Path) -> None:
    session_id = ok(tmp_path, "create", "alice", "--metadata", '{"title": "Trip"}').strip()
    assert (tmp_path / "sessions.db").exists()
    listing = ok(tmp_path, "sessions", "alice")
    assert listing.splitlines()[0].split()[:2] == ["SESSION_ID", "CREATED"]
    assert session_id in listing and '{"title": "Trip"}' in listing
    shown = ok(tmp_path, "show", session_id)
    assert f"session:  {session_id}" in shown and "user:     alice" in shown


def test_db_option_and_environment_variable(tmp_path: Path) -> None:
    ok(tmp_path, "create", "alice", "--db", "one.db")
    ok(tmp_path, "--db", "one.db", "create", "alice")
    env_run = cli(tmp_path, "create", "bob", env={"SESSIONS_DAL_DB": str(tmp_path / "two.db")})
    assert env_run.returncode == 0
    assert as_json(tmp_path, "info", "--db", "one.db")["sessions"] == 2
    assert as_json(tmp_path, "info", "--db", "two.db")["users"] == 1
    assert not (tmp_path / "sessions.db").exists()


def test_info(filled: Path) -> None:
    text = ok(filled, "info")
    assert re.search(rf"schema version: +{SCHEMA_VERSION}\n", text)
    assert re.search(r"journal mode: +wal\n", text)
    # SQLite's version by its name: no server here.
    assert f"sqlite version:     {sqlite3.sqlite_version}\n" in text
    # As in 0.2: the backend's facts after the schema's, before the counts.
    assert [line.split(":")[0] for line in text.splitlines()][:8] == [
        "path", "backend", "schema version", "migration pending", "sqlite version",
        "journal mode", "users", "sessions"]
    assert "server" not in text
    info = as_json(filled, "info")
    assert info["path"] == "sessions.db"
    assert (info["users"], info["sessions"], info["items"]) == (2, 3, 4)
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["details"] == {"sqlite_version": sqlite3.sqlite_version, "journal_mode": "wal"}


def test_users(filled: Path) -> None:
    assert [line.split()[:2] for line in ok(filled, "users").splitlines()] == [
        ["USER", "SESSIONS"], ["alice", "2"], ["bob", "1"]]
    users = as_json(filled, "users")
    assert [(u["user_id"], u["sessions"]) for u in users] == [("alice", 2), ("bob", 1)]


def test_sessions_with_limit_and_offset(filled: Path) -> None:
    listed = as_json(filled, "sessions", "alice")
    assert [(s["session_id"], s["items"], s["metadata"]) for s in listed] == [
        ("work", 0, {"title": "Work"}), ("trip", 3, {"title": "Trip"})]
    assert [s["session_id"] for s in as_json(filled, "sessions", "alice", "--limit", "1",
                                             "--offset", "1")] == ["trip"]
    assert ok(filled, "sessions", "nobody").strip() == "(no sessions for user 'nobody')"


def test_sessions_sorted_by_last_activity(filled: Path) -> None:
    with SessionRepository(filled / "sessions.db") as repo:
        repo.get_session("alice", "trip").add_items(["back"])  # type: ignore[union-attr]
    assert [s["session_id"] for s in as_json(filled, "sessions", "alice")] == ["work", "trip"]
    by_activity = as_json(filled, "sessions", "alice", "--sort", "updated")
    assert [s["session_id"] for s in by_activity] == ["trip", "work"]
    assert [s["session_id"] for s in as_json(filled, "sessions", "alice", "--sort", "updated",
                                             "--offset", "1")] == ["work"]
    text = ok(filled, "sessions", "alice", "--sort", "updated")
    assert [line.split()[0] for line in text.splitlines()[1:]] == ["trip", "work"]
    assert "invalid choice: 'newest'" in fails(filled, "sessions", "alice", "--sort", "newest",
                                               code=2)


def test_show_with_user_and_limit(filled: Path) -> None:
    shown = as_json(filled, "show", "trip", "--user", "alice", "--limit", "2")
    assert shown["items"] == 3
    assert shown["items_shown"] == [{"role": "assistant", "content": "yo"},
                                    {"role": "user", "content": "train?"}]
    text = ok(filled, "show", "trip", "--limit", "1")
    assert "items:    3\n  ... 2 earlier items (--offset 1 to scroll back" in text
    assert text.rstrip().endswith("3  user: train?")
    assert "no session 'trip' for user 'bob'" in fails(filled, "show", "trip", "--user", "bob")


def test_show_prints_the_latest_20_and_scrolls_back(tmp_path: Path) -> None:
    with SessionRepository(tmp_path / "sessions.db") as repo:
        repo.create_session("alice", session_id="long").add_items(
            [{"role": "user", "content": f"message {n}"} for n in range(1, 46)])
    text = ok(tmp_path, "show", "long")
    lines = text.splitlines()
    assert "  ... 25 earlier items (--offset 20 to scroll back, --all for every item)" in lines
    assert lines[-20].split() == ["26", "user:", "message", "26"]
    assert lines[-1].split() == ["45", "user:", "message", "45"]
    back = ok(tmp_path, "show", "long", "--offset", "20").splitlines()
    assert "  ... 5 earlier items (--offset 40 to scroll back, --all for every item)" in back
    assert [line.split()[0] for line in back[-20:]] == [str(n) for n in range(6, 26)]
    first = ok(tmp_path, "show", "long", "--offset", "40").splitlines()
    assert not any("earlier" in line for line in first)
    assert [line.split()[0] for line in first[-5:]] == ["1", "2", "3", "4", "5"]
    every = ok(tmp_path, "show", "long", "--all").splitlines()
    assert [line.split()[0] for line in every[-45:]] == [str(n) for n in range(1, 46)]
    assert "(no items before the latest 45)" in ok(tmp_path, "show", "long", "--offset", "45")
    assert "earlier" not in ok(tmp_path, "show", "long", "--limit", "0")  # no hint to go nowhere
    shown = as_json(tmp_path, "show", "long", "--offset", "40", "--limit", "2")
    assert (shown["items"], shown["offset"], shown["first_shown"]) == (45, 40, 4)
    assert shown["items_shown"] == [{"role": "user", "content": "message 4"},
                                    {"role": "user", "content": "message 5"}]
    assert "not allowed with argument" in fails(tmp_path, "show", "long", "--all", "--limit",
                                                "3", code=2)
    before_latest_3 = ok(tmp_path, "show", "long", "--all", "--offset", "3").splitlines()
    assert [line.split()[0] for line in before_latest_3[-42:]] == [str(n) for n in range(1, 43)]
    assert "must be >= 0" in fails(tmp_path, "show", "long", "--offset", "-1", code=2)


def test_show_prints_common_agent_items_one_readable_line_each(tmp_path: Path) -> None:
    items = [
        {"role": "user", "content": "Where to?\nRome, maybe"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Rome", "annotations": []},
            {"type": "output_text", "text": "by train."}]},
        {"type": "function_call", "call_id": "c1", "name": "book", "arguments": '{"to": "Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "booked\x1b[31m"},
        {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "cheap"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_image"}]},
        {"type": "message", "role": "user", "content": [{"type": "puzzle"}, 3]},
        [1, "two"],
        "x" * 500,
    ]
    with SessionRepository(tmp_path / "sessions.db") as repo:
        repo.create_session("alice", session_id="s").add_items(items)
    lines = ok(tmp_path, "show", "s").splitlines()[-len(items):]
    assert [line.split(None, 1)[1] for line in lines[:5]] == [
        "user: Where to? Rome, maybe",
        "assistant: Rome by train.",
        'tool call: book({"to": "Rome"})',
        "tool output: booked\\x1b[31m",  # escaped: never acts on the terminal
        "reasoning: cheap",
    ]
    assert lines[5].endswith("user: [image]")
    assert lines[6].endswith('{"type": "message", "role": "user", "content": [{"type": '
                             '"puzzle"}, 3]}')  # not a part: the JSON
    assert lines[7].endswith('[1, "two"]')
    assert len(lines[8]) < 200 and lines[8].endswith("x…")
    assert as_json(tmp_path, "show", "s")["items_shown"] == items  # --json: the raw items


def test_fork_branches_a_session_from_the_command_line(filled: Path) -> None:
    branch = ok(filled, "fork", "alice", "trip", "--upto", "2").strip()
    with SessionRepository(filled / "sessions.db") as repo:
        made = repo.get_session("alice", branch)
        assert made is not None and made.get_items() == [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        assert made.metadata == {"forked_from": {"session_id": "trip", "items": 2}}
    shown = as_json(filled, "fork", "alice", "trip", "--metadata", '{"title": "Again"}')
    assert shown["items"] == 3 and shown["metadata"]["title"] == "Again"
    assert shown["user_id"] == "alice" and shown["session_id"] != branch
    assert "user 'bob' has no session 'trip'; nothing was created" in fails(
        filled, "fork", "bob", "trip")
    assert "must be >= 0" in fails(filled, "fork", "alice", "trip", "--upto", "-2", code=2)
    assert "no database at" in fails(filled, "--db", "elsewhere.db", "fork", "alice", "trip")
    assert len(as_json(filled, "sessions", "alice")) == 4


def test_create_json_and_bad_metadata(tmp_path: Path) -> None:
    created = as_json(tmp_path, "create", "alice", "--metadata", '{"n": [1, 2]}')
    assert created["user_id"] == "alice" and created["metadata"] == {"n": [1, 2]}
    assert created["items"] == 0
    assert "not valid JSON" in fails(tmp_path, "create", "alice", "--metadata", "{x", code=2)
    assert "must be a JSON object" in fails(tmp_path, "create", "a", "--metadata", "[1]", code=2)
    assert "user_id must not be empty" in fails(tmp_path, "create", "")


def test_add_appends_items_given_as_arguments_or_lines_of_stdin(filled: Path) -> None:
    assert ok(filled, "add", "alice", "work", '{"role": "user", "content": "go"}', "[1]",
              '"three"') == "added 3 items (the session has 3)\n"
    assert as_json(filled, "add", "alice", "work", "4") == {
        "session_id": "work", "added": 1, "items": 4}
    assert ok(filled, "add", "alice", "work", "-",
              stdin='{"n": 5}\n\n  \n[6, {"n": 7}]\n') == "added 2 items (the session has 6)\n"
    with SessionRepository(filled / "sessions.db") as repo:
        work = repo.get_session("alice", "work")
        assert work is not None and work.get_items() == [
            {"role": "user", "content": "go"}, [1], "three", 4, {"n": 5}, [6, {"n": 7}]]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["alice", "work", "[1]", "{oops"], None, "ITEM 2 is not valid JSON"),
    (["alice", "work", "-"], "1\n{oops\n", "line 2 is not valid JSON"),
    (["alice", "work", "-", "1"], None, "give it alone"),
    (["alice", "work", "NaN"], None, "strict JSON does not allow"),
    (["bob", "work", "1"], None, "user 'bob' has no session 'work'"),
    (["alice", "nope", "1"], None, "has no session 'nope'"),
])
def test_add_misused_adds_nothing(filled: Path, args: list[str], stdin: str | None,
                                  message: str) -> None:
    assert message in fails(filled, "add", *args, stdin=stdin)
    with SessionRepository(filled / "sessions.db") as repo:
        assert repo.get_session("alice", "work").get_items() == []  # type: ignore[union-attr]
    assert "the following arguments are required" in fails(filled, "add", "alice", "work",
                                                            code=2)


def test_delete(filled: Path) -> None:
    before = dump(filled / "sessions.db")
    assert "has no session 'trip'" in fails(filled, "delete", "bob", "trip")
    assert dump(filled / "sessions.db") == before
    assert ok(filled, "delete", "alice", "trip").strip() == "deleted session trip"
    assert as_json(filled, "info")["items"] == 1
    assert as_json(filled, "delete", "alice", "work") == {
        "deleted": True, "user_id": "alice", "session_id": "work"}


def test_delete_user_asks_first(filled: Path) -> None:
    before = dump(filled / "sessions.db")
    assert "(standard input is not a terminal); pass --yes" in fails(
        filled, "delete-user", "alice", stdin="y\n")
    assert dump(filled / "sessions.db") == before
    assert as_json(filled, "delete-user", "alice", "--yes") == {
        "user_id": "alice", "found": True, "sessions": 2, "items": 3}
    assert "no user 'alice'" in fails(filled, "delete-user", "alice", "--yes")
    assert ok(filled, "delete-user", "bob", "--yes").strip() == (
        "deleted user bob: 1 session(s), 1 item(s)")


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("n", False), ("", False)])
def test_delete_user_prompt_on_a_terminal(
    filled: Path, monkeypatch: pytest.MonkeyPatch, answer: str, deleted: bool
) -> None:
    monkeypatch.chdir(filled)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    assert main(["delete-user", "alice"]) == (0 if deleted else 1)
    assert prompts == ["Delete user 'alice' and their 2 session(s) with all items? [y/N] "]
    with SessionRepository("sessions.db") as repo:
        assert repo.count_sessions("alice") == (0 if deleted else 2)


@pytest.fixture
def aged(tmp_path: Path) -> Path:
    """alice: sessions last active 100, 50 and 1 days ago (2 items each); bob: 200 days."""
    now = datetime.now(timezone.utc)
    with SessionRepository(tmp_path / "sessions.db") as repo:
        for user, days in (("alice", 100), ("alice", 50), ("alice", 1), ("bob", 200)):
            s = repo.create_session(user, session_id=f"{user}-{days}")
            s.add_items([1, 2])
        conn = sqlite3.connect(tmp_path / "sessions.db")  # back-date their activity
        for user, days in (("alice", 100), ("alice", 50), ("alice", 1), ("bob", 200)):
            stamp = (now - timedelta(days=days)).isoformat(timespec="microseconds")
            conn.execute("UPDATE agent_user_sessions SET updated_at = ? WHERE session_id = ?",
                         (stamp, f"{user}-{days}"))
        conn.commit()
        conn.close()
    return tmp_path


def test_prune_dry_run_then_for_real(aged: Path) -> None:
    assert ok(aged, "prune", "--older-than", "90d", "--dry-run").strip() == (
        "would delete 2 session(s), 4 item(s)")
    assert as_json(aged, "prune", "--keep-last", "1", "--dry-run") == {
        "sessions": 2, "items": 4, "dry_run": True}
    assert as_json(aged, "prune", "--keep-last", "1", "--user", "bob", "--dry-run")[
        "sessions"] == 0
    assert "pass --yes" in fails(aged, "prune", "--older-than", "90d")  # no terminal to ask
    assert len(as_json(aged, "sessions", "alice")) == 3
    assert ok(aged, "prune", "--older-than", "7w", "--keep-last", "1", "--yes").strip() == (
        "deleted 3 session(s), 6 item(s)")
    assert [s["session_id"] for s in as_json(aged, "sessions", "alice")] == ["alice-1"]
    assert ok(aged, "prune", "--older-than", "1w", "--yes").strip() == (
        "deleted 0 session(s), 0 item(s)")
    assert as_json(aged, "prune", "--older-than", "1w", "--yes") == {
        "sessions": 0, "items": 0, "dry_run": False}


def test_prune_takes_a_time_as_well_as_an_age(aged: Path) -> None:
    cutoff = (datetime.now(timezone.utc) - timedelta(days=75)).replace(tzinfo=None)
    assert as_json(aged, "prune", "--older-than", cutoff.isoformat(), "--dry-run")[
        "sessions"] == 2  # a time without an offset is UTC
    assert as_json(aged, "prune", "--older-than", "2000-01-01T00:00:00+05:00", "--dry-run")[
        "sessions"] == 0


@pytest.mark.parametrize(("args", "code", "message"), [
    ([], 2, "prune needs --older-than, --keep-last or both"),
    (["--user", "alice"], 2, "prune needs --older-than, --keep-last or both"),
    (["--older-than", "90"], 2, "expected an age such as 90d"),
    (["--older-than", "90y"], 2, "expected an age such as 90d"),
    (["--older-than=-3d"], 2, "expected an age such as 90d"),
    (["--older-than", "99999999999d"], 2, "expected an age such as 90d"),
    (["--keep-last", "-1"], 2, "must be >= 0"),
    (["--keep-last", "1", "--unowned"], 2, "give --older-than only (no --keep-last"),
    (["--unowned"], 2, "prune needs --older-than, --keep-last or both"),
    (["--older-than", "1d", "--unowned", "--user", "bob"], 2, "no --user"),
    (["--older-than", "999999d", "--dry-run"], 2, "expected an age such as 90d"),
])
def test_prune_misused(aged: Path, args: list[str], code: int, message: str) -> None:
    assert message in fails(aged, "prune", *args, code=code)
    assert len(as_json(aged, "sessions", "alice")) == 3


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("no", False), ("", False)])
def test_prune_asks_on_a_terminal_and_shows_progress(
    aged: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    answer: str, deleted: bool
) -> None:
    monkeypatch.chdir(aged)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    assert main(["prune", "--keep-last", "0"]) == (0 if deleted else 1)
    assert prompts == ["Delete 4 session(s) with 8 item(s)? [y/N] "]
    out, err = capsys.readouterr()
    if deleted:
        assert err == "\rdeleted 4 of 4 sessions\n" and out == "deleted 4 session(s), 8 item(s)\n"
    else:
        assert (err, out) == ("", "nothing deleted\n")
    with SessionRepository("sessions.db") as repo:
        assert repo.count_sessions("alice") == (0 if deleted else 3)


def test_prune_interrupted_says_what_was_deleted(
    aged: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sessions_dal.repository

    monkeypatch.chdir(aged)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    monkeypatch.setattr(sessions_dal.repository, "PRUNE_BATCH", 1)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    calls: list[int] = []

    def interrupt_second(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("sessions_dal.cli._prune_progress", interrupt_second)
    assert main(["prune", "--keep-last", "0", "--yes"]) == 130
    assert capsys.readouterr().err.endswith(
        "sessions-dal: error: interrupted; prune had deleted 2 sessions (4 items) before "
        "this; run it again to finish\n")


@pytest.mark.parametrize(("command", "where"), [
    (["add", "alice", "work", "1"], "sessions_dal.session.Session.count_items"),
    (["delete", "alice", "work"], "sessions_dal.repository.SessionRepository.close"),
    (["create", "carol"], "sessions_dal.session.Session.to_dict"),
    (["show", "trip"], "sessions_dal.session.Session.count_items"),  # reads: nothing changed
])
def test_an_interrupt_after_the_write_returned_says_it_was_committed(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str], where: str,
) -> None:
    monkeypatch.chdir(filled)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    real = _resolve(where)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C as the command counts, closes or prints

    monkeypatch.setattr(where, interrupted)
    if command[0] == "create":
        command.append("--json")  # which prints the new session from to_dict()
    assert main(command) == 130
    said = capsys.readouterr().err
    if command[0] == "show":
        assert said == "sessions-dal: interrupted; nothing was changed\n"
    else:
        assert said == ("sessions-dal: error: interrupted after the change was committed: "
                        "it is in the database\n")


def _resolve(dotted: str) -> Any:
    module, cls, name = dotted.rsplit(".", 2)
    return getattr(getattr(importlib.import_module(module), cls), name)


def test_add_refuses_bytes_that_are_not_utf8_and_a_closed_stdin(
        filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    result = subprocess.run([sys.executable, "-m", "sessions_dal", "add", "alice", "work", "-"],
                            cwd=filled, input=b'{"content": "caf\xe9"}\n', capture_output=True,
                            check=False, env={**os.environ, "PYTHONPATH": IMPORT_ROOT})
    assert result.returncode == 1
    assert result.stderr == b"sessions-dal: error: line 1 is not UTF-8 text; nothing was added\n"
    argument = os.fsdecode(b'"\xff"')  # how Python hands such an argument over
    assert "ITEM 1 is not UTF-8 text" in fails(filled, "add", "alice", "work", argument)
    monkeypatch.chdir(filled)
    monkeypatch.setattr(sys, "stdin", None)  # started with `<&-`
    assert main(["add", "alice", "work", "-"]) == 1
    assert "standard input is closed" in capsys.readouterr().err
    with SessionRepository(filled / "sessions.db") as repo:
        assert repo.get_session("alice", "work").get_items() == []  # type: ignore[union-attr]


def test_export_and_import_round_trip(filled: Path, tmp_path_factory: pytest.TempPathFactory
                                      ) -> None:
    out = filled / "all.jsonl"
    result = cli(filled, "export", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.strip() == "exported 2 user(s), 3 session(s), 4 item(s)"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["type"] for r in records][:3] == ["export", "user", "session"]
    assert records[-1] == {"type": "end", "users": 2, "sessions": 3, "items": 4}
    assert body(ok(filled, "export")) == body(out.read_text())  # stdout gives the same lines

    other = tmp_path_factory.mktemp("other")
    imported = as_json(other, "import", str(out))
    assert imported == {"imported": {"users": 2, "sessions": 3, "items": 4}}
    for user in ("alice", "bob"):
        assert as_json(other, "sessions", user) == as_json(filled, "sessions", user)
    assert as_json(other, "show", "trip") == as_json(filled, "show", "trip")
    assert body(ok(other, "export")) == body(out.read_text())


def body(export: str) -> list[str]:
    """An export without its first line, which records when it was made."""
    return export.splitlines()[1:]


def test_export_of_one_user_and_import_from_stdin(filled: Path, tmp_path: Path) -> None:
    exported = ok(filled, "export", "--user", "bob")
    assert {json.loads(line)["type"] for line in exported.splitlines()} == {
        "export", "user", "session", "item", "end"}
    target = tmp_path / "target"
    target.mkdir()
    assert ok(target, "import", "-", stdin=exported).strip() == (
        "imported 1 user(s), 1 session(s), 1 item(s)")
    assert as_json(target, "users")[0]["user_id"] == "bob"


def test_import_of_an_existing_session_is_refused_unless_replace(filled: Path) -> None:
    out = filled / "bob.jsonl"
    ok(filled, "export", "--user", "bob", "-o", str(out))
    ok(filled, "create", "carol")
    before = dump(filled / "sessions.db")
    assert "session 'b1' already exists" in fails(filled, "import", str(out))
    assert dump(filled / "sessions.db") == before
    ok(filled, "import", str(out), "--replace")
    assert as_json(filled, "show", "b1")["items_shown"] == ["x"]
    assert as_json(filled, "info")["sessions"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1 is not JSON"),
        ("[1, 2]\n", "line 1 is not a JSON object"),
        ('{"type": "mystery"}\n', "unknown record type 'mystery'"),
        ('{"type": "item", "session_id": "s", "item": 1}\n', "must follow its session"),
        ('{"type": "session", "session_id": "s", "user_id": "u", "created_at": "yesterday",'
         ' "updated_at": "2026-01-01T00:00:00+00:00"}\n', "created_at must be an ISO 8601"),
        ('{"type": "session", "session_id": "s", "user_id": "u", "created_at": '
         '"2026-01-01T00:00:00", "updated_at": "2026-01-01T00:00:00+00:00"}\n', "no time zone"),
        ('{"type": "user", "user_id": ""}\n', "line 1: user_id must not be empty"),
    ],
)
def test_import_of_a_bad_file_writes_nothing(filled: Path, content: str, message: str) -> None:
    good = ok(filled, "export", "--user", "bob").replace('"b1"', '"b2"').splitlines(True)
    (filled / "bad.jsonl").write_text("".join([*good[:-1], content, good[-1]]))
    before = dump(filled / "sessions.db")
    assert message.replace("line 1", f"line {len(good)}") in fails(
        filled, "import", "bad.jsonl")
    assert dump(filled / "sessions.db") == before


def test_check(filled: Path) -> None:
    assert ok(filled, "check").strip() == "ok"
    assert as_json(filled, "check") == {"ok": True, "problems": []}
    conn = sqlite3.connect(filled / "sessions.db")
    conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, created_at, updated_at)"
                 " VALUES ('orphan', 'ghost', 'x', 'x')")
    conn.commit()
    conn.close()
    result = cli(filled, "check")
    assert result.returncode == 1
    assert "foreign key: agent_user_sessions row" in result.stdout
    assert "missing agent_users row" in result.stdout
    assert as_json_code(filled, "check")["ok"] is False


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_one_line_per_step_on_a_terminal_and_quarters_in_a_log(
        monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    from sessions_dal import cli as module

    err = io.StringIO()
    monkeypatch.setattr(err, "isatty", lambda: terminal)
    monkeypatch.setattr(sys, "stderr", err)
    report = module._migration_progress()
    for n in range(1, 11):
        report("version 3: Search: a full-text index, kept by triggers.", n / 10)
    report("search index: items", 0.5)
    if terminal:
        assert err.getvalue() == "".join(f"\r  version 3: {n}0%" for n in range(1, 10)) + (
            "\r  version 3: 100%\n\r  search index: items: 50%")
    else:
        assert err.getvalue() == ("  version 3: 25%\n  version 3: 50%\n  version 3: 75%\n"
                                  "  version 3: 100%\n  search index: items: 50%\n")


def test_check_finds_a_damaged_search_index_and_reindex_repairs_it(filled: Path) -> None:
    assert as_json(filled, "reindex") == {"repaired": 0}
    conn = sqlite3.connect(filled / "sessions.db")
    conn.execute("DELETE FROM sessions_dal_search WHERE rowid = 3")  # alice's "train?"
    conn.commit()
    conn.close()
    result = cli(filled, "check")
    assert result.returncode == 1
    assert result.stdout.startswith("search index: 1 item(s) with words have no row in it "
                                    "(by item id): 3; run 'sessions-dal reindex'")
    done = cli(filled, "reindex")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reindexed 'sessions.db' in ")
    assert done.stdout.endswith(": 1 index row(s) repaired\n")
    assert "search index: items: 100%" in done.stderr  # progress, as migrate shows it
    assert ok(filled, "check").strip() == "ok"
    assert ok(filled, "search", "alice", "train").splitlines() == ["trip  [train]?"]
    assert "no database at" in fails(filled, "--db", "nowhere.db", "reindex")


def as_json_code(cwd: Path, *args: str) -> Any:
    return json.loads(cli(cwd, *args, "--json").stdout)


@pytest.mark.parametrize(
    "command",
    [["info"], ["users"], ["sessions", "alice"], ["show", "x"], ["delete", "a", "x"],
     ["delete-user", "a", "--yes"], ["export"], ["check"], ["reindex"]],
)
def test_read_commands_never_create_a_database(tmp_path: Path, command: list[str]) -> None:
    message = fails(tmp_path, *command)
    assert "no database at 'sessions.db' (nothing was created)" in message
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "sessions.db").write_text("hello\n" * 100)
    assert "not an SQLite database" in fails(tmp_path, "info")
    assert "not an SQLite database" in fails(tmp_path, "import", "-", stdin="")


def test_reader_closing_the_pipe_early_is_not_an_error(tmp_path: Path) -> None:
    with SessionRepository(tmp_path / "sessions.db") as repo:
        repo.create_session("alice").add_items([{"text": "x" * 100}] * 5000)  # > a pipe buffer
    result = subprocess.run(
        f"{sys.executable} -m sessions_dal export | head -c 10", shell=True, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": IMPORT_ROOT},
    )
    assert result.stdout == '{"type": "'
    assert result.stderr == ""


def test_import_of_a_missing_file_creates_no_database(tmp_path: Path) -> None:
    assert "No such file" in fails(tmp_path, "import", "missing.jsonl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["sessions"], ["sessions", "a", "--limit", "-1"],
     ["sessions", "a", "--limit", "x"], ["show"], ["delete", "a"]],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert "usage: sessions-dal" in fails(tmp_path, *args, code=2)


def test_help_and_version(tmp_path: Path) -> None:
    assert "delete-user" in ok(tmp_path, "--help")
    assert ok(tmp_path, "--version").startswith("sessions-dal ")


def test_help_lists_the_commands_in_their_order(capsys: pytest.CaptureFixture[str]) -> None:
    # The order cli.py declares them in: moving a command there moves it here.
    with pytest.raises(SystemExit) as leaving:
        main(["--help"])
    assert leaving.value.code == 0
    assert re.findall(r"^ {4}([a-z-]+)", capsys.readouterr().out, re.MULTILINE) == [
        "info", "users", "sessions", "show", "search", "create", "add", "fork", "delete",
        "delete-user", "prune", "unowned", "claim", "delete-unowned", "export", "import",
        "migrate", "grant", "usage", "vacuum", "check", "reindex"]


def test_console_script_is_installed_alongside_python(tmp_path: Path) -> None:
    script = shutil.which("sessions-dal", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("sessions-dal is not installed in this environment (run pip install .)")
    result = subprocess.run([script, "create", "alice"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and len(result.stdout.strip()) == 36


# -- export -o never destroys what it should not ----------------------------------


@pytest.mark.parametrize("target", ["sessions.db", "sessions.db-wal", "sessions.db-shm",
                                    "link-to-db", "hardlink-to-db"])
def test_export_refuses_to_overwrite_the_database(filled: Path, target: str) -> None:
    db = filled / "sessions.db"
    os.symlink(db, filled / "link-to-db")
    os.link(db, filled / "hardlink-to-db")
    with SessionRepository(db):  # keep -wal and -shm in place while the command runs
        before = dump(db)
        message = fails(filled, "export", "-o", target, "--force")
        assert "it is the database itself" in message
        assert dump(db) == before


def test_export_refuses_an_existing_file_unless_forced_and_keeps_its_mode(filled: Path) -> None:
    out = filled / "out.jsonl"
    out.write_text("precious\n")
    out.chmod(0o640)
    assert "refusing to overwrite 'out.jsonl': it exists; pass --force" in fails(
        filled, "export", "-o", "out.jsonl")
    assert out.read_text() == "precious\n"
    ok(filled, "export", "-o", "out.jsonl", "--force")
    assert out.read_text().startswith('{"type": "export"')
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in filled.iterdir() if p.name.startswith(".")] == []


def test_a_new_export_file_gets_the_mode_the_umask_gives(filled: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessions_dal", "export", "-o", "new.jsonl"], cwd=filled,
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0o027),
        env={**os.environ, "PYTHONPATH": IMPORT_ROOT},
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((filled / "new.jsonl").stat().st_mode) == 0o640


def test_export_writes_through_a_symlink(filled: Path) -> None:
    (filled / "real.jsonl").write_text("old\n")
    os.symlink("real.jsonl", filled / "link.jsonl")
    ok(filled, "export", "-o", "link.jsonl", "--force")
    assert (filled / "link.jsonl").is_symlink()
    assert (filled / "real.jsonl").read_text().startswith('{"type": "export"')
    os.symlink("fresh.jsonl", filled / "dangling.jsonl")
    ok(filled, "export", "-o", "dangling.jsonl")
    assert (filled / "fresh.jsonl").read_text().startswith('{"type": "export"')


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_export_writes_into_a_named_pipe_and_a_device(filled: Path) -> None:
    fifo = filled / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    ok(filled, "export", "-o", "pipe")
    reader.join(30)
    assert received[0].splitlines()[-1] == '{"type": "end", "users": 2, "sessions": 3, "items": 4}'
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    ok(filled, "export", "-o", os.devnull)


def test_export_refuses_a_directory_and_names_no_temporary_file(filled: Path) -> None:
    (filled / "folder").mkdir()
    assert "it is a directory" in fails(filled, "export", "-o", "folder")
    message = fails(filled, "export", "-o", "no/such/dir/x.jsonl")
    assert "cannot write 'no/such/dir/x.jsonl'" in message and ".sessions-export" not in message


# -- --db, numbers, prompts, files: every misuse is one clear line -------------------


def test_an_empty_db_is_refused_never_the_default(filled: Path) -> None:
    assert "--db: must not be empty" in fails(filled, "--db", "", "users", code=2)
    result = cli(filled, "delete-user", "alice", "--yes", env={"SESSIONS_DAL_DB": ""})
    assert result.returncode == 1 and "SESSIONS_DAL_DB is set but empty" in result.stderr
    assert as_json(filled, "users")[0]["user_id"] == "alice"


def test_huge_numbers_work(filled: Path) -> None:
    huge = str(10**30)
    assert len(as_json(filled, "sessions", "alice", "--limit", huge)) == 2
    assert as_json(filled, "sessions", "alice", "--offset", huge) == []
    assert len(as_json(filled, "show", "trip", "--limit", huge)["items_shown"]) == 3


def test_end_of_input_at_the_delete_user_prompt_deletes_nothing(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(filled)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)

    def ctrl_d(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", ctrl_d)
    assert main(["delete-user", "alice"]) == 1
    assert "nothing deleted" in capsys.readouterr().out
    with SessionRepository("sessions.db") as repo:
        assert repo.count_sessions("alice") == 2


def test_import_problems_are_one_line_naming_the_fix(filled: Path) -> None:
    (filled / "latin1.jsonl").write_bytes('{"type": "user", "user_id": "é"}\n'.encode("latin-1"))
    assert "'latin1.jsonl' is not UTF-8 text (byte 0xe9" in fails(filled, "import", "latin1.jsonl")
    exported = ok(filled, "export", "--user", "bob")
    refused = fails(filled, "import", "-", stdin=exported)
    assert refused.endswith("nothing was imported; to overwrite it, pass --replace\n")
    cut = "".join(exported.splitlines(True)[:-1])
    message = fails(filled, "import", "-", stdin=cut.replace('"b1"', '"b9"'))
    assert "without the closing 'end' record" in message and "--no-end-record" in message
    far = exported.replace('"b1"', '"b8"').replace(
        exported.split('"created_at": "')[2][:32], "0001-01-01T00:00:00.000000+01:00")
    assert "must be an ISO 8601 timestamp" in fails(filled, "import", "-", stdin=far)
    deep = '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    assert "line 1" in fails(filled, "import", "-", stdin=deep)


# -- nothing from the data reaches the terminal as a control sequence ---------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\u2028\x00"


def test_control_characters_in_data_are_shown_escaped(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A user id as an older version stored it (new ones with control characters are refused).
    monkeypatch.setattr(repository, "check_new_id", check_id)
    with SessionRepository(tmp_path / "sessions.db") as repo:
        s = repo.create_session("x\x1b[31m", session_id="s\x1b[1m",
                                metadata={"title": HOSTILE})
        s.add_items([{"content": HOSTILE}, HOSTILE])
    outputs = [ok(tmp_path, "users"), ok(tmp_path, "sessions", "x\x1b[31m"),
               ok(tmp_path, "show", "s\x1b[1m"), ok(tmp_path, "info"),
               fails(tmp_path, "show", "missing\x1b[5m")]
    for text in outputs:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e\u2028]", text), text
    assert "\\u001b[2J" in outputs[2] and "\\x9b31m\\u202e" in outputs[2]
    shown = ok(tmp_path, "show", "s\x1b[1m", "--json")
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e\u2028]", shown)
    assert json.loads(shown)["items_shown"] == [{"content": HOSTILE}, HOSTILE]
    assert json.loads(shown)["metadata"] == {"title": HOSTILE}


# -- sessions openai-agents wrote, other table names, read-only inspection, migrate ----


def test_unowned_sessions_are_listed_claimed_and_deleted(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    for chat in ("c1", "c2", "c3"):
        write_like_agents(db, chat, ['{"n": 1}'])
    assert sorted(s["session_id"] for s in as_json(tmp_path, "unowned")) == ["c1", "c2", "c3"]
    assert "c2" in ok(tmp_path, "unowned")
    assert ok(tmp_path, "claim", "alice", "c1", "c2").strip() == "user alice now owns 2 session(s)"
    assert [s["session_id"] for s in as_json(tmp_path, "unowned")] == ["c3"]
    assert "belongs to another user" in fails(tmp_path, "claim", "bob", "c1", "c3")
    assert [s["session_id"] for s in as_json(tmp_path, "unowned")] == ["c3"]  # all or nothing
    assert "belongs to user 'alice'" in fails(tmp_path, "delete-unowned", "c1")
    assert "no such session" in fails(tmp_path, "delete-unowned", "nope")
    assert ok(tmp_path, "delete-unowned", "c3").strip() == "deleted unowned session c3"
    assert ok(tmp_path, "unowned").strip() == "(no unowned sessions)"
    assert as_json(tmp_path, "info")["items"] == 2


def test_other_table_names_are_given_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    write_like_agents(db, "chat", ['{"n": 1}'], sessions="my_sessions", messages="my_messages")
    names = ["--sessions-table", "my_sessions", "--messages-table", "my_messages"]
    assert [s["session_id"] for s in as_json(tmp_path, "unowned", *names)] == ["chat"]
    ok(tmp_path, "claim", "alice", "chat", *names)
    assert as_json(tmp_path, *names, "show", "chat")["items_shown"] == [{"n": 1}]
    assert "sessions_table must be" in fails(tmp_path, "info", "--sessions-table", "x; DROP")


def test_inspection_commands_never_write(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    write_like_agents(db, "chat", ['{"n": 1}'])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for command in (["info"], ["users"], ["sessions", "alice"], ["show", "chat"], ["unowned"],
                    ["export"], ["check"], ["migrate", "--dry-run"]):
        ok(tmp_path, *command)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert "schema version:     0" in ok(tmp_path, "info")
    assert "'sessions-dal migrate' does" in ok(tmp_path, "info")
    assert as_json(tmp_path, "--db", os.devnull, "info")["users"] == 0
    assert not os.path.exists(os.devnull + "-journal")


def test_migrate_says_what_it_does_backs_up_then_does_it(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    write_like_agents(db, "chat", ['{"n": 1}'])
    plan = ok(tmp_path, "migrate", "--dry-run")
    assert "is not yet set up by sessions_dal; migrating will:" in plan
    assert "  - version 1: " in plan and "(dry run: nothing was changed)" in plan
    (tmp_path / "taken.db").write_text("x")
    assert "must name a new file" in fails(tmp_path, "migrate", "--backup", "taken.db")
    done = ok(tmp_path, "migrate", "--backup", "before.db")
    assert "backed up to 'before.db'" in done
    assert f"from schema version 0 to {SCHEMA_VERSION}" in done
    assert as_json(tmp_path, "info")["schema_version"] == SCHEMA_VERSION
    assert as_json(tmp_path, "--db", "before.db", "info")["schema_version"] == 0
    assert as_json(tmp_path, "--db", "before.db", "unowned")[0]["session_id"] == "chat"
    assert "nothing to do" in ok(tmp_path, "migrate")


# -- in-process: the paths a subprocess cannot steer --------------------------------


@pytest.fixture
def here(filled: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(filled)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    return filled


def test_json_output_of_claim_and_delete_unowned(here: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_like_agents(here / "sessions.db", "c1", ['"x"'])
    write_like_agents(here / "sessions.db", "c2", ['"y"'])
    assert main(["claim", "carol", "c1", "--json"]) == 0
    (claimed,) = json.loads(capsys.readouterr().out)
    assert (claimed["session_id"], claimed["user_id"], claimed["items"]) == ("c1", "carol", 1)
    assert main(["delete-unowned", "c2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "deleted": True, "user_id": None, "session_id": "c2"}


def test_info_says_when_a_file_needs_migrate(here: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(here / "sessions.db")
    conn.execute("DROP TABLE sessions_dal_migrations")  # as sessions_dal 0.1 left it
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    assert main(["info"]) == 0
    assert "note: this database needs an upgrade; run 'sessions-dal migrate'" in (
        capsys.readouterr().out)
    assert main(["migrate"]) == 0
    assert "record the schema version in table sessions_dal_migrations" in (
        capsys.readouterr().out)
    assert main(["info"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_export_to_an_empty_name_or_a_socket_is_refused(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    assert main(["export", "-o", ""]) == 1
    assert "-o needs a file name" in capsys.readouterr().err
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock")
        assert main(["export", "-o", "sock", "--force"]) == 1
    assert "not a regular file, a pipe or a terminal" in capsys.readouterr().err


def test_a_failed_export_leaves_neither_target_nor_temporary_file(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(here / "sessions.db")
    conn.execute("UPDATE agent_messages SET message_data = '{broken' WHERE id = 2")
    conn.commit()
    conn.close()
    assert main(["export", "-o", "out.jsonl"]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    assert sorted(p.name for p in here.iterdir() if "jsonl" in p.name or p.name[0] == ".") == []


def test_progress_is_shown_on_a_terminal(here: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with SessionRepository("sessions.db") as repo:
        repo.create_session("dora").add_items(list(range(2_500)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["export", "-o", "all.jsonl"]) == 0
    progress = capsys.readouterr().err
    assert progress.startswith("\rexported 4 sessions, 996 items\rexported 4 sessions, 1996")
    assert main(["import", "all.jsonl", "--db", "copy.db"]) == 0
    assert "\rimported" in capsys.readouterr().err


def test_astral_control_characters_are_escaped_as_json(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag = "\U000e0041"  # an invisible TAG LATIN CAPITAL LETTER A
    with SessionRepository("sessions.db") as repo:
        repo.create_session("eve", session_id="tagged", metadata={"t": tag})
    assert main(["show", "tagged", "--json"]) == 0
    out = capsys.readouterr().out
    assert tag not in out and "\\udb40\\udc41" in out
    assert json.loads(out)["metadata"] == {"t": tag}


def test_interrupt_and_unexpected_errors_are_one_line(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(SessionRepository, "get_users", interrupted)
    assert main(["users"]) == 130
    assert capsys.readouterr().err == "sessions-dal: interrupted; nothing was changed\n"

    def broken(*args: object, **kwargs: object) -> None:
        raise LookupError("a bug")

    monkeypatch.setattr(SessionRepository, "get_users", broken)
    assert main(["users"]) == 1
    assert capsys.readouterr().err == (
        "sessions-dal: error: unexpected LookupError: a bug (please report this)\n")


# -- found by the hostile probe of this release ----------------------------------------


def shell(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONS_DAL_DB"}
    env["PYTHONPATH"] = IMPORT_ROOT
    command = command.replace("SD", f"{sys.executable} -m sessions_dal")
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def test_export_to_standard_output_by_name_appends(filled: Path) -> None:
    piped = shell(filled, "SD export -o /dev/stdout | tail -n 1")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == '{"type": "end", "users": 2, "sessions": 3, "items": 4}\n'
    (filled / "log").write_text("old\n")
    appended = shell(filled, "SD export -o /dev/stdout >> log && SD export -o - >> log")
    assert appended.returncode == 0, appended.stderr
    lines = (filled / "log").read_text().splitlines()
    assert lines[0] == "old" and len(lines) == 1 + 2 * 11  # two whole exports after it


def test_side_files_of_the_database_are_refused_under_any_name(filled: Path) -> None:
    os.link(filled / "sessions.db", filled / "other-name.db")
    with SessionRepository(filled / "sessions.db"):  # -wal and -shm exist meanwhile
        for target in ("other-name.db-wal", "sessions.db-journal"):
            assert "it is the database itself" in fails(
                filled, "export", "-o", target, "--force")
        assert "must name a new file, not an existing one, the database" in fails(
            filled, "--db", "other-name.db", "migrate", "--backup", "sessions.db-journal")
    assert not (filled / "sessions.db-journal").exists()


def test_a_failed_import_into_a_new_file_leaves_no_database(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b"\xff\xfe not text\n")
    fails(tmp_path, "--db", "new.db", "import", "bad.jsonl")
    (tmp_path / "cut.jsonl").write_text('{"type": "user", "user_id": "a", '
                                        '"created_at": "2026-01-01T00:00:00+00:00"}\n')
    fails(tmp_path, "--db", "new.db", "import", "cut.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "cut.jsonl"]


def test_json_output_is_strict_json_even_for_nan(tmp_path: Path) -> None:
    write_like_agents(tmp_path / "sessions.db", "chat", ['{"n": NaN, "m": -Infinity}'])
    shown = ok(tmp_path, "show", "chat", "--json")

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    assert json.loads(shown, parse_constant=refuse)["items_shown"] == [
        {"n": "NaN", "m": "-Infinity"}]


def test_a_closed_standard_output_is_one_clear_line(filled: Path) -> None:
    for command in ("SD users >&-", "SD export >&-"):
        result = shell(filled, command)
        assert result.returncode == 1
        assert result.stderr == (
            "sessions-dal: error: standard output is closed; run the command with somewhere "
            "to print to\n")


def test_usage_errors_escape_what_they_quote(tmp_path: Path) -> None:
    message = fails(tmp_path, "info", "\x1b]0;x\x07", code=2)
    assert "\x1b" not in message and "\\x1b]0;x\\x07" in message


def test_swapped_table_names_are_refused_before_any_write(filled: Path) -> None:
    before = dump(filled / "sessions.db")
    swapped = ["--sessions-table", "agent_messages", "--messages-table", "agent_sessions"]
    for command in (["create", "carol"], ["users"], ["info"]):
        assert "a layout that is neither openai-agents' nor sessions_dal's" in fails(
            filled, *swapped, *command)
    assert dump(filled / "sessions.db") == before


def test_an_interrupt_after_the_commit_says_the_change_stayed(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sessions_dal import COMMITTED_NOTE

    def committed_then_interrupted(*args: object, **kwargs: object) -> None:
        exc = KeyboardInterrupt()
        exc.__notes__ = [COMMITTED_NOTE]
        raise exc

    monkeypatch.setattr(SessionRepository, "delete_session", committed_then_interrupted)
    assert main(["delete", "alice", "trip"]) == 130
    assert capsys.readouterr().err == (
        "sessions-dal: error: interrupted after the change was committed: it is in the "
        "database\n")


def test_a_failed_import_keeps_a_new_database_another_program_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    opened: list[SessionRepository] = []

    class Input:  # a cut export; meanwhile an app opens the new file
        def __iter__(self) -> Any:
            yield '{"type": "user", "user_id": "u", "created_at": "2026-01-01T00:00:00+00:00"}\n'
            opened.append(SessionRepository("new.db"))

    monkeypatch.setattr(sys, "stdin", Input())
    try:
        assert main(["--db", "new.db", "import", "-"]) == 1
        opened[0].create_session("app-user")  # the app goes on writing into its file
    finally:
        opened[0].close()
    with SessionRepository("new.db", read_only=True) as repo:
        assert repo.count_sessions("app-user") == 1


def test_no_arguments_prints_what_there_is_to_do(tmp_path: Path) -> None:
    result = cli(tmp_path)
    assert result.returncode == 2
    assert "create" in result.stderr and "export" in result.stderr and "--db" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_search_from_the_command_line(filled: Path) -> None:
    before = dump(filled / "sessions.db")
    assert ok(filled, "search", "alice", "TRAIN").splitlines() == ["trip  [train]?"]
    assert ok(filled, "search", "alice", "tri*").splitlines() == ["trip  title: [Trip]"]
    assert ok(filled, "search", "alice", "train", "--session", "work") == "no matches\n"
    assert ok(filled, "search", "bob", "train") == "no matches\n"
    # OR is a word, not an operator: no item has all of hi, or, yo, train.
    assert ok(filled, "search", "alice", "hi OR yo OR train*", "--limit", "5") == "no matches\n"
    hits = as_json(filled, "search", "alice", "hi")
    assert hits == [{"session_id": "trip", "title": False,
                     "item": {"role": "user", "content": "hi"}, "snippet": "[hi]",
                     "layer": None}]
    assert as_json(filled, "search", "alice", "trip")[0]["title"] is True
    assert as_json(filled, "search", "alice", "hi", "--limit", "0") == []
    assert "has no words" in fails(filled, "search", "alice", "--- ()")
    assert "must be >= 0" in fails(filled, "search", "alice", "x", "--limit", "-1", code=2)
    assert "user_id must not be empty" in fails(filled, "search", "", "x")
    assert "no database at" in fails(filled, "--db", "elsewhere.db", "search", "alice", "x")
    assert not (filled / "elsewhere.db").exists()
    assert dump(filled / "sessions.db") == before  # searching never writes


def test_search_says_which_hits_are_from_compacted_history(filled: Path) -> None:
    with SessionRepository(filled / "sessions.db") as repo:
        session = repo.get_session("alice", "trip")
        assert session is not None
        session.add_items(["zebra crossing", "zebra again"])
        session.compact(["summary: a zebra"], upto=session.count_items() - 1)
    lines = ok(filled, "search", "alice", "zebra").splitlines()
    assert sorted(lines) == ["trip  [zebra] again", "trip  compacted (layer 1): [zebra] crossing",
                             "trip  summary: a [zebra]"]
    hits = as_json(filled, "search", "alice", "crossing")
    assert hits == [{"session_id": "trip", "title": False, "item": "zebra crossing",
                     "snippet": "zebra [crossing]", "layer": 1}]


# -- roles (PostgreSQL's are in tests/postgres/test_pg_roles.py) ----------------------


def test_grant_on_sqlite_says_in_one_line_that_sqlite_has_no_roles(filled: Path) -> None:
    for db in ([], ["--db", "new.db"], ["--db", ":memory:"]):
        result = cli(filled, *db, "grant", "app", "--apply")
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and "SQLite has no roles" in result.stderr
    assert not (filled / "new.db").exists()
    with SessionRepository(filled / "sessions.db") as repo:
        with pytest.raises(NotImplementedError, match="SQLite has no roles"):
            repo.grant("app", dry_run=True)
        for role, error in (("", ValueError), ("é" * 32, ValueError), ("PUBLIC", ValueError),
                            ("a\x00b", ValueError), ("\ud800", ValueError), (1, TypeError)):
            with pytest.raises(error):
                repo.grant(role, dry_run=True)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be bools"):
            repo.grant("app", dry_run=1)  # type: ignore[arg-type]


def test_without_psycopg_a_url_says_how_to_install_the_extra(tmp_path: Path) -> None:
    # A psycopg that cannot be imported, first on the path: as where it is missing.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "psycopg.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n")
    result = cli(tmp_path, "--db", "postgresql://app@127.0.0.1:1/db", "info",
                 env={"PYTHONPATH": f"{shadow}{os.pathsep}{IMPORT_ROOT}"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    message = result.stderr
    assert message.startswith("sessions-dal: error: opening a postgresql:// URL needs psycopg 3")
    assert "pip install '.[postgres]' from a clone" in message
    assert "pip install 'sessions-dal[postgres]' from a package index" in message
    assert "report" not in message and "unexpected" not in message
    assert list(tmp_path.iterdir()) == [shadow]


@pytest.mark.parametrize("target", [
    "host=127.0.0.1 port=5432 dbname=app user=app password=hunter2",
    "postgresql//app:hunter2@db.internal/app",
    "postgres:/app:hunter2@db.internal/app",
    " postgresql://app:hunter2@db.internal/app",
    "app:hunter2@db.internal/app",
    "//app:hunter2@db.internal/app",
    "postgres ql://app:hunter2@db.internal/app",
])
@pytest.mark.parametrize("command", [("info",), ("create", "bob")])
def test_a_connection_string_is_never_taken_for_a_file_nor_shown(
        tmp_path: Path, target: str, command: tuple[str, ...]) -> None:
    error = fails(tmp_path, "--db", target, *command)
    assert "hunter2" not in error and "connection string or a mistyped URL" in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["C:\\Users\\ann@corp\\sessions.db", "C://data/s.db",
                                  "notes:v2.db", "./team:a@b.db", "data/2024:01@x.db"])
def test_odd_but_valid_file_names_are_not_taken_for_urls(path: str) -> None:
    from sessions_dal.repository import is_connection_string

    assert not is_connection_string(path)


def test_a_mistyped_command_gets_the_nearest_one(tmp_path: Path) -> None:
    assert fails(tmp_path, "sesions", code=2).endswith(
        "sessions-dal: error: unknown command 'sesions': did you mean 'sessions'?\n")
    assert "did you mean 'delete-user'" in fails(tmp_path, "delete_user", code=2)
    # Nothing near: argparse's own list of the commands.
    assert "invalid choice: 'qqqq' (choose from 'info'" in fails(tmp_path, "qqqq", code=2)


def _interrupt_in(monkeypatch: pytest.MonkeyPatch, where: str, *, call: int = 1) -> None:
    """Ctrl-C at the ``call``-th call of ``where`` (the calls before it run)."""
    real = _resolve(where)
    calls: list[None] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(where, interrupted)


def test_an_interrupted_import_into_a_new_file_says_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Opening set the new file up (a commit) before the import's own transaction:
    # that commit is not the import, and the file goes with the failed import.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    (tmp_path / "in.jsonl").write_text('{"type": "export", "format": 2}\n')
    _interrupt_in(monkeypatch, "sessions_dal.repository.SessionRepository.import_from")
    assert main(["--db", "new.db", "import", "in.jsonl"]) == 130
    assert capsys.readouterr().err == "sessions-dal: interrupted; nothing was changed\n"
    assert not (tmp_path / "new.db").exists()


def test_an_interrupt_after_opening_set_the_database_up_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    _interrupt_in(monkeypatch, "sessions_dal.repository.SessionRepository.create_session")
    assert main(["--db", "new.db", "create", "alice"]) == 130
    assert capsys.readouterr().err == (
        "sessions-dal: interrupted before the change was made (opening set the database up "
        "or upgraded its schema; that stays)\n")
    with SessionRepository(tmp_path / "new.db") as repo:
        assert repo.get_users() == []
    # Opening a database already set up commits nothing: nothing changed.
    _interrupt_in(monkeypatch, "sessions_dal.repository.SessionRepository.create_session")
    assert main(["--db", "new.db", "create", "alice"]) == 130
    assert capsys.readouterr().err == "sessions-dal: interrupted; nothing was changed\n"


def test_an_interrupted_migrate_says_what_it_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # migrate's change is the opening's set-up itself.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    write_like_agents(tmp_path / "agents.db", "chat", ['{"n": 1}'])
    # The first info() is the plan's, read-only; the second follows the migration.
    _interrupt_in(monkeypatch, "sessions_dal.repository.SessionRepository.info", call=2)
    assert main(["--db", "agents.db", "migrate"]) == 130
    assert capsys.readouterr().err.endswith(
        "sessions-dal: error: interrupted after the change was committed: it is in the "
        "database\n")


def test_an_interrupted_reindex_says_part_was_repaired(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(filled)
    monkeypatch.delenv("SESSIONS_DAL_DB", raising=False)
    monkeypatch.setattr("sessions_dal.backends._migrations.BATCH", 1)

    def interrupt_after_a_batch() -> Any:
        def report(step: str, fraction: float) -> None:
            raise KeyboardInterrupt  # progress is told once a batch has committed
        return report

    monkeypatch.setattr("sessions_dal.cli._migration_progress", interrupt_after_a_batch)
    assert main(["reindex"]) == 130
    assert capsys.readouterr().err == (
        "sessions-dal: error: interrupted; reindex had repaired part of the index before "
        "this; run it again to finish\n")


def test_usage_lists_the_largest_and_vacuum_shrinks_the_file(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SessionRepository(here / "sessions.db") as repo:
        big = repo.create_session("carol")
        big.add_items([{"text": "y" * 2000} for _ in range(300)])
        big.compact(["summary"], upto=200)
    text = ok(here, "usage", "--limit", "1")
    assert text.splitlines()[1].split()[:2] == ["carol", "1"]
    assert "HISTORY BYTES" in text and big.session_id in text
    largest = as_json(here, "usage")
    assert largest["sessions"][0]["size"]["history_items"] == 200
    assert "at least 1" in fails(here, "usage", "--limit", "0", code=2)
    with SessionRepository(here / "sessions.db") as repo:
        repo.delete_user("carol")
    assert as_json(here, "vacuum")["freed_bytes"] > 500_000
    assert re.fullmatch(r"vacuumed in [0-9.]+ s: the file is [0-9,]+ bytes smaller\n",
                        ok(here, "vacuum"))
    assert "VACUUM FULL" in fails(here, "--db", "postgresql://u@127.0.0.1:1/db", "vacuum",
                                  code=2)
