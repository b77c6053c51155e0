"""The SQLite backend: one file, standard library only, on disk compatible with openai-agents.

Modules:

- ``store``: :class:`SQLiteStore`, the store behind ``SessionRepository``;
  each method is one ``BEGIN IMMEDIATE`` transaction or one read.
- ``_connection``: opening (read-write, or read-only without writing beside
  the file), the lock, the transaction runner, ``sqlite3`` error translation.
- ``_sql``: every statement, built once from the quoted table names.
- ``_schema``: the migrations of the top-level ``schema.sql``, the version
  table, and the checks that adopt an openai-agents file or refuse one.
"""

from ._connection import MAX_BUSY_TIMEOUT, SYNCHRONOUS_LEVELS
from ._schema import SCHEMA_VERSION
from .store import SQLiteStore

__all__ = ["MAX_BUSY_TIMEOUT", "SCHEMA_VERSION", "SYNCHRONOUS_LEVELS", "SQLiteStore"]
