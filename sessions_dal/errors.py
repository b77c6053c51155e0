"""Exceptions raised by sessions_dal.

Every database problem surfaces as a subclass of :class:`SessionsDalError`, so
``except SessionsDalError`` is enough to handle them all. Bad arguments are not
database problems: they raise the built-in ``TypeError`` and ``ValueError``.

The driver's original exception (``sqlite3``'s, psycopg's), when there is one, is
kept as ``__cause__``. An error with a fix the caller can apply carries it as
``remedy`` (a :class:`Remedy`), apart from ``problem``: ``str(error)`` says
both in the library's words, and a front end (the command line) may say the
remedy in its own.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "CorruptDataError",
    "CorruptItemError",
    "CorruptSessionError",
    "DatabaseError",
    "DatabaseLockedError",
    "DatabaseUnavailableError",
    "DiskFullError",
    "ImportFileError",
    "IncompatibleSchemaError",
    "MigrationError",
    "NotADatabaseError",
    "ReadOnlyDatabaseError",
    "Remedy",
    "RepositoryClosedError",
    "SchemaVersionError",
    "SearchUnavailableError",
    "SessionExistsError",
    "SessionNotFoundError",
    "SessionOwnedError",
    "SessionsDalError",
    "UnsupportedSQLiteError",
]


class Remedy(Enum):
    """What a caller can do about an error, in the library's words (its value)."""

    NEW_OR_EXISTING = ("omit session_id to get a new uuid4, or open the existing one with "
                       "get_session()")
    LIST_UNOWNED = "list unowned sessions with get_unowned_sessions()"
    LIST_SESSIONS = "list the user's sessions with get_sessions()"
    OPEN_READ_ONLY = "open it with read_only=True to read it, or make it writable to change it"
    IMPORT_REPLACE = "to overwrite it, import with replace=True"
    IMPORT_WITHOUT_END = ("an export from sessions_dal 0.1 has no such record: import it "
                          "with require_end=False")


class SessionsDalError(Exception):
    """Base class of every error this library raises on purpose.

    ``problem`` is what went wrong, ``remedy`` what to do about it (or
    ``None``); the message says both.
    """

    def __init__(self, problem: str = "", remedy: Remedy | None = None) -> None:
        if remedy is not None and not isinstance(remedy, Remedy):
            raise TypeError(f"remedy must be a Remedy or None, not {type(remedy).__name__}")
        super().__init__(problem if remedy is None else f"{problem}; {remedy.value}")
        self.problem = problem
        self.remedy = remedy


class SchemaVersionError(SessionsDalError):
    """The database was written by a newer sessions_dal than this one.

    The file is left untouched; upgrade sessions_dal to open it.
    """


class IncompatibleSchemaError(SessionsDalError):
    """The file has tables sessions_dal would use, but with a layout it does not know.

    The file is left untouched.
    """


class MigrationError(SessionsDalError):
    """A schema migration failed; the database stays at its previous version."""


class UnsupportedSQLiteError(SessionsDalError):
    """The SQLite library Python is linked against is too old."""


class SearchUnavailableError(SessionsDalError):
    """Search cannot run here: SQLite without FTS5, or a database not migrated yet.

    Everything else keeps working; the message says what would enable search.
    """


class RepositoryClosedError(SessionsDalError):
    """The repository (or a session obtained from it) was used after ``close()``."""


class SessionExistsError(SessionsDalError):
    """``create_session`` was given a ``session_id`` that is already taken."""


class SessionNotFoundError(SessionsDalError):
    """The session does not exist, or does not belong to the given user."""


class SessionOwnedError(SessionsDalError):
    """``claim_session`` was asked for a session that another user owns."""


class CorruptDataError(SessionsDalError):
    """A stored row cannot be read back: damaged outside sessions_dal.

    The message names the table and the row, so it can be inspected or repaired
    with the database's own tools. Rows are never skipped silently.
    """


class CorruptItemError(CorruptDataError):
    """A stored item is not valid JSON.

    The message names the session and the row's id in openai-agents' messages
    table (``agent_messages.id``, or the ``messages_table`` the repository uses).
    """


class CorruptSessionError(CorruptDataError):
    """A session's stored metadata or timestamps cannot be read.

    The message names the session and its ``agent_user_sessions`` row.
    """


class DatabaseError(SessionsDalError):
    """The database reported an error; ``__cause__`` holds the driver's exception."""


class NotADatabaseError(DatabaseError):
    """The file is not an SQLite database, or it is damaged."""


class DatabaseLockedError(DatabaseError):
    """Another connection held a lock for longer than the busy timeout."""


class ImportFileError(SessionsDalError, ValueError):
    """An import file that cannot be imported as it is (a ``ValueError`` too)."""


class ReadOnlyDatabaseError(DatabaseError):
    """The database file (or its directory) cannot be written."""


class DiskFullError(DatabaseError):
    """The disk, or the database's ``max_page_count``, is full."""


class DatabaseUnavailableError(DatabaseError):
    """The database server could not be reached, or dropped the connection.

    The next call opens a new connection; a write that was under way when the
    connection dropped may or may not have committed.
    """
