"""The backends the behavioural tests run against, behind one small handle.

A behavioural test takes the ``backend`` fixture (or, under Hypothesis, a
``kind`` parameter and :func:`fresh`) and talks to the library through the
public API; where it must look under the hood (a snapshot of every row, a
row written as openai-agents writes it, a damaged row) it asks the handle,
which knows its database's SQL. Where backends differ, tests check the
handle's capability flags (``has_file``, ``has_roles``, ``folds_every_script``),
never backend names.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg_server

from sessions_dal import SessionRepository

POSTGRES_URL, POSTGRES_ORIGIN = (
    pg_server.start() if importlib.util.find_spec("psycopg")
    else (None, "psycopg is not installed (pip install '.[test]')")
)
"""The test server's URL (``None``: PostgreSQL's tests do not run), and where it is from."""

KINDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
"""The backends this machine can test."""


class Backend:
    """A clean database of one backend, and what the tests may do with it directly."""

    kind: str
    target: str
    """What ``SessionRepository`` is opened with: a path or a URL."""
    has_file: bool
    """The database is one file (``backup()`` copies it)."""
    has_roles: bool
    """The database has roles (``grant()`` gives them rights)."""
    folds_every_script: bool
    """Search ignores the accents of every script, not only Latin's."""

    def open(self, **options: Any) -> SessionRepository:
        """A new repository on this database: what another process would have."""
        return SessionRepository(self.target, **options)

    def opener(self) -> Callable[[], SessionRepository]:
        """:meth:`open`, as something another process can be handed (picklable)."""
        return functools.partial(SessionRepository, self.target)

    def emptied(self) -> bool:
        """Delete every row but the migrations' (restarting ids); ``False`` if that
        waited too long for a lock a failed test left held."""
        try:
            with self._connect() as conn:
                conn.execute("SET lock_timeout = '2s'")
                conn.execute("TRUNCATE agent_messages, agent_sessions, agent_user_sessions, "
                             "agent_users, sessions_dal_search, sessions_dal_history, "
                             "sessions_dal_replacements RESTART IDENTITY")
        except Exception:
            return False
        return True

    def migrations_recorded(self) -> list[int]:
        """The schema versions recorded as applied, in order (each once, if all is well)."""
        raise NotImplementedError

    def snapshot(self) -> list[str]:
        """Every table and row, in a stable order: equal snapshots, equal databases."""
        raise NotImplementedError

    def write_like_agents(self, session_id: str, texts: list[str],
                          created_at: str | None = None) -> None:
        """What openai-agents' session class writes for ``session_id``: its row and items.

        ``created_at`` is UTC, as 'YYYY-MM-DD HH:MM:SS'.
        """
        raise NotImplementedError

    def stored_items(self, session_id: str) -> list[str]:
        """The item texts as stored, in order."""
        raise NotImplementedError

    def insert_item_text(self, session_id: str, text: str) -> int:
        """Store ``text`` as the session's next item, as another program could; its row id."""
        raise NotImplementedError

    def set_session_column(self, session_id: str, column: str, value: object) -> None:
        """Overwrite one column of a session's ownership row (to damage it)."""
        raise NotImplementedError

    def clear_like_agents(self, session_id: str) -> None:
        """What openai-agents' ``clear_session()`` does: items and session row gone."""
        raise NotImplementedError

    # The search index, damaged as a lost trigger or a hand edit would leave it.

    def index_drop(self, row_id: int) -> None:
        """Delete the index row of item ``row_id`` (of a title: minus its seq)."""
        raise NotImplementedError

    def index_set_owner(self, item_id: int, user_id: str | None) -> None:
        """Give item ``item_id``'s index row the owner tokens of ``user_id`` (or none)."""
        raise NotImplementedError

    def index_add(self, row_id: int, text: str, user_id: str, session_id: str) -> None:
        """Add an index row ``row_id`` of ``text``, searchable by ``user_id`` in ``session_id``."""
        raise NotImplementedError

    def index_rows(self) -> int:
        """How many rows the search index has."""
        raise NotImplementedError

    def history_index_drop(self, session_id: str) -> None:
        """Take the search index's rows of ``session_id``'s compacted history out."""
        raise NotImplementedError

    def set_history_text(self, session_id: str, text: str) -> None:
        """Overwrite the text of every history row of ``session_id`` (its index stays)."""
        self._query("UPDATE sessions_dal_history SET message_data = "
                    + ("?" if self.kind == "sqlite" else "%s") + " WHERE session_id = "
                    + ("?" if self.kind == "sqlite" else "%s"), text, session_id)

    def history_rows(self) -> int:
        """How many rows the compacted history and its replacement marks have."""
        return int(self._query(
            "SELECT (SELECT count(*) FROM sessions_dal_history) "
            "+ (SELECT count(*) FROM sessions_dal_replacements)")[0][0])

    def _query(self, sql: str, *params: object) -> list[Any]:
        raise NotImplementedError


class SQLiteBackend(Backend):
    """A file in a temporary folder."""

    kind = "sqlite"
    has_file, has_roles = True, False
    folds_every_script = False  # FTS5's unicode61 removes Latin diacritics only

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "sessions.db"
        self.target = str(self.path)

    def migrations_recorded(self) -> list[int]:
        """The schema versions recorded as applied, in order (each once, if all is well)."""
        return [row[0] for row in self._query(
            "SELECT version FROM sessions_dal_migrations ORDER BY version")]

    def snapshot(self) -> list[str]:
        """Every table and row, in a stable order: equal snapshots, equal databases."""
        conn = sqlite3.connect(self.path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    def write_like_agents(self, session_id: str, texts: list[str],
                          created_at: str | None = None) -> None:
        """What openai-agents' session class writes for ``session_id``: its row and items."""
        from agents_schema import write_like_agents

        write_like_agents(self.path, session_id, texts, created_at=created_at)

    def stored_items(self, session_id: str) -> list[str]:
        """The item texts as stored, in order."""
        return [row[0] for row in self._query(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
            session_id)]

    def insert_item_text(self, session_id: str, text: str) -> int:
        """Store ``text`` as the session's next item, as another program could; its row id."""
        # As SQLiteSession does: the session's row first (a session gets it with
        # its first items).
        self._query("INSERT OR IGNORE INTO agent_sessions (session_id) VALUES (?)", session_id)
        self._query("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                    session_id, text)
        return int(self._query("SELECT max(id) FROM agent_messages")[0][0])

    def set_session_column(self, session_id: str, column: str, value: object) -> None:
        """Overwrite one column of a session's ownership row (to damage it)."""
        assert column in ("metadata", "created_at", "updated_at")
        self._query(f"UPDATE agent_user_sessions SET {column} = ? WHERE session_id = ?",
                    value, session_id)

    def set_user_created_at(self, user_id: str, value: object) -> None:
        self._query("UPDATE agent_users SET created_at = ? WHERE user_id = ?", value, user_id)

    def clear_like_agents(self, session_id: str) -> None:
        """What openai-agents' ``clear_session()`` does: items and session row gone."""
        self._query("DELETE FROM agent_messages WHERE session_id = ?", session_id)
        self._query("DELETE FROM agent_sessions WHERE session_id = ?", session_id)

    def index_drop(self, row_id: int) -> None:
        self._query("DELETE FROM sessions_dal_search WHERE rowid = ?", row_id)

    def index_set_owner(self, item_id: int, user_id: str | None) -> None:
        self._query("UPDATE sessions_dal_search SET owner = coalesce('u' || hex(?) || ' s' || "
                    "(SELECT hex(session_id) FROM agent_messages WHERE id = ?), '') "
                    "WHERE rowid = ?", user_id, item_id, item_id)

    def index_add(self, row_id: int, text: str, user_id: str, session_id: str) -> None:
        self._query("INSERT INTO sessions_dal_search (rowid, words, owner) "
                    "VALUES (?, ?, 'u' || hex(?) || ' s' || hex(?))",
                    row_id, text, user_id, session_id)

    def index_rows(self) -> int:
        return int(self._query("SELECT count(*) FROM sessions_dal_search")[0][0])

    def history_index_drop(self, session_id: str) -> None:
        self._query("DELETE FROM sessions_dal_search_history WHERE rowid IN "
                    "(SELECT n FROM sessions_dal_history WHERE session_id = ?)", session_id)

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class PostgresBackend(Backend):
    """A schema of its own on the test server, first on the connection's search_path."""

    kind = "postgresql"
    has_file, has_roles, folds_every_script = False, True, True

    def __init__(self, schema: str | None = None) -> None:
        assert POSTGRES_URL is not None
        self._conn: Any = None
        self.schema = schema or f"t_{uuid.uuid4().hex[:16]}"
        self._query(f"CREATE SCHEMA {self.schema}", schema=None)
        self.target = url_with_schema(self.schema)

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        # A test that failed may have left a connection holding locks in the
        # schema (kept alive by its traceback): end it, or DROP waits forever.
        self._query(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND l.pid <> pg_backend_pid()", self.schema, schema=None)
        self._query(f"DROP SCHEMA {self.schema} CASCADE", schema=None)

    def migrations_recorded(self) -> list[int]:
        return [row[0] for row in self._query(
            "SELECT version FROM sessions_dal_migrations ORDER BY version")]

    def snapshot(self) -> list[str]:
        tables = [row[0] for row in self._query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name", self.schema)]
        lines = [repr(row) for row in self._query(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position", self.schema)]
        lines += [repr(row) for row in self._query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
            "ORDER BY indexname", self.schema)]
        for table in tables:
            columns = [row[0] for row in self._query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position", self.schema, table)]
            order = ", ".join(f'"{c}"' for c in columns)
            lines += [f"{table}: {row!r}" for row in self._query(
                f'SELECT * FROM "{table}" ORDER BY {order}')]
        return lines

    def write_like_agents(self, session_id: str, texts: list[str],
                          created_at: str | None = None, zone: str = "UTC") -> None:
        """As the base class says; ``zone``: the TimeZone of openai-agents' connection,
        whose local times its naive columns get (``created_at`` is one)."""
        # What SQLAlchemySession(create_tables=True) creates, then its add_items.
        self._query(
            "CREATE TABLE IF NOT EXISTS agent_sessions (session_id varchar PRIMARY KEY, "
            "created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, "
            "updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP); "
            "CREATE TABLE IF NOT EXISTS agent_messages (id serial PRIMARY KEY, "
            "session_id varchar NOT NULL REFERENCES agent_sessions (session_id) "
            "ON DELETE CASCADE, message_data text NOT NULL, "
            "created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP); "
            "CREATE INDEX IF NOT EXISTS idx_agent_messages_session_time "
            "ON agent_messages (session_id, created_at)")
        with self._connect() as conn, conn.transaction():
            conn.execute("SELECT set_config('TimeZone', %s, true)", [zone])
            if created_at is None:
                conn.execute("INSERT INTO agent_sessions (session_id) VALUES (%s) "
                             "ON CONFLICT DO NOTHING", [session_id])
            else:
                conn.execute("INSERT INTO agent_sessions VALUES (%s, %s, %s) "
                             "ON CONFLICT DO NOTHING", [session_id, created_at, created_at])
            conn.cursor().executemany(
                "INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s)",
                [(session_id, text) for text in texts])

    def stored_items(self, session_id: str) -> list[str]:
        return [row[0] for row in self._query(
            "SELECT message_data FROM agent_messages WHERE session_id = %s "
            "ORDER BY created_at, id", session_id)]

    def insert_item_text(self, session_id: str, text: str) -> int:
        return int(self._query(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (%s, %s) "
            "RETURNING id", session_id, text)[0][0])

    def set_session_column(self, session_id: str, column: str, value: object) -> None:
        assert column in ("metadata", "created_at", "updated_at")
        self._query(f"UPDATE agent_user_sessions SET {column} = %s WHERE session_id = %s",
                    value, session_id)

    def clear_like_agents(self, session_id: str) -> None:
        with self._connect() as conn, conn.transaction():
            conn.execute("DELETE FROM agent_messages WHERE session_id = %s", [session_id])
            conn.execute("DELETE FROM agent_sessions WHERE session_id = %s", [session_id])

    def index_drop(self, row_id: int) -> None:
        self._query("DELETE FROM sessions_dal_search WHERE item_id = %s", row_id)

    def index_set_owner(self, item_id: int, user_id: str | None) -> None:
        self._query("UPDATE sessions_dal_search SET words = ts_filter(words, '{a,b,c,d}') "
                    "|| sessions_dal_owner(%s, session_id) WHERE item_id = %s",
                    user_id, item_id)

    def index_add(self, row_id: int, text: str, user_id: str, session_id: str) -> None:
        self._query("INSERT INTO sessions_dal_search (item_id, session_id, words) VALUES "
                    "(%s, %s, to_tsvector('simple', %s) || sessions_dal_owner(%s, %s))",
                    row_id, session_id, text, user_id, session_id)

    def index_rows(self) -> int:
        return int(self._query("SELECT count(*) FROM sessions_dal_search")[0][0])

    def history_index_drop(self, session_id: str) -> None:
        self._query("UPDATE sessions_dal_history SET words = NULL WHERE session_id = %s",
                    session_id)

    def _connect(self, schema: str | None = "") -> Any:
        import psycopg

        schema = self.schema if schema == "" else schema
        return psycopg.connect(POSTGRES_URL if schema is None else url_with_schema(schema),
                               autocommit=True)

    def _query(self, sql: str, *params: object, schema: str | None = "") -> list[Any]:
        if schema != "":
            with self._connect(schema) as conn:
                return _rows(conn.execute(sql, params or None))
        # One connection for the handle's many small queries (snapshots).
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return _rows(self._conn.execute(sql, params or None))


def _rows(cursor: Any) -> list[Any]:
    return cursor.fetchall() if cursor.description else []


def wait_for_lock_waits(pg: PostgresBackend, count: int = 1, *, marker: str | None = None
                        ) -> list[int]:
    """The server pids of the backends waiting for a lock in a statement on
    ``pg``'s schema (which every statement of ours names) that contains
    ``marker``, once there are ``count``: an event to wait for, not a guess at
    how long a busy machine takes. Fails after two minutes."""
    deadline = time.monotonic() + 120
    while True:
        pids = [row[0] for row in pg._query(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND strpos(query, %s) > 0 AND strpos(query, %s) > 0", pg.schema, marker or "")]
        if len(pids) >= count:
            return pids
        assert time.monotonic() < deadline, f"{count} statement(s) never waited for a lock"
        time.sleep(0.02)


@contextlib.contextmanager
def own_database() -> Iterator[str]:
    """The URL of a new database on the test server (for settings that apply to a
    whole database, or a client that cannot pick a schema), dropped afterwards."""
    import psycopg

    assert POSTGRES_URL is not None
    name = f"own_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def url_with_schema(schema: str) -> str:
    """The test server's URL, with ``schema`` first on the search_path."""
    assert POSTGRES_URL is not None
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def make(kind: str, folder: Path) -> Backend:
    """A clean database of ``kind`` (SQLite's in ``folder``)."""
    return SQLiteBackend(folder) if kind == "sqlite" else PostgresBackend()


@contextlib.contextmanager
def fresh(kind: str) -> Iterator[Backend]:
    """A clean database of ``kind``, for tests that cannot take a fixture (Hypothesis).

    PostgreSQL's is a schema already set up by sessions_dal and emptied after
    use (making and migrating a schema per example would take most of the
    suite's time); tests of a schema sessions_dal has not seen use ``pg``.
    """
    if kind == "postgresql":
        backend = _migrated.pop() if _migrated else _new_migrated()
        try:
            yield backend
        finally:
            if not backend.emptied():
                backend.drop()
            else:
                _migrated.append(backend)
        return
    folder = Path(tempfile.mkdtemp(prefix="sessions-dal-test-"))
    try:
        yield make(kind, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_migrated: list[PostgresBackend] = []


def _new_migrated() -> PostgresBackend:
    backend = PostgresBackend()
    backend.open().close()
    return backend


_spare: dict[str, list[PostgresBackend]] = {}


@contextlib.contextmanager
def fresh_repository(kind: str, **options: Any) -> Iterator[SessionRepository]:
    """A repository on a clean database of ``kind``, closed afterwards.

    Cheap enough for every example of a property: SQLite's is in memory;
    PostgreSQL's schemas are made once and emptied between uses.
    """
    if kind == "sqlite":
        with SessionRepository(":memory:", **options) as repo:
            yield repo
        return
    spare = _spare.setdefault(kind, [])
    backend = spare.pop() if spare else PostgresBackend()
    try:
        with backend.open(**options) as repo:
            yield repo
    finally:
        backend._query(
            "TRUNCATE agent_messages, agent_sessions, agent_user_sessions, agent_users, "
            "sessions_dal_search, sessions_dal_history, sessions_dal_replacements "
            "RESTART IDENTITY")
        spare.append(backend)
