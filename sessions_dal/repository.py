"""SessionRepository: users and their sessions in one SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ._files import is_database_file, publish, temporary_beside
from ._validate import (
    check_id,
    check_int,
    check_limit,
    check_seconds,
    encode_metadata,
)
from .connection import (
    MAX_BUSY_TIMEOUT,
    SYNCHRONOUS_LEVELS,
    Connection,
    Database,
    Opened,
    open_connection,
    open_read_only,
    write_call,
)
from .errors import (
    CorruptDataError,
    CorruptSessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionOwnedError,
)
from .migrations import (
    apply_migrations,
    inspect_file,
    inspect_read_only,
    pending_steps,
    schema_version,
)
from .session import Session, parse_agents_timestamp, parse_timestamp, utc_now
from .tables import DEFAULT_MESSAGES_TABLE, DEFAULT_SESSIONS_TABLE, Tables, check_table_name

__all__ = ["DatabaseInfo", "DeletedUser", "SessionRepository", "UserSummary"]

_COLUMNS = "session_id, user_id, metadata, created_at, updated_at"
# Newest first, ties by insertion order (later first): a total order, so
# offset pages never skip or repeat while nothing is inserted.
_ORDER = "ORDER BY created_at DESC, seq DESC"

_INSERT_USER = (
    "INSERT INTO agent_users (user_id, created_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING"
)
# DO NOTHING on a taken id: no row changed means "exists"; any other
# constraint failure stays an error of its own.
_INSERT_AGENT_SESSION = (
    "INSERT INTO agent_sessions (session_id) VALUES (?) ON CONFLICT (session_id) DO NOTHING"
)
_INSERT_OWNED = (
    "INSERT INTO agent_user_sessions (session_id, user_id, metadata, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING"
)
_SELECT_ONE = f"SELECT {_COLUMNS} FROM agent_user_sessions WHERE session_id = ? AND user_id = ?"
_SELECT_PAGE = (
    f"SELECT {_COLUMNS} FROM agent_user_sessions WHERE user_id = ? {_ORDER} LIMIT ? OFFSET ?"
)
_SELECT_KEYSET_FIRST = (
    f"SELECT {_COLUMNS}, seq FROM agent_user_sessions WHERE user_id = ? {_ORDER} LIMIT ?"
)
_SELECT_KEYSET_NEXT = (
    f"SELECT {_COLUMNS}, seq FROM agent_user_sessions "
    f"WHERE user_id = ? AND (created_at, seq) < (?, ?) {_ORDER} LIMIT ?"
)
_COUNT = "SELECT count(*) FROM agent_user_sessions WHERE user_id = ?"
_UPDATE_METADATA = (
    f"UPDATE agent_user_sessions SET metadata = ? WHERE session_id = ? AND user_id = ? "
    f"RETURNING {_COLUMNS}"
)
_DELETE_OWNED = "DELETE FROM agent_user_sessions WHERE session_id = ? AND user_id = ?"
_DELETE_ITEMS = "DELETE FROM agent_messages WHERE session_id = ?"
_DELETE_AGENT_SESSION = "DELETE FROM agent_sessions WHERE session_id = ?"
_USER_SESSIONS = "SELECT session_id FROM agent_user_sessions WHERE user_id = ?"
_DELETE_USER_ITEMS = f"DELETE FROM agent_messages WHERE session_id IN ({_USER_SESSIONS})"
_DELETE_USER_AGENT_SESSIONS = f"DELETE FROM agent_sessions WHERE session_id IN ({_USER_SESSIONS})"
_DELETE_USER_OWNED = "DELETE FROM agent_user_sessions WHERE user_id = ?"
_DELETE_USER = "DELETE FROM agent_users WHERE user_id = ?"
_SELECT_BY_ID = f"SELECT {_COLUMNS} FROM agent_user_sessions WHERE session_id = ?"
_SELECT_USERS = (
    "SELECT user_id, created_at, (SELECT count(*) FROM agent_user_sessions s "
    "WHERE s.user_id = u.user_id) FROM agent_users u ORDER BY user_id LIMIT ? OFFSET ?"
)
_COUNT_ALL = (
    "SELECT (SELECT count(*) FROM agent_users), (SELECT count(*) FROM agent_user_sessions), "
    "(SELECT count(*) FROM agent_messages)"
)
# Sessions openai-agents wrote that nobody has claimed: an anti-join, so the
# cost grows with agent_sessions; meant for one-off adoption, not hot paths.
_UNOWNED = (
    "FROM agent_sessions a WHERE NOT EXISTS "
    "(SELECT 1 FROM agent_user_sessions o WHERE o.session_id = a.session_id)"
)
_SELECT_UNOWNED = (
    f"SELECT session_id, created_at, updated_at {_UNOWNED} "
    "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
)
_SELECT_UNOWNED_ONE = f"SELECT session_id, created_at, updated_at {_UNOWNED} AND session_id = ?"
_COUNT_UNOWNED = f"SELECT count(*) {_UNOWNED}"
_SELECT_AGENT_SESSION = "SELECT created_at, updated_at FROM agent_sessions WHERE session_id = ?"
_DELETE_UNOWNED_ITEMS = (
    "DELETE FROM agent_messages WHERE session_id = ? AND NOT EXISTS "
    "(SELECT 1 FROM agent_user_sessions WHERE session_id = ?)"
)
_DELETE_UNOWNED = (
    "DELETE FROM agent_sessions WHERE session_id = ? AND NOT EXISTS "
    "(SELECT 1 FROM agent_user_sessions WHERE session_id = ?)"
)
_SELECT_OWNER = "SELECT user_id FROM agent_user_sessions WHERE session_id = ?"


def _limit_offset(limit: object, offset: object) -> tuple[int, int]:
    """Checked ``limit``/``offset`` as SQLite's LIMIT and OFFSET (LIMIT -1: no limit)."""
    count = check_limit(limit)
    return (-1 if count is None else count, check_int("offset", offset))


@dataclass(frozen=True)
class UserSummary:
    """One user, as listed by :meth:`SessionRepository.get_users`."""

    user_id: str
    created_at: datetime
    """When the user's first session was created (UTC)."""
    sessions: int
    """How many sessions the user owns."""


@dataclass(frozen=True)
class DatabaseInfo:
    """What :meth:`SessionRepository.info` reports about the file."""

    path: str
    schema_version: int
    """0 for a file sessions_dal has not set up yet (an openai-agents file, say)."""
    migration_pending: bool
    """Whether opening read-write (or ``sessions-dal migrate``) would upgrade the file."""
    read_only: bool
    sqlite_version: str
    journal_mode: str
    users: int
    sessions: int
    """Sessions that have an owner."""
    unowned_sessions: int
    """Sessions openai-agents wrote that no user has claimed."""
    items: int
    """Every stored item, including those of sessions openai-agents wrote."""


@dataclass(frozen=True)
class DeletedUser:
    """What :meth:`SessionRepository.delete_user` removed."""

    user_id: str
    found: bool
    """Whether the user existed."""
    sessions: int
    """How many of the user's sessions were deleted."""
    items: int
    """How many items those sessions held."""


class SessionRepository:
    """Users, their sessions and the sessions' items, in one SQLite file.

    Opening creates the file if needed and applies any pending migration from
    ``schema.sql``; a file from a newer sessions_dal raises
    :class:`~sessions_dal.errors.SchemaVersionError` and is left untouched.

    ``path`` is a file path or ``":memory:"`` (one private database for the
    repository's lifetime). ``busy_timeout`` is how many seconds a call waits
    for another connection's lock before raising
    :class:`~sessions_dal.errors.DatabaseLockedError`. ``synchronous`` is
    SQLite's durability level: ``"NORMAL"`` (the default in WAL mode: safe
    against application crashes; a power loss may drop the last commits) or
    ``"FULL"`` (also survives power loss, slower); ``"OFF"`` and ``"EXTRA"``
    are accepted too. ``sessions_table`` and ``messages_table`` name
    openai-agents' two tables when its ``SQLiteSession`` was given other names
    (letters, digits and underscores only); a file holds one such pair.

    A file openai-agents' ``SQLiteSession`` wrote is adopted in place: its
    sessions and items are kept as they are, and become *unowned* sessions
    (see :meth:`get_unowned_sessions` and :meth:`claim_session`).

    One repository is safe to share between threads: it holds one connection
    and serialises calls on it with a lock. Other processes may open the same
    file at the same time.

    >>> with SessionRepository(":memory:") as repo:
    ...     s = repo.create_session("alice", metadata={"title": "Trip"})
    ...     [x.metadata for x in repo.get_sessions("alice")]
    [{'title': 'Trip'}]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        sessions_table: str = DEFAULT_SESSIONS_TABLE,
        messages_table: str = DEFAULT_MESSAGES_TABLE,
        read_only: bool = False,
    ) -> None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(
                f"path must be a str or os.PathLike, not {type(path).__name__}"
            )
        if not path:
            raise ValueError("path must not be empty; use ':memory:' for an in-memory database")
        if "\x00" in path:
            raise ValueError("path must not contain NUL characters")
        timeout = check_seconds("busy_timeout", busy_timeout, maximum=MAX_BUSY_TIMEOUT)
        if not isinstance(synchronous, str):
            raise TypeError(f"synchronous must be a str, not {type(synchronous).__name__}")
        level = synchronous.upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, got {synchronous!r}"
            )
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be a bool, not {type(read_only).__name__}")
        tables = Tables(
            check_table_name("sessions_table", sessions_table),
            check_table_name("messages_table", messages_table),
        )
        if tables.sessions.lower() == tables.messages.lower():
            raise ValueError("sessions_table and messages_table must be different tables")
        memory = path == ":memory:" or path.startswith("file::memory:")
        if read_only:
            if memory:
                raise ValueError(
                    "read_only needs a database file; an in-memory database is always new "
                    "and empty"
                )

            def connect() -> Opened:
                return open_read_only(
                    path, busy_timeout=timeout, inspect=lambda c: inspect_read_only(c, tables)
                )

            raw, fingerprint = connect()
            self._db = Database(raw, path, timeout, tables, reopen=connect,
                                fingerprint=fingerprint, read_only=True)
            return

        def connect_rw() -> Opened:
            conn = open_connection(
                path,
                busy_timeout=timeout,
                synchronous=level,
                inspect=lambda c: inspect_file(c, tables),
            )
            return conn, None

        self._db = Database(connect_rw()[0], path, timeout, tables,
                            reopen=None if memory else connect_rw)
        try:
            apply_migrations(self._db)
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> str:
        """The database path the repository was opened with."""
        return self._db.path

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._db.closed

    @property
    def read_only(self) -> bool:
        """True when opened with ``read_only=True``: nothing is ever written then."""
        return self._db.read_only

    def close(self) -> None:
        """Close the connection. Idempotent; later calls raise ``RepositoryClosedError``."""
        self._db.close()

    def __enter__(self) -> SessionRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else " read-only" if self.read_only else ""
        return f"<SessionRepository {self.path!r}{state}>"

    @write_call
    def create_session(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Create a session for ``user_id`` and return it, already persisted.

        The user is created if missing, in the same transaction. The id is a
        new uuid4 string unless ``session_id`` is given; a ``session_id`` that
        already exists (ours, or one openai-agents wrote) raises
        :class:`~sessions_dal.errors.SessionExistsError` and writes nothing.

        >>> with SessionRepository(":memory:") as repo:
        ...     repo.create_session("alice", session_id="chat-1").session_id
        'chat-1'
        """
        check_id("user_id", user_id)
        if session_id is None:
            session_id = str(uuid.uuid4())
        else:
            check_id("session_id", session_id)
        meta_text = "{}" if metadata is None else encode_metadata(metadata)
        now = utc_now()
        self._db.write(_create, user_id, session_id, meta_text, now)
        created = parse_timestamp(now)
        meta = {} if metadata is None else json.loads(meta_text)
        return Session(self._db, session_id, user_id, meta, created, created)

    def get_session(self, user_id: str, session_id: str) -> Session | None:
        """Return the session, or ``None`` if it does not exist or is not ``user_id``'s."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        row = self._db.fetchone(_SELECT_ONE, (session_id, user_id))
        return None if row is None else self._session(row)

    def get_sessions(
        self, user_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        """Return a page of the user's sessions, newest first.

        ``limit=None`` returns all of them from ``offset``. Ties in creation
        time are broken by creation order (later first), so walking the pages
        with ``offset`` neither skips nor repeats a session while none is
        created. An unknown user has no sessions: ``[]``.
        """
        check_id("user_id", user_id)
        page = _limit_offset(limit, offset)
        rows = self._db.fetchall(_SELECT_PAGE, (user_id, *page))
        return [self._session(row) for row in rows]

    def iter_sessions(self, user_id: str, *, page_size: int = 100) -> Iterator[Session]:
        """Yield all the user's sessions, newest first, ``page_size`` at a time.

        Pages are fetched by keyset (after the last one seen), not by offset,
        so each page costs the same however deep the walk, memory stays at one
        page, and sessions created meanwhile never make it repeat one.
        """
        check_id("user_id", user_id)
        size = check_int("page_size", page_size, minimum=1)
        return self._iter_pages(user_id, size)

    def _iter_pages(self, user_id: str, page_size: int) -> Iterator[Session]:
        rows = self._db.fetchall(_SELECT_KEYSET_FIRST, (user_id, page_size))
        while rows:
            for row in rows:
                yield self._session(row)
            if len(rows) < page_size:
                return
            last = rows[-1]
            rows = self._db.fetchall(_SELECT_KEYSET_NEXT, (user_id, last[3], last[5], page_size))

    def count_sessions(self, user_id: str) -> int:
        """How many sessions ``user_id`` owns (0 for an unknown user)."""
        check_id("user_id", user_id)
        count: int = self._db.fetchone(_COUNT, (user_id,))[0]
        return count

    @write_call
    def update_metadata(
        self,
        user_id: str,
        session_id: str,
        metadata: dict[str, Any],
        *,
        replace: bool = False,
    ) -> Session:
        """Change a session's metadata without touching its items; return the session.

        By default the keys of ``metadata`` are merged into the stored dict
        (like ``dict.update``), atomically. ``replace=True`` stores ``metadata``
        as the whole dict. Raises
        :class:`~sessions_dal.errors.SessionNotFoundError` if the session does
        not exist or is not ``user_id``'s.

        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice", metadata={"title": "Trip", "pinned": True})
        ...     repo.update_metadata("alice", s.session_id, {"title": "Trip to Rome"}).metadata
        {'title': 'Trip to Rome', 'pinned': True}
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        if not isinstance(replace, bool):
            raise TypeError(f"replace must be a bool, not {type(replace).__name__}")
        encode_metadata(metadata)
        row = self._db.write(_update_metadata, user_id, session_id, metadata, replace)
        return self._session(row)

    @write_call
    def delete_session(self, user_id: str, session_id: str) -> bool:
        """Delete the session and all its items; ``True`` if it was deleted.

        Returns ``False``, changing nothing, when the session does not exist or
        belongs to another user.
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        return self._db.write(_delete_session, user_id, session_id)

    @write_call
    def delete_user(self, user_id: str) -> DeletedUser:
        """Erase the user, all their sessions and all their items, in one transaction.

        >>> with SessionRepository(":memory:") as repo:
        ...     repo.create_session("bob").add_items([1, 2, 3])
        ...     repo.delete_user("bob")
        DeletedUser(user_id='bob', found=True, sessions=1, items=3)
        """
        check_id("user_id", user_id)
        found, sessions, items = self._db.write(_delete_user, user_id)
        return DeletedUser(user_id, found, sessions, items)

    def find_session(self, session_id: str) -> Session | None:
        """Return the session with this id whoever owns it (or nobody), or ``None``.

        This bypasses the ownership check of :meth:`get_session`: it is for
        administration tools (the command line uses it), not for serving users.
        """
        check_id("session_id", session_id)
        row = self._db.fetchone(_SELECT_BY_ID, (session_id,))
        return self._session(row) if row is not None else self.get_unowned_session(session_id)

    # -- sessions openai-agents wrote ---------------------------------------------

    def get_unowned_sessions(self, *, limit: int | None = None, offset: int = 0) -> list[Session]:
        """Return sessions that openai-agents' ``SQLiteSession`` wrote and no user owns.

        Newest first. Their ``user_id`` is ``None`` and their ``metadata``
        empty; their items can be read and written like any session's. Give
        them an owner with :meth:`claim_session`.
        """
        page = _limit_offset(limit, offset)
        return [self._unowned(*row) for row in self._db.fetchall(_SELECT_UNOWNED, page)]

    def get_unowned_session(self, session_id: str) -> Session | None:
        """Return the unowned session ``session_id``, or ``None`` if it is absent or owned."""
        check_id("session_id", session_id)
        row = self._db.fetchone(_SELECT_UNOWNED_ONE, (session_id,))
        return None if row is None else self._unowned(*row)

    @write_call
    def delete_unowned_session(self, session_id: str) -> bool:
        """Delete an unowned session and its items; ``True`` if it was deleted.

        Returns ``False``, changing nothing, when there is no such session or a
        user owns it (delete that with :meth:`delete_session`).
        """
        check_id("session_id", session_id)
        return self._db.write(_delete_unowned, session_id)

    def count_unowned_sessions(self) -> int:
        """How many sessions no user owns."""
        count: int = self._db.fetchone(_COUNT_UNOWNED)[0]
        return count

    @write_call
    def claim_session(
        self,
        user_id: str,
        session_id: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Make ``user_id`` the owner of an unowned session, and return it.

        The session keeps its items and its creation time, so it sorts among
        the user's sessions by when openai-agents created it. Claiming a session
        the user already owns returns it unchanged. Raises
        :class:`~sessions_dal.errors.SessionOwnedError` if another user owns it
        and :class:`~sessions_dal.errors.SessionNotFoundError` if it does not
        exist; nothing is written then.
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        meta_text = encode_metadata({} if metadata is None else metadata)
        return self._session(self._db.write(_claim, user_id, session_id, meta_text))

    @write_call
    def claim_sessions(self, user_id: str, session_ids: Iterable[str]) -> list[Session]:
        """Claim several sessions for ``user_id`` in one transaction: all of them or none."""
        check_id("user_id", user_id)
        if isinstance(session_ids, str):
            raise TypeError("session_ids must be a list of str, not a str; wrap one id in a list")
        ids = [check_id(f"session_ids[{n}]", s) for n, s in enumerate(session_ids)]
        rows = self._db.write(_claim_all, user_id, ids)
        return [self._session(row) for row in rows]

    def _unowned(self, session_id: str, created: str | None, updated: str | None) -> Session:
        return Session(self._db, session_id, None, {}, parse_agents_timestamp(created),
                       parse_agents_timestamp(updated))

    def get_users(self, *, limit: int | None = None, offset: int = 0) -> list[UserSummary]:
        """Return a page of users, ordered by ``user_id``, with their session counts."""
        rows = self._db.fetchall(_SELECT_USERS, _limit_offset(limit, offset))
        return [UserSummary(user, _user_time(user, created), n) for user, created, n in rows]

    def info(self) -> DatabaseInfo:
        """Counts and settings of the database, for a quick look at a file."""
        users, owned, unowned, items, journal_mode, version, pending = self._db.read(_info)
        if self.read_only and _is_wal_file(self.path):
            journal_mode = "wal"  # an immutable connection reports "delete"
        return DatabaseInfo(
            self.path, version, pending, self.read_only, sqlite3.sqlite_version, journal_mode,
            users, owned, unowned, items,
        )

    def pending_migrations(self) -> list[str]:
        """What opening read-write would change in the file's schema, one line per step.

        Always ``[]`` for a read-write repository, which migrated when it
        opened; a ``read_only=True`` one reports what ``sessions-dal migrate``
        would do.
        """
        return self._db.read(pending_steps)

    def backup(self, target: str | os.PathLike[str]) -> None:
        """Copy the whole database to a new file ``target``, consistently, while in use.

        Uses SQLite's online backup: other connections keep reading and
        writing meanwhile, and the copy is one point in time. The copy is
        written beside ``target`` and renamed into place, so ``target`` is
        either absent or complete; an existing ``target`` raises
        ``ValueError`` (choose a new name).
        """
        destination = os.fspath(target)
        if not isinstance(destination, str) or not destination:
            raise TypeError("target must be a non-empty str or os.PathLike")
        if is_database_file(destination, self.path):
            raise ValueError(
                f"backup target {destination!r} is the database itself or one of its "
                "-wal/-shm/-journal files; choose another name"
            )
        if os.path.lexists(destination):
            raise ValueError(f"backup target {destination!r} already exists; choose a new name")
        with temporary_beside(destination, ".sessions-backup-") as temporary:
            copy = sqlite3.connect(temporary)
            try:
                self._db.read(_backup, copy)
            finally:
                copy.close()
            publish(temporary, destination, overwrite=False)

    def check(self) -> list[str]:
        """Run SQLite's integrity and foreign-key checks; return the problems found.

        An empty list means the file is sound.
        """
        return self._db.read(_check)

    def _session(self, row: tuple[Any, ...]) -> Session:
        session_id, user_id, metadata, created_at, updated_at = row[:5]
        return Session(
            self._db,
            session_id,
            user_id,
            _metadata(session_id, metadata),
            _session_time(session_id, "created_at", created_at),
            _session_time(session_id, "updated_at", updated_at),
        )


# -- the transactions and reads behind the methods above: each runs whole ----------


def _create(conn: Connection, user_id: str, session_id: str, meta_text: str, now: str) -> None:
    conn.execute(_INSERT_USER, (user_id, now))
    if (conn.execute(_INSERT_AGENT_SESSION, (session_id,)).rowcount == 0
            or conn.execute(_INSERT_OWNED, (session_id, user_id, meta_text, now, now)).rowcount
            == 0):
        raise SessionExistsError(
            f"session_id {session_id!r} already exists; omit session_id to get "
            "a new uuid4, or open the existing one with get_session()"
        )


def _update_metadata(conn: Connection, user_id: str, session_id: str,
                     metadata: dict[str, Any], replace: bool) -> tuple[Any, ...]:
    if replace:
        merged = metadata
    else:
        row = conn.execute(_SELECT_ONE, (session_id, user_id)).fetchone()
        if row is None:
            raise _not_found(user_id, session_id)
        merged = {**_metadata(session_id, row[2]), **metadata}
    row = conn.execute(_UPDATE_METADATA, (encode_metadata(merged), session_id, user_id)).fetchone()
    if row is None:
        raise _not_found(user_id, session_id)
    return tuple(row)


def _delete_session(conn: Connection, user_id: str, session_id: str) -> bool:
    if conn.execute(_DELETE_OWNED, (session_id, user_id)).rowcount == 0:
        return False
    conn.execute(_DELETE_ITEMS, (session_id,))
    conn.execute(_DELETE_AGENT_SESSION, (session_id,))
    return True


def _delete_user(conn: Connection, user_id: str) -> tuple[bool, int, int]:
    items = conn.execute(_DELETE_USER_ITEMS, (user_id,)).rowcount
    conn.execute(_DELETE_USER_AGENT_SESSIONS, (user_id,))
    sessions = conn.execute(_DELETE_USER_OWNED, (user_id,)).rowcount
    found = conn.execute(_DELETE_USER, (user_id,)).rowcount > 0
    return found, sessions, items


def _delete_unowned(conn: Connection, session_id: str) -> bool:
    if conn.execute(_DELETE_UNOWNED, (session_id, session_id)).rowcount == 0:
        return False
    conn.execute(_DELETE_UNOWNED_ITEMS, (session_id, session_id))
    return True


def _claim_all(conn: Connection, user_id: str, ids: list[str]) -> list[tuple[Any, ...]]:
    return [_claim(conn, user_id, session_id, "{}") for session_id in ids]


def _claim(conn: Connection, user_id: str, session_id: str, meta_text: str) -> tuple[Any, ...]:
    owner = conn.execute(_SELECT_OWNER, (session_id,)).fetchone()
    if owner is not None:
        if owner[0] != user_id:
            raise SessionOwnedError(
                f"session {session_id!r} belongs to another user; it cannot be claimed "
                f"for {user_id!r}"
            )
        return tuple(conn.execute(_SELECT_ONE, (session_id, user_id)).fetchone())
    times = conn.execute(_SELECT_AGENT_SESSION, (session_id,)).fetchone()
    if times is None:
        raise SessionNotFoundError(
            f"there is no session {session_id!r} to claim; list unowned sessions with "
            "get_unowned_sessions()"
        )
    created, updated = (parse_agents_timestamp(t).isoformat(timespec="microseconds")
                        for t in times)
    conn.execute(_INSERT_USER, (user_id, utc_now()))
    conn.execute(_INSERT_OWNED, (session_id, user_id, meta_text, created, updated))
    return (session_id, user_id, meta_text, created, updated)


def _info(conn: Connection) -> tuple[Any, ...]:
    users, owned, items = conn.execute(_COUNT_ALL).fetchone()
    unowned = conn.execute(_COUNT_UNOWNED).fetchone()[0]
    journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    version = schema_version(conn)[0]
    return users, owned, unowned, items, journal_mode, version, bool(pending_steps(conn))


def _backup(conn: Connection, copy: sqlite3.Connection) -> None:
    conn.raw.backup(copy)


def _check(conn: Connection) -> list[str]:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems == ["ok"]:
        problems = []
    problems += [
        f"foreign key: {table} row {rowid} refers to a missing {parent} row"
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
    ]
    return problems


def _not_found(user_id: str, session_id: str) -> SessionNotFoundError:
    return SessionNotFoundError(
        f"user {user_id!r} has no session {session_id!r}; "
        "list the user's sessions with get_sessions()"
    )


def _is_wal_file(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(20)[18:20] == b"\x02\x02"


def _metadata(session_id: str, text: object) -> dict[str, Any]:
    """A session's stored metadata, or :class:`CorruptSessionError` naming its row."""
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError) as exc:
        raise _corrupt(session_id, f"metadata that is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise _corrupt(session_id, f"metadata that is a JSON {type(value).__name__}, not an object")
    return value


def _session_time(session_id: str, column: str, text: object) -> datetime:
    try:
        return _aware(parse_timestamp(text))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise _corrupt(session_id, f"a {column} that is not a timestamp ({text!r})") from exc


def _user_time(user_id: str, text: object) -> datetime:
    try:
        return _aware(parse_timestamp(text))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise CorruptDataError(
            f"user {user_id!r} (its agent_users row) has a created_at that is not a "
            f"timestamp ({text!r}); repair or delete that row with any SQLite tool"
        ) from exc


def _aware(value: datetime) -> datetime:
    # sessions_dal writes UTC with an offset; a bare time was edited in by hand.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _corrupt(session_id: str, what: str) -> CorruptSessionError:
    return CorruptSessionError(
        f"session {session_id!r} (its agent_user_sessions row) has {what}; repair or "
        "delete that row with any SQLite tool"
    )
