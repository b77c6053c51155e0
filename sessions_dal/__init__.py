"""sessions_dal: AI-agent conversation sessions per user.

A synchronous data-access layer for users -> sessions -> items, in SQLite by
default and on disk compatible with openai-agents' ``SQLiteSession``.

Layers (data flows down only)::

    cli, agents            the command line; the openai-agents adapter
    SessionRepository,     the public layer: argument checks, ids, the clock,
      Session, transfer    JSON, results and the error policy; no SQL
    _store                 the contract: one store method, one transaction
    backends/sqlite/       a store: connection, statements, transactions,
                           migrations (schema.sql), adoption, driver errors

>>> from sessions_dal import SessionRepository
>>> with SessionRepository(":memory:") as repo:
...     s = repo.create_session("alice", metadata={"title": "Trip"})
...     s.add_items([{"role": "user", "content": "hi"}])
...     repo.count_sessions("alice")
1
"""

__version__ = "0.2.0"

from ._search import SearchHit, SearchResults
from ._store import COMMITTED_NOTE
from ._validate import MAX_ID_LENGTH
from ._view import format_item
from .backends.sqlite import SCHEMA_VERSION
from .errors import SchemaVersionError, SessionsDalError
from .repository import DatabaseInfo, DeletedUser, PruneReport, SessionRepository, UserSummary
from .session import Session, SessionList

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
    "UserSummary",
    "__version__",
    "format_item",
]
