"""schema.sql is parsed into numbered migrations, applied atomically and exactly once."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
from pathlib import Path

import pytest
from helpers import dump, rows

from sessions_dal import SCHEMA_VERSION, SessionRepository
from sessions_dal.backends.sqlite._opening import open_connection
from sessions_dal.backends.sqlite._runner import Database
from sessions_dal.backends.sqlite._schema import (
    MIGRATIONS,
    apply_migrations,
    parse_migrations,
)
from sessions_dal.backends.sqlite._sql import SQL
from sessions_dal.errors import (
    MigrationError,
    NotADatabaseError,
    SchemaVersionError,
    SessionsDalError,
)

DEFAULT = SQL("agent_sessions", "agent_messages")
ROOT_SCHEMA = Path(__file__).resolve().parents[2] / "schema.sql"


def user_version(path: Path) -> int:
    """The application's PRAGMA user_version, which sessions_dal must leave alone."""
    conn = sqlite3.connect(path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version
    finally:
        conn.close()


def recorded(path: Path) -> list[int]:
    """The versions sessions_dal recorded as applied, in order."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute(
            "SELECT version FROM sessions_dal_migrations ORDER BY version")]
    finally:
        conn.close()


def NO_CHECK(conn: sqlite3.Connection) -> None:
    """Open any file: these tests apply migrations other than the shipped ones."""


def open_db(path: Path) -> Database:
    conn = open_connection(str(path), busy_timeout=5.0, synchronous="NORMAL", inspect=NO_CHECK)
    return Database(conn, str(path), 5.0)


# -- parsing ---------------------------------------------------------------


def test_schema_version_is_the_last_block_of_root_schema_sql() -> None:
    versions = re.findall(r"^--\s*version:\s*(\d+)\s*$", ROOT_SCHEMA.read_text(), re.M)
    assert versions, "schema.sql has no '-- version: N' line"
    assert SCHEMA_VERSION == int(versions[-1]) == len(MIGRATIONS)


def test_parse_splits_statements_and_keeps_strings_and_triggers_whole() -> None:
    text = """
-- a header comment is allowed
-- version: 1
CREATE TABLE t (x TEXT DEFAULT 'a;b');  -- trailing comment
INSERT INTO t VALUES ('--; not a comment');
-- version: 2
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
    INSERT INTO t VALUES ('x;');
    DELETE FROM t WHERE x = 'y';
END;
"""
    one, two = parse_migrations(text)
    assert one.version == 1 and two.version == 2
    assert len(one.statements) == 2
    assert one.statements[1] == "INSERT INTO t VALUES ('--; not a comment');"
    assert len(two.statements) == 1 and two.statements[0].endswith("END;")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- version: 2\nCREATE TABLE t (x);", "expected '-- version: 1'"),
        ("-- version: 1\nCREATE TABLE t (x);\n-- version: 3\nSELECT 1;", "without gaps"),
        (
            "-- version: 1\nCREATE TABLE t (x);\n-- version: 1\nSELECT 1;",
            "expected '-- version: 2'",
        ),
        ("CREATE TABLE t (x);\n-- version: 1\nSELECT 1;", "before the first"),
        ("-- version: 1\nCREATE TABLE t (x)", "incomplete statement"),
        ("-- version: 1\n-- only a comment\n", "has no statements"),
    ],
)
def test_parse_rejects_malformed_schema(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_migrations(text)


def test_every_shipped_statement_is_plain_sql_without_transaction_control() -> None:
    for migration in MIGRATIONS:
        for statement in migration.statements:
            assert not re.match(r"\s*(BEGIN|COMMIT|END|ROLLBACK|PRAGMA)\b", statement, re.I)


# -- applying --------------------------------------------------------------


def test_new_file_gets_every_table_and_the_current_version(db_path: Path) -> None:
    SessionRepository(db_path).close()
    assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))
    assert user_version(db_path) == 0
    conn = sqlite3.connect(db_path)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {
        "agent_sessions",
        "agent_messages",
        "idx_agent_messages_session_id",
        "agent_users",
        "agent_user_sessions",
        "idx_agent_user_sessions_user",
        "sessions_dal_migrations",
    } <= names


def test_database_at_current_version_opens_without_writing(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        repo.create_session("alice").add_items([{"a": 1}])
    before = db_path.read_bytes()
    with SessionRepository(db_path) as repo:
        assert repo.count_sessions("alice") == 1
    assert db_path.read_bytes() == before


def test_apply_migrations_reports_nothing_to_do_when_current(db_path: Path) -> None:
    db = open_db(db_path)
    try:
        assert apply_migrations(db, DEFAULT) == SCHEMA_VERSION
        assert apply_migrations(db, DEFAULT) == 0
    finally:
        db.close()


@pytest.mark.parametrize("journal_mode", ["DELETE", "WAL"])
def test_newer_database_is_refused_and_left_byte_identical(
    db_path: Path, journal_mode: str
) -> None:
    SessionRepository(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute("CREATE TABLE future (x)")
    conn.execute("INSERT INTO sessions_dal_migrations VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(SchemaVersionError) as info:
        SessionRepository(db_path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert "upgrade sessions_dal" in message
    assert db_path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [b"this is not a database, just some text\n" * 200, bytes(range(256)) * 64],
    ids=["text", "binary"],
)
def test_file_that_is_not_sqlite_is_refused_unchanged(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(NotADatabaseError) as info:
        SessionRepository(db_path)
    assert isinstance(info.value, SessionsDalError)
    assert str(db_path) in str(info.value) and "not an SQLite database" in str(info.value)
    assert db_path.read_bytes() == content
    assert not Path(f"{db_path}-wal").exists()


def test_empty_file_is_a_new_database(db_path: Path) -> None:
    db_path.touch()
    with SessionRepository(db_path) as repo:
        repo.create_session("alice")
    assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))


def test_failing_migration_leaves_the_previous_version(db_path: Path) -> None:
    good = "-- version: 1\nCREATE TABLE one (x);\n"
    bad = good + (
        "-- version: 2\nCREATE TABLE two (x);\nINSERT INTO missing_table VALUES (1);\n"
    )
    db = open_db(db_path)
    try:
        apply_migrations(db, DEFAULT, parse_migrations(good))
        before = dump(db_path)
        with pytest.raises(MigrationError) as info:
            apply_migrations(db, DEFAULT, parse_migrations(bad))
    finally:
        db.close()
    assert "version 2" in str(info.value) and "still at version 1" in str(info.value)
    assert recorded(db_path) == [1]
    assert dump(db_path) == before  # table "two" rolled back with the version


def test_migrations_apply_one_version_at_a_time(db_path: Path) -> None:
    text = "-- version: 1\nCREATE TABLE a (x);\n-- version: 2\nCREATE TABLE b (x);\n"
    db = open_db(db_path)
    try:
        apply_migrations(db, DEFAULT, parse_migrations(text)[:1])
        assert recorded(db_path) == [1]
        assert apply_migrations(db, DEFAULT, parse_migrations(text)) == 1
    finally:
        db.close()
    assert recorded(db_path) == [1, 2]


COUNTED_SCHEMA = """
-- version: 1
CREATE TABLE applied (version INTEGER);
INSERT INTO applied VALUES (1);
-- version: 2
INSERT INTO applied VALUES (2);
"""


def _open_at_barrier(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    with SessionRepository(path) as repo:
        repo.create_session("alice")


def _migrate_at_barrier(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    conn = open_connection(path, busy_timeout=10.0, synchronous="NORMAL", inspect=NO_CHECK)
    db = Database(conn, path, 10.0)
    barrier.wait()
    try:
        apply_migrations(db, DEFAULT, parse_migrations(COUNTED_SCHEMA))
    finally:
        db.close()


@pytest.mark.parametrize("target", [_open_at_barrier, _migrate_at_barrier])
def test_processes_opening_a_new_file_together_all_succeed_once(
    db_path: Path, target: object
) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = 6
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=target, args=(str(db_path), barrier)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * workers
    conn = sqlite3.connect(db_path)
    try:
        if target is _open_at_barrier:
            assert conn.execute("SELECT count(*) FROM agent_user_sessions").fetchone()[0] == workers
            assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))
        else:
            applied = [row[0] for row in conn.execute("SELECT version FROM applied")]
            assert applied == [1, 2]
            assert recorded(db_path) == [1, 2]
    finally:
        conn.close()


def test_file_written_by_openai_agents_is_adopted_in_place(db_path: Path) -> None:
    # The exact DDL and writes of openai-agents' SQLiteSession (DESIGN section 3).
    conn = sqlite3.connect(db_path)
    conn.executescript(
        """
        CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY,
          created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
          updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
          session_id TEXT NOT NULL, message_data TEXT NOT NULL,
          created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
          FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);
        CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id, id);
        INSERT INTO agent_sessions (session_id) VALUES ('old');
        INSERT INTO agent_messages (session_id, message_data) VALUES ('old', '{"n": 1}');
        INSERT INTO agent_messages (session_id, message_data) VALUES ('old', '{"n": NaN}');
        """
    )
    conn.close()

    def agents_rows() -> list[tuple[object, ...]]:
        conn = sqlite3.connect(db_path)
        try:
            return conn.execute(
                "SELECT s.session_id, s.created_at, s.updated_at, m.id, m.message_data,"
                " m.created_at FROM agent_sessions s JOIN agent_messages m USING (session_id)"
                " ORDER BY m.id"
            ).fetchall()
        finally:
            conn.close()

    before = agents_rows()
    SessionRepository(db_path).close()
    assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))
    assert user_version(db_path) == 0
    assert agents_rows() == before
    assert [row[4] for row in before] == ['{"n": 1}', '{"n": NaN}']


# -- the version is ours alone (PRAGMA user_version belongs to the application) --


@pytest.mark.parametrize("app_version", [1, 7])
def test_app_with_its_own_user_version_keeps_it_and_works(db_path: Path, app_version: int
                                                          ) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript(AGENTS_DDL + "CREATE TABLE app_orders (id INTEGER PRIMARY KEY);")
    conn.execute("INSERT INTO agent_sessions (session_id) VALUES ('chat')")
    conn.execute(f"PRAGMA user_version = {app_version}")
    conn.commit()
    conn.close()
    with SessionRepository(db_path) as repo:
        repo.create_session("alice").add_items([1])
        assert repo.count_sessions("alice") == 1
        assert [s.session_id for s in repo.get_unowned_sessions()] == ["chat"]
    assert user_version(db_path) == app_version
    assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))


def test_file_of_sessions_dal_0_1_upgrades_in_place(db_path: Path) -> None:
    # What 0.1 left: our tables, version 1 in PRAGMA user_version, no version table.
    conn = sqlite3.connect(db_path)
    conn.executescript(AGENTS_DDL)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("INSERT INTO agent_users VALUES ('alice', '2026-01-01T00:00:00.000000+00:00')")
    conn.execute("INSERT INTO agent_sessions (session_id) VALUES ('s1')")
    conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, "
                 "updated_at) VALUES ('s1', 'alice', '{\"t\": 1}', "
                 "'2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00')")
    conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES ('s1', '[1]')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with SessionRepository(db_path, read_only=True) as repo:
        assert repo.pending_migrations()[0].startswith("record the schema version")
        assert repo.info().migration_pending
    with SessionRepository(db_path) as repo:
        (s,) = repo.get_sessions("alice")
        assert s.metadata == {"t": 1} and s.get_items() == [[1]]
        assert repo.pending_migrations() == [] and not repo.info().migration_pending
        newer = repo.create_session("alice")
        s.add_items([2])  # the activity order, added by version 2, serves old rows too
        assert repo.get_sessions("alice", order="updated") == [s, newer]
        s.add_items(["zebra"])  # search, added by version 3, too
        assert [hit.item for hit in repo.search("alice", "zebra")] == ["zebra"]
    assert {name for (name,) in rows(db_path, "SELECT name FROM sqlite_master WHERE type = "
                                              "'trigger'")} == {
        "sessions_dal_activity_on_update", "sessions_dal_activity_on_delete",
        "sessions_dal_history_on_delete",
        *(f"sessions_dal_search_history_on_{event}"
          for event in ("insert", "delete", "own", "disown")),
        *(f"sessions_dal_search_on_{event}"
          for event in ("delete", "own", "own_title", "disown", "disown_items", "title"))}
    assert recorded(db_path) == list(range(1, SCHEMA_VERSION + 1))
    assert user_version(db_path) == 1  # left as 0.1 set it


AGENTS_DDL = """
CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  message_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);
CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id, id);
"""


def test_a_block_without_a_comment_has_no_title() -> None:
    (migration,) = parse_migrations("-- version: 1\nCREATE TABLE t (x);\n")
    assert migration.title == ""
    (titled,) = parse_migrations("-- version: 1\n\n-- Make t.\nCREATE TABLE t (x);\n")
    assert titled.title == "Make t."


def test_a_failed_open_closes_what_it_opened(db_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    from sessions_dal.backends.sqlite import store as repository

    closed: list[bool] = []
    real_close = Database.close

    def failing(db: Database, sql: object) -> int:
        raise MigrationError("boom")

    def close(db: Database) -> None:
        closed.append(True)
        real_close(db)

    monkeypatch.setattr(repository, "apply_migrations", failing)
    monkeypatch.setattr(Database, "close", close)
    with pytest.raises(MigrationError, match="boom"):
        SessionRepository(db_path)
    assert closed == [True]


def test_a_version_6_file_reads_titles_through_the_view_of_version_7(db_path: Path) -> None:
    db = open_db(db_path)
    try:
        assert apply_migrations(db, DEFAULT, MIGRATIONS[:6]) == 6
    finally:
        db.close()
    conn = sqlite3.connect(db_path)
    with conn:  # a titled session, indexed by version 5's trigger
        conn.execute("INSERT INTO agent_users VALUES ('alice', '2026-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, "
                     "updated_at) VALUES ('s', 'alice', '{\"title\": \"Naples trip\"}', "
                     "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')")
    conn.close()
    before = db_path.read_bytes()
    with SessionRepository(db_path, read_only=True) as repo:  # the view stands in, in temp
        assert repo.info().schema_version == 6
        assert repo.pending_migrations()[0] == (
            "version 7: Search: a session title's words are defined in one place (on "
            "SQLite, a view its triggers and reindex share).")
        assert repo.check() == []
        assert [h.session.session_id for h in repo.search("alice", "naples")] == ["s"]
    assert db_path.read_bytes() == before
    with SessionRepository(db_path) as repo:
        assert repo.info().schema_version == SCHEMA_VERSION and repo.check() == []
        repo.update_metadata("alice", "s", {"title": "Rome trip"})  # the trigger reads the view
        assert repo.search("alice", "naples") == []
        assert [h.snippet for h in repo.search("alice", "rome")] == ["[Rome] trip"]
        repo.create_session("alice", metadata={"title": "Milan\u0000visit"})
        assert [h.snippet for h in repo.search("alice", "visit")] == ["Milan [visit]"]
        assert repo.check() == []


def test_a_version_8_file_s_history_is_renumbered_and_indexed_in_order(db_path: Path) -> None:
    with SessionRepository(db_path) as repo:
        s = repo.create_session("alice", session_id="s")
        s.add_items(["rome a", "rome b", "c", "d"])
        s.compact(["S1"], upto=2)
        t = repo.create_session("bob", session_id="t")
        t.add_items(["rome for bob", "e"])
        t.compact(["T1"], upto=1)
        s.compact(["S2"], upto=2)  # S1 and c: S1 compacted in turn
    conn = sqlite3.connect(db_path)
    with conn:  # back to version 8's history table, as that version left the file
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'sessions_dal_search_history%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP VIEW sessions_dal_search_history_words")
        conn.execute("DROP TABLE sessions_dal_search_history")
        (trigger,) = conn.execute("SELECT sql FROM sqlite_master WHERE "
                                  "name = 'sessions_dal_history_on_delete'").fetchone()
        conn.execute("DROP TRIGGER sessions_dal_history_on_delete")
        conn.execute("CREATE TABLE h8 (session_id TEXT NOT NULL, id INTEGER NOT NULL, "
                     "layer INTEGER NOT NULL, replaced INTEGER NOT NULL DEFAULT 0, "
                     "message_data TEXT NOT NULL, created_at TEXT, "
                     "PRIMARY KEY (session_id, layer, id)) WITHOUT ROWID")
        # In an order that is not the history's, as a v8 file may hold them.
        conn.execute("INSERT INTO h8 SELECT session_id, id, layer, replaced, message_data, "
                     "created_at FROM sessions_dal_history ORDER BY n DESC")
        conn.execute("DROP TABLE sessions_dal_history")
        conn.execute("ALTER TABLE h8 RENAME TO sessions_dal_history")
        conn.execute(trigger)
        conn.execute("DELETE FROM sessions_dal_migrations WHERE version = 9")
    conn.close()
    with SessionRepository(db_path) as repo:
        assert repo.info().schema_version == SCHEMA_VERSION == 9
        s2, t2 = repo.get_session("alice", "s"), repo.get_session("bob", "t")
        assert s2 is not None and t2 is not None
        assert list(s2.iter_history()) == ["rome a", "rome b", "c", "d"]
        assert list(t2.iter_history()) == ["rome for bob", "e"]
        assert [(h.item, h.layer) for h in repo.search("alice", "rome", limit=None)] == [
            ("rome b", 1), ("rome a", 1)]
        assert [(h.item, h.layer) for h in repo.search("bob", "rome")] == [("rome for bob", 1)]
        assert repo.check() == []
        s2.compact(["S3"])  # and the history goes on from there
        assert list(s2.iter_history()) == ["rome a", "rome b", "c", "d"]
        assert [h.layer for h in repo.search("alice", "d")] == [3]
    assert rows(db_path, "SELECT n, session_id, layer, id FROM sessions_dal_history "
                         "WHERE n <= 5 ORDER BY n") == sorted(
        rows(db_path, "SELECT n, session_id, layer, id FROM sessions_dal_history WHERE n <= 5"),
        key=lambda row: (row[1], row[2], row[3]))
