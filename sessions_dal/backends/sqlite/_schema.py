"""Versioned migrations read from ``schema.sql``, and the schema version record.

``schema.sql`` is a list of numbered blocks, each introduced by a line
``-- version: N`` and a one-line comment saying what it does. Version N is
applied in one ``BEGIN IMMEDIATE`` transaction together with its row in
``sessions_dal_migrations``, so a failing migration leaves the database at N-1
and the version can never disagree with the tables. ``executescript`` is
never used: it would commit the open transaction first.

The version lives in that table of ours, never in ``PRAGMA user_version``,
which belongs to the application sharing the file. sessions_dal 0.1 kept it
there; its files (our tables, no version table) are at version 1 and get the
table on their first read-write open, leaving ``user_version`` as it is.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

from ...errors import IncompatibleSchemaError, MigrationError, SchemaVersionError
from .._migrations import (
    VERSION_TABLE,
    Migration,
    in_batches,
    is_batched,
    parse_migrations,
    read_migrations,
)
from ._runner import Database
from ._sql import SQL, quote

__all__ = [
    "INDEXED_WHEN_SEARCHED",
    "SCHEMA_VERSION",
    "VERSION_TABLE",
    "Migration",
    "apply_migrations",
    "ensure_search",
    "has_fts5",
    "inspect_file",
    "inspect_read_only",
    "load_migrations",
    "parse_migrations",
    "pending_steps",
    "schema_version",
]

def load_migrations() -> tuple[Migration, ...]:
    """The migrations of the ``schema.sql`` shipped with this package."""
    return read_migrations(__package__)


MIGRATIONS = load_migrations()
SCHEMA_VERSION: int = MIGRATIONS[-1].version
"""The schema version this sessions_dal writes: the last block of ``schema.sql``."""

INDEXED_WHEN_SEARCHED = 5
"""From this version on, items join the search index when it is searched
(``schema.sql``): an older block's backfill of items into an index that holds
none yet is left to the first search, so that adopting a big file costs no
index build at open."""


_CREATE_VERSION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} "
    "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)
_RECORD_VERSION = f"INSERT INTO {VERSION_TABLE} (version, applied_at) VALUES (?, ?)"
_LEGACY_STEP = (
    f"record the schema version in table {VERSION_TABLE} (sessions_dal 0.1 kept it in "
    "PRAGMA user_version, which belongs to the application; that is left as it is)"
)


def schema_version(conn: sqlite3.Connection) -> tuple[int, bool]:
    """The file's schema version, and whether it is a 0.1 file without a version table.

    0 is a file sessions_dal has not set up: new, foreign, or openai-agents'.
    """
    if _table_exists(conn, VERSION_TABLE):
        row = conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
        return (row[0] or 0, False)
    # 0.1 set user_version to 1 when it created its tables; tables of ours at
    # user_version 0 were made by hand, and are adopted like a new file.
    if _table_exists(conn, "agent_user_sessions") and conn.execute(
        "PRAGMA user_version"
    ).fetchone()[0]:
        return (1, True)
    return (0, False)


def pending_steps(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...] | None = None
) -> list[str]:
    """What :func:`apply_migrations` would do to this database, one line per step."""
    migrations = MIGRATIONS if migrations is None else migrations
    version, legacy = schema_version(conn)
    steps = [_LEGACY_STEP] if legacy else []
    steps += [f"version {m.version}: {m.title}" for m in migrations if m.version > version]
    return steps


def apply_migrations(db: Database, sql: SQL, migrations: tuple[Migration, ...] = MIGRATIONS
                     ) -> int:
    """Bring the database up to the last of ``migrations``; return how many steps ran.

    A database already at the last version costs one read and no write. The
    version is read again inside each write transaction, so processes that
    open a new file at the same moment apply each migration exactly once.
    """
    target = migrations[-1].version
    if db.read(schema_version) == (target, False):
        return 0
    return sum(db.write(_migrate, db.path, sql, migration, target) for migration in migrations)


def _migrate(conn: sqlite3.Connection, path: str, sql: SQL, migration: Migration, target: int
             ) -> int:
    """Apply ``migration`` unless the file has it already; return how many steps ran."""
    current, legacy = schema_version(conn)
    if current > target:
        raise SchemaVersionError(
            f"database {path!r} was upgraded to schema version {current} by a "
            f"newer sessions_dal while this one (up to version {target}) was "
            "opening it: upgrade sessions_dal (pip install -U sessions-dal)"
        )
    applied = 0
    if legacy:
        conn.execute(_CREATE_VERSION_TABLE)
        conn.execute(_RECORD_VERSION, (current, _now()))
        applied += 1
    if current >= migration.version:
        return applied
    conn.execute(_CREATE_VERSION_TABLE)
    try:
        _run(conn, sql, migration, target=target)
    except _Failed as failed:
        raise MigrationError(
            f"migrating {path!r} to schema version {migration.version} "
            f"failed ({failed.__cause__}) in: {failed.args[0].splitlines()[0]}; the "
            f"database is still at version {current}"
        ) from failed.__cause__
    conn.execute(_RECORD_VERSION, (migration.version, _now()))
    return applied + 1


_FTS5_TABLE = re.compile(r"CREATE VIRTUAL TABLE IF NOT EXISTS (\w+) USING fts5")


def _index_made(migration: Migration) -> str | None:
    """The name of the search index ``migration`` makes (it needs FTS5), if any."""
    for statement in migration.statements:
        match = _FTS5_TABLE.search(statement)
        if match:
            return match.group(1)
    return None


def has_fts5(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has the FTS5 full-text module that search needs."""
    row = conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()
    return bool(row[0])


class _Failed(Exception):
    """A statement of a migration failed (args: the statement; cause: the error)."""


def _searching(statement: str) -> bool:
    """Whether ``statement`` makes or keeps the search index, which needs FTS5:
    the index itself, or a trigger or backfill that writes it (all name it)."""
    return "sessions_dal_search" in statement


def _run(conn: sqlite3.Connection, sql: SQL, migration: Migration, *, target: int,
         only_search: bool = False) -> None:
    """The statements of ``migration``; those over all items in batches, with progress.

    Without FTS5, the search statements are left out (the whole search block,
    version 3, and later blocks' changes to its triggers): :func:`ensure_search`
    runs them, in order, when an SQLite with FTS5 opens the file; then
    ``only_search``. A trigger that wrote to a missing index would make every
    insert fail.
    """
    searchable = has_fts5(conn)
    for statement in migration.statements:
        search = _searching(statement)
        if not (search if only_search else searchable or not search):
            continue
        try:
            _execute(conn, sql, migration, statement, target)
        except sqlite3.Error as exc:
            raise _Failed(statement) from exc


def _execute(conn: sqlite3.Connection, sql: SQL, migration: Migration, statement: str,
             target: int) -> None:
    ddl = sql.ddl(statement)
    if not is_batched(statement):
        conn.execute(ddl)
        return
    if (target >= INDEXED_WHEN_SEARCHED and _searching(statement)
            and conn.execute(sql.any_item_indexed).fetchone() is None):
        return  # left to the first search (INDEXED_WHEN_SEARCHED)
    first, last = conn.execute(
        f"SELECT min(id), max(id) FROM {quote(sql.messages_table)}").fetchone()
    in_batches(migration.title, first, last,
               lambda after, upto: conn.execute(ddl, {"after": after, "upto": upto}))


def ensure_search(db: Database, sql: SQL) -> bool:
    """Build the search indexes of a file migrated by an SQLite without FTS5 (the
    items' of version 3, the history's of version 9, or only the latter); True
    if built."""
    if not any(_index_made(m) for m in MIGRATIONS) or db.read(_first_missing) is None:
        return False
    return bool(db.write(_build_index, sql))


def _first_missing(conn: sqlite3.Connection) -> Migration | None:
    """The first migration the file has had whose index is missing, if FTS5 can make it."""
    version = schema_version(conn)[0]
    missing = (m for m in MIGRATIONS if m.version <= version and (name := _index_made(m))
               and not _table_exists(conn, name))
    first = next(missing, None)
    return first if first is not None and has_fts5(conn) else None


def _build_index(conn: sqlite3.Connection, sql: SQL) -> bool:
    first = _first_missing(conn)
    if first is None:  # another process built it meanwhile
        return False
    version = schema_version(conn)[0]
    for migration in MIGRATIONS:
        if first.version <= migration.version <= version:
            _run(conn, sql, migration, target=version, only_search=True)
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# The layouts a file may already have when sessions_dal first opens it
# (user_version 0): openai-agents' SQLiteSession tables, or ours. Column names
# in order, and which column is the primary key.
_AGENTS_LAYOUTS = {
    "agent_sessions": (("session_id", "created_at", "updated_at"), "session_id"),
    "agent_messages": (("id", "session_id", "message_data", "created_at"), "id"),
}
_OWN_LAYOUTS = {
    VERSION_TABLE: (("version", "applied_at"), "version"),
    "agent_users": (("user_id", "created_at"), "user_id"),
    "agent_user_sessions": (
        ("seq", "session_id", "user_id", "metadata", "created_at", "updated_at"), "seq"
    ),
}


def inspect_file(conn: sqlite3.Connection, sql: SQL, newest: int = SCHEMA_VERSION) -> int:
    """Refuse, before anything is written, a file this sessions_dal must not touch.

    Raises :class:`SchemaVersionError` for a file from a newer sessions_dal and
    :class:`IncompatibleSchemaError` when its tables have a layout that is
    neither openai-agents' nor ours, or (custom table names) when the named
    tables are not the ones the file was set up with. Returns the version.
    """
    path = conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
    found, legacy = schema_version(conn)
    if found > newest:
        raise SchemaVersionError(
            f"database {path!r} has schema version {found}, but this sessions_dal "
            f"supports versions up to {newest}: upgrade sessions_dal "
            "(pip install -U sessions-dal) to open it; the file was not changed"
        )
    # openai-agents' tables under the names given: checked whatever the version,
    # as the names are the caller's (swapped names must not reach any SQL).
    for name, layout in _AGENTS_LAYOUTS.items():
        _check_layout(conn, path, sql, name, layout)
    if found == 0 or legacy:
        for name, layout in _OWN_LAYOUTS.items():
            _check_layout(conn, path, sql, name, layout)
        if found == 0:
            return found
    missing = [
        name for name in (sql.sessions_table, sql.messages_table)
        if not _table_exists(conn, name)
    ]
    if missing:
        raise IncompatibleSchemaError(
            f"database {path!r} has no table {missing[0]!r}: it was set up with other "
            "sessions_table/messages_table names; open it with the names it was created with"
        )
    return found


_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")
_CREATE_VIEW = "CREATE VIEW IF NOT EXISTS"


def inspect_read_only(conn: sqlite3.Connection, sql: SQL) -> None:
    """Check a file for reading without writing to it, as :func:`inspect_file` does.

    A file sessions_dal has not set up yet (an openai-agents file, say) lacks
    some of our tables: empty temporary ones stand in for them, on this
    connection only, so every read works and reports what the file holds. A
    file of an older version lacks the tables and views of later ones: they
    stand in the same way.
    """
    version = inspect_file(conn, sql)
    for migration in MIGRATIONS[version:]:
        for statement in migration.statements:
            match = _CREATE_TABLE.search(statement)
            if match and not _table_exists(conn, _actual(sql, match.group(1))):
                temporary = statement.replace(match.group(0),
                                              f"CREATE TEMP TABLE {match.group(1)}")
                conn.execute(sql.ddl(temporary))
            elif _CREATE_VIEW in statement:  # a view holds no data: the same, in temp
                conn.execute(sql.ddl(statement.replace(_CREATE_VIEW,
                                                       "CREATE TEMP VIEW IF NOT EXISTS")))


def _actual(sql: SQL, default_name: str) -> str:
    """The name this database gives the table schema.sql calls ``default_name``."""
    return {"agent_sessions": sql.sessions_table,
            "agent_messages": sql.messages_table}.get(default_name, default_name)


def _check_layout(
    conn: sqlite3.Connection,
    path: str,
    sql: SQL,
    default_name: str,
    layout: tuple[tuple[str, ...], str],
) -> None:
    name = _actual(sql, default_name)
    rows = conn.execute(f"PRAGMA main.table_info({quote(name)})").fetchall()
    if not rows:
        return
    columns = tuple(row[1].lower() for row in rows)
    primary = [row[1].lower() for row in rows if row[5]]
    expected_columns, expected_key = layout
    problem = None
    if columns != expected_columns or primary != [expected_key]:
        problem = f"columns ({', '.join(columns)})"
    elif default_name == "agent_messages":
        keys = conn.execute(f"PRAGMA main.foreign_key_list({quote(name)})").fetchall()
        expected_keys = [(sql.sessions_table.lower(), "session_id")]
        if [(k[2].lower(), k[3].lower()) for k in keys] != expected_keys:
            problem = "foreign keys other than the one on session_id"
    if problem is not None:
        raise IncompatibleSchemaError(
            f"database {path!r} has a table {name!r} with {problem}, a layout that is neither "
            f"openai-agents' nor sessions_dal's (expected columns "
            f"({', '.join(expected_columns)})); the file was not changed. Open another file, "
            "or pass other sessions_table/messages_table names"
        )


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    # main only: a read-only repository's stand-in tables live in temp.
    row = conn.execute(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        (name,),
    ).fetchone()
    return row is not None
