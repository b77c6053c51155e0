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

from .connection import Database
from .errors import MigrationError, SchemaVersionError

__all__ = [
    "SCHEMA_VERSION",
    "Migration",
    "apply_migrations",
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


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version
