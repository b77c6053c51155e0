"""sessions_dal: AI-agent conversation sessions per user, in SQLite.

A synchronous, embedded store of users -> sessions -> items, on disk
compatible with openai-agents' ``SQLiteSession``.

>>> from sessions_dal import SessionRepository
>>> with SessionRepository(":memory:") as repo:
...     s = repo.create_session("alice", metadata={"title": "Trip"})
...     s.add_items([{"role": "user", "content": "hi"}])
...     repo.count_sessions("alice")
1
"""

from ._validate import MAX_ID_LENGTH
from .errors import SchemaVersionError, SessionsDalError
from .migrations import SCHEMA_VERSION
from .repository import DatabaseInfo, DeletedUser, SessionRepository, UserSummary
from .session import Session

__all__ = [
    "MAX_ID_LENGTH",
    "SCHEMA_VERSION",
    "DatabaseInfo",
    "DeletedUser",
    "SchemaVersionError",
    "Session",
    "SessionRepository",
    "SessionsDalError",
    "UserSummary",
    "__version__",
]

__version__ = "0.2.0"
