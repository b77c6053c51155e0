"""The ``schema.sql`` format every backend's migrations are written in.

A file of numbered blocks, each introduced by a line ``-- version: N`` and a
one-line comment saying what it does; versions run 1, 2, 3, ... and every
backend's file has the same numbers. Each backend applies a block in one
transaction together with its row in :data:`VERSION_TABLE`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "BATCH",
    "PROGRESS",
    "VERSION_TABLE",
    "Migration",
    "in_batches",
    "is_batched",
    "parse_migrations",
    "read_migrations",
]

VERSION_TABLE = "sessions_dal_migrations"
"""Our record of applied migrations: one row per version."""

PROGRESS: ContextVar[Callable[[str, float], None] | None] = ContextVar(
    "sessions_dal_migration_progress", default=None)
"""Who hears how far a long migration step is: ``(step, fraction done)``.

Set by ``sessions-dal migrate`` around the opening that migrates; a statement
that works through the items in batches reports after each batch.
"""

BATCH = 20_000
"""How many item ids a batched statement covers at a time."""


def is_batched(statement: str) -> bool:
    """Whether ``statement`` is run once per range of item ids ``(:after, :upto]``."""
    return ":after" in statement and ":upto" in statement


def in_batches(step: str, first: int | None, last: int | None,
               run: Callable[[int, int], object],
               next_upto: Callable[[int, int], int | None] | None = None) -> None:
    """``run(after, upto)`` over the item ids ``first..last``, :data:`BATCH` at a
    time, telling :data:`PROGRESS` (if set) how far ``step`` is after each.

    ``next_upto(after, count)``, if given, is the id of the ``count``-th item
    after ``after`` (``None``: fewer are left): batches of that many items,
    however far apart their ids are (an id of 2**62 must not mean 2**62 / BATCH
    batches).
    """
    if first is None or last is None:
        return
    report = PROGRESS.get()
    after = first - 1
    while after < last:
        upto = min(after + BATCH, last)
        if next_upto is not None:
            upto = min(next_upto(after, BATCH) or last, last)
        run(after, upto)
        after = upto
        if report is not None:
            report(step, (after - first + 1) / (last - first + 1))

_VERSION_LINE = re.compile(r"^--\s*version:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Migration:
    """One numbered block of ``schema.sql``: the statements that reach ``version``."""

    version: int
    statements: tuple[str, ...]
    title: str = ""
    """The block's first comment line: what it does, for ``sessions-dal migrate``."""


def parse_migrations(text: str, complete: Callable[[str], bool] = sqlite3.complete_statement
                     ) -> tuple[Migration, ...]:
    """Split migration text into :class:`Migration` blocks, checking their numbering.

    Versions must run 1, 2, 3, ... with no gap; each block needs at least one
    complete statement. Each backend splits its own SQL into statements:
    ``complete(text)`` says whether ``text`` ends with a complete one (SQLite's
    ``sqlite3.complete_statement``, a tokenizer that knows string literals,
    comments and trigger bodies, is the default; PostgreSQL's knows dollar
    quoting too).

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
    return tuple(
        Migration(version, _split_statements(version, lines, complete), _title(lines))
        for version, lines in blocks
    )


def _title(lines: list[str]) -> str:
    for line in lines:
        text = line.strip()
        if text:
            return text[2:].strip() if text.startswith("--") else ""
    return ""


def _split_statements(version: int, lines: list[str], complete: Callable[[str], bool]
                      ) -> tuple[str, ...]:
    statements: list[str] = []
    pending = ""
    for line in lines:
        pending += line + "\n"
        if complete(pending):
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


def read_migrations(package: str, complete: Callable[[str], bool] = sqlite3.complete_statement
                    ) -> tuple[Migration, ...]:
    """The migrations of the ``schema.sql`` in a backend's ``package``, split by ``complete``."""
    text = resources.files(package).joinpath("schema.sql").read_text(encoding="utf-8")
    return parse_migrations(text, complete)
