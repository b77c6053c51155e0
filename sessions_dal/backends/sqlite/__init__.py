"""The SQLite backend: one file, standard library only, on disk compatible with openai-agents.

Modules:

- ``store``: :class:`SQLiteStore`, the store behind ``SessionRepository``;
  each method is one ``BEGIN IMMEDIATE`` transaction or one read.
- ``_opening``: opening a file (read-write, or read-only without writing
  beside it), checked before SQLite touches it, and configured.
- ``_runner``: :class:`Database`, the connection, its lock and the
  transaction runner.
- ``_errors``: ``sqlite3``'s errors translated into the library's.
- ``_sql``: every statement, built once from the quoted table names.
- ``_schema``: the migrations of the top-level ``schema.sql``, the version
  table, and the checks that adopt an openai-agents file or refuse one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._validate import check_seconds
from ._opening import MAX_BUSY_TIMEOUT, SYNCHRONOUS_LEVELS
from ._schema import SCHEMA_VERSION
from .store import SQLiteStore

if TYPE_CHECKING:
    from ..._store import Common

__all__ = ["MAX_BUSY_TIMEOUT", "SCHEMA_VERSION", "SYNCHRONOUS_LEVELS", "SQLiteStore",
           "open_store"]


def open_store(path: str, common: Common, options: Mapping[str, Any]) -> SQLiteStore:
    """The store of the file ``path`` (``synchronous``: SQLite's, ``"NORMAL"`` if ``None``)."""
    timeout = check_seconds("busy_timeout", common.busy_timeout, maximum=MAX_BUSY_TIMEOUT)
    synchronous = options.get("synchronous")
    if synchronous is None:
        synchronous = "NORMAL"
    if not isinstance(synchronous, str):
        raise TypeError(f"synchronous must be a str, not {type(synchronous).__name__}")
    level = synchronous.upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(
            f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, got {synchronous!r}"
        )
    return SQLiteStore(path, busy_timeout=timeout, synchronous=level,
                       sessions_table=common.sessions_table,
                       messages_table=common.messages_table, read_only=common.read_only)
