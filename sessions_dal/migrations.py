"""Versioned migrations read from ``schema.sql``.

``schema.sql`` is a list of numbered blocks, each introduced by a line
``-- version: N``. Version N is applied in one ``BEGIN IMMEDIATE`` transaction
together with ``PRAGMA user_version = N``, so a failing migration leaves the
database at N-1 and the version can never disagree with the tables.
``executescript`` is never used: it would commit the open transaction first.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

from .connection import Connection, Database
from .errors import IncompatibleSchemaError, MigrationError, SchemaVersionError
from .tables import Tables

__all__ = [
    "SCHEMA_VERSION",
    "Migration",
    "apply_migrations",
    "inspect_file",
    "load_migrations",
    "parse_migrations",
]

_VERSION_LINE = re.compile(r"^--\s*version:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Migration:
    """One numbered block of ``schema.sql``: the statements that reach ``version``."""

    version: int
    statements: tuple[str, ...]


def parse_migrations(text: str) -> tuple[Migration, ...]:
    """Split migration text into :class:`Migration` blocks, checking their numbering.

    Versions must run 1, 2, 3, ... with no gap; each block needs at least one
    complete statement. Statements are split with ``sqlite3.complete_statement``,
    which understands string literals, comments and trigger bodies.

    >>> [m.version for m in parse_migrations("-- version: 1\\nCREATE TABLE t (x);")]
    [1]
    """
    blocks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _VERSION_LINE.match(line.strip())
        if match:
            version = int(match.group(1))
            if version != len(blocks) + 1:
                raise ValueError(
                    f"schema line {number}: expected '-- version: {len(blocks) + 1}', "
                    f"found version {version}; versions must run 1, 2, 3, ... without gaps"
                )
            blocks.append((version, []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line.strip() and not line.lstrip().startswith("--"):
            raise ValueError(
                f"schema line {number}: SQL before the first '-- version: N' line"
            )
    return tuple(Migration(version, _split_statements(version, lines)) for version, lines in blocks)


def _split_statements(version: int, lines: list[str]) -> tuple[str, ...]:
    statements: list[str] = []
    pending = ""
    for line in lines:
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if _has_sql(statement):
                statements.append(statement)
            pending = ""
    if _has_sql(pending):
        raise ValueError(f"schema version {version}: incomplete statement (missing ';'?)")
    if not statements:
        raise ValueError(f"schema version {version} has no statements")
    return tuple(statements)


def _has_sql(text: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in text.splitlines()
    )


def load_migrations() -> tuple[Migration, ...]:
    """The migrations of the ``schema.sql`` shipped with this package."""
    text = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
    return parse_migrations(text)


MIGRATIONS = load_migrations()
SCHEMA_VERSION: int = MIGRATIONS[-1].version
"""The schema version this sessions_dal writes: the last block of ``schema.sql``."""


def apply_migrations(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database up to the last of ``migrations``; return how many ran.

    A database already at the last version costs one read and no write. The
    version is read again inside each write transaction, so processes that
    open a new file at the same moment apply each migration exactly once.
    """
    target = migrations[-1].version
    with db.read() as conn:
        if _user_version(conn) == target:
            return 0
    applied = 0
    for migration in migrations:
        with db.write() as conn:
            current = _user_version(conn)
            if current > target:
                raise SchemaVersionError(
                    f"database {db.path!r} was upgraded to schema version {current} by a "
                    f"newer sessions_dal while this one (up to version {target}) was "
                    "opening it: upgrade sessions_dal (pip install -U sessions-dal)"
                )
            if current >= migration.version:
                continue
            for statement in migration.statements:
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    raise MigrationError(
                        f"migrating {db.path!r} to schema version {migration.version} "
                        f"failed ({exc}) in: {statement.splitlines()[0]}; the database "
                        f"is still at version {current}"
                    ) from exc
            # An int from our own file, not user data; PRAGMA values cannot be bound.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            applied += 1
    return applied


def _user_version(conn: sqlite3.Connection | Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


# The layouts a file may already have when sessions_dal first opens it
# (user_version 0): openai-agents' SQLiteSession tables, or ours. Column names
# in order, and which column is the primary key.
_AGENTS_LAYOUTS = {
    "agent_sessions": (("session_id", "created_at", "updated_at"), "session_id"),
    "agent_messages": (("id", "session_id", "message_data", "created_at"), "id"),
}
_OWN_LAYOUTS = {
    "agent_users": (("user_id", "created_at"), "user_id"),
    "agent_user_sessions": (
        ("seq", "session_id", "user_id", "metadata", "created_at", "updated_at"), "seq"
    ),
}


def inspect_file(conn: sqlite3.Connection, tables: Tables, newest: int = SCHEMA_VERSION) -> None:
    """Refuse, before anything is written, a file this sessions_dal must not touch.

    Raises :class:`SchemaVersionError` for a file from a newer sessions_dal and
    :class:`IncompatibleSchemaError` when its tables have a layout that is
    neither openai-agents' nor ours, or (custom table names) when the named
    tables are not the ones the file was set up with.
    """
    path = conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
    found = _user_version(conn)
    if found > newest:
        raise SchemaVersionError(
            f"database {path!r} has schema version {found}, but this sessions_dal "
            f"supports versions up to {newest}: upgrade sessions_dal "
            "(pip install -U sessions-dal) to open it; the file was not changed"
        )
    if found == 0:
        for name, layout in _AGENTS_LAYOUTS.items():
            _check_layout(conn, path, tables, name, layout)
        for name, layout in _OWN_LAYOUTS.items():
            _check_layout(conn, path, tables, name, layout)
        return
    missing = [
        name for name in (tables.sessions, tables.messages) if not _table_exists(conn, name)
    ]
    if missing:
        raise IncompatibleSchemaError(
            f"database {path!r} has no table {missing[0]!r}: it was set up with other "
            "sessions_table/messages_table names; open it with the names it was created with"
        )


def _check_layout(
    conn: sqlite3.Connection,
    path: str,
    tables: Tables,
    default_name: str,
    layout: tuple[tuple[str, ...], str],
) -> None:
    name = tables.sql(default_name).strip('"')
    rows = conn.execute(tables.sql(f"PRAGMA table_info({default_name})")).fetchall()
    if not rows:
        return
    columns = tuple(row[1].lower() for row in rows)
    primary = [row[1].lower() for row in rows if row[5]]
    expected_columns, expected_key = layout
    problem = None
    if columns != expected_columns or primary != [expected_key]:
        problem = f"columns ({', '.join(columns)})"
    elif default_name == "agent_messages":
        keys = conn.execute(tables.sql("PRAGMA foreign_key_list(agent_messages)")).fetchall()
        expected_keys = [(tables.sessions.lower(), "session_id")]
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
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return row is not None
