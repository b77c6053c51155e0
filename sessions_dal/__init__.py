"""sessions_dal: AI-agent conversation sessions per user.

A synchronous data-access layer for users -> sessions -> items, in SQLite by
default or PostgreSQL behind a URL, on disk compatible with openai-agents'
``SQLiteSession`` and ``SQLAlchemySession``.

Layers (imports point down only; tests/test_layers.py checks it)::

    cli, agents            the command line; the openai-agents adapter
    SessionRepository,     the public layer: argument checks, ids, the clock,
      Session              JSON, results and the error policy; no SQL
    transfer               the export format, read and written in a store's transaction
    _store                 the contract: one store method, one transaction
    backends/sqlite/,      the stores: connection, statements, transactions,
      backends/postgres/   migrations (schema.sql), adoption, driver errors
    _search, _view,        neutral rules: queries and snippets; how items look;
      _validate, errors    argument checks and JSON; the error classes

>>> from sessions_dal import SessionRepository
>>> with SessionRepository(":memory:") as repo:
...     s = repo.create_session("alice", metadata={"title": "Trip"})
...     s.add_items([{"role": "user", "content": "hi"}])
...     repo.count_sessions("alice")
1
"""

from ._interrupts import COMMITTED_NOTE
from ._validate import MAX_ID_LENGTH
from ._version import __version__
from ._view import format_item
from .backends.sqlite import SCHEMA_VERSION
from .errors import SchemaVersionError, SessionsDalError
from .repository import (
    DatabaseInfo,
    DeletedUser,
    PruneReport,
    SearchHit,
    SearchResults,
    SessionRepository,
    UserSummary,
)
from .session import Session, SessionList, Size

__all__ = [
    "COMMITTED_NOTE",
    "MAX_ID_LENGTH",
    "SCHEMA_VERSION",
    "DatabaseInfo",
    "DeletedUser",
    "PruneReport",
    "SchemaVersionError",
    "SearchHit",
    "SearchResults",
    "Session",
    "SessionList",
    "SessionRepository",
    "SessionsDalError",
    "Size",
    "UserSummary",
    "__version__",
    "format_item",
]
