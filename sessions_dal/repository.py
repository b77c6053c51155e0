"""SessionRepository: users and their sessions, whatever the backend.

This is the public layer: it checks arguments, makes ids, reads the clock,
encodes and decodes JSON and chooses the error a caller sees. The backend's
store (see ``sessions_dal._store``) runs each call as one transaction.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import IO, Any, TypeVar

from . import _time
from ._interrupts import COMMITTED_NOTE, CommitsSeen, add_note, write_call
from ._search import bracketed, item_texts, parse_query, snippet_parts
from ._store import (
    BacksUp,
    Grants,
    IdTaken,
    NotFound,
    NotOwned,
    OwnedByOther,
    SessionRow,
    Store,
    Vacuums,
)
from ._validate import (
    check_id,
    check_int,
    check_limit,
    check_new_id,
    check_order,
    check_role,
    check_table_name,
    decode_metadata,
    encode_metadata,
)
from ._view import hits_html, info_html, prune_html
from .backends import Common, is_url, open_store
from .backends._migrations import PROGRESS
from .errors import (
    ReadOnlyDatabaseError,
    Remedy,
    SessionExistsError,
    SessionNotFoundError,
    SessionOwnedError,
)
from .session import Session, SessionList, Size
from .transfer import Progress, TransferCounts, read_import, write_export

__all__ = ["DatabaseInfo", "DeletedUser", "Largest", "PruneReport", "SearchHit",
           "SearchResults", "SessionRepository", "SessionUsage", "UserSummary", "UserUsage"]

_T = TypeVar("_T")

DEFAULT_SESSIONS_TABLE = "agent_sessions"
DEFAULT_MESSAGES_TABLE = "agent_messages"


@dataclass(frozen=True)
class UserSummary:
    """One user, as listed by :meth:`SessionRepository.get_users`."""

    user_id: str
    created_at: datetime
    """When the user's first session was created (UTC)."""
    sessions: int
    """How many sessions the user owns."""


@dataclass(frozen=True)
class UserUsage:
    """A user among :meth:`SessionRepository.largest`'s."""

    user_id: str
    sessions: int
    size: Size


@dataclass(frozen=True)
class SessionUsage:
    """A session among :meth:`SessionRepository.largest`'s."""

    session_id: str
    user_id: str
    size: Size


@dataclass(frozen=True)
class Largest:
    """What :meth:`SessionRepository.largest` found: users, then sessions, largest first."""

    users: list[UserUsage]
    sessions: list[SessionUsage]


@dataclass(frozen=True)
class DatabaseInfo:
    """What :meth:`SessionRepository.info` reports about the database."""

    path: str
    """The file, or the URL without its password."""
    backend: str
    """``"sqlite"`` or ``"postgresql"``."""
    schema_version: int
    """0 for a database sessions_dal has not set up yet (openai-agents', say)."""
    migration_pending: bool
    """Whether opening read-write (or ``sessions-dal migrate``) would upgrade it."""
    read_only: bool
    users: int
    sessions: int
    """Sessions that have an owner."""
    unowned_sessions: int
    """Sessions openai-agents wrote that no user has claimed."""
    items: int
    """Every stored item, including those of sessions openai-agents wrote."""
    history_items: int
    """Items compactions moved out of the sessions' views, kept as history."""
    details: dict[str, str]
    """What only this backend has, by name: SQLite's ``sqlite_version`` and
    ``journal_mode``; PostgreSQL's ``server_version``. For example
    ``repo.info().details.get("journal_mode")``."""

    def __hash__(self) -> int:
        return hash((*astuple(self)[:-1], *sorted(self.details.items())))

    @property
    def server_version(self) -> str:
        """The PostgreSQL server's version, or the SQLite library's (as in 0.2): prefer
        ``details``."""
        return self.details.get("server_version") or self.details.get("sqlite_version", "")

    @property
    def sqlite_version(self) -> str:
        """``details["sqlite_version"]``, ``""`` on PostgreSQL (as in 0.2)."""
        return self.details.get("sqlite_version", "")

    @property
    def journal_mode(self) -> str:
        """``details["journal_mode"]``, ``""`` on PostgreSQL (as in 0.2)."""
        return self.details.get("journal_mode", "")

    def _repr_html_(self) -> str:
        return info_html(self)


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


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`SessionRepository.prune` deleted (or, with ``dry_run``, would delete)."""

    sessions: int
    items: int
    dry_run: bool = False

    def _repr_html_(self) -> str:
        return prune_html(self)


@dataclass(frozen=True)
class SearchHit:
    """One search result: an item (or a session's title) that has every term.

    ``item`` is the decoded item, or ``None`` when the session's title matched.
    ``snippet`` is a short piece of its text with the matched words in
    ``[brackets]``; ``parts`` is the same piece as ``(text, matched)`` pairs,
    for an app that marks matches its own way (the text may hold brackets
    too). ``layer`` says where the item is: ``None`` in the model's view
    (:meth:`Session.get_items`), else in the compacted history
    (:meth:`Session.iter_history`), moved there by the session's ``layer``-th
    compaction; :attr:`compacted` says the same. A notebook shows a hit with
    its match marked.
    """

    session: Session
    item: Any
    snippet: str
    parts: tuple[tuple[str, bool], ...] = field(default=(), compare=False)
    layer: int | None = None

    @property
    def compacted(self) -> bool:
        """Whether the item is one a compaction took out of the model's view."""
        return self.layer is not None

    def __repr__(self) -> str:
        where = "" if self.layer is None else f" (compacted history, layer {self.layer})"
        return f"<SearchHit {self.session.session_id!r} {self.snippet!r}{where}>"

    def _repr_html_(self) -> str:
        return hits_html([self])


class SearchResults(list[SearchHit]):
    """The list :meth:`~sessions_dal.SessionRepository.search` returns: a plain
    ``list`` of :class:`SearchHit`, which a notebook shows as a table of
    where each matched, with the match marked."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return hits_html(self)


PRUNE_BATCH = 500
"""Sessions deleted per transaction by :meth:`SessionRepository.prune`: the
write lock is held for one batch at a time, so other writers go on meanwhile."""


class SessionRepository:
    """Users, their sessions and the sessions' items, in an SQLite file or a PostgreSQL database.

    Opening creates the file if needed and applies any pending migration from
    ``schema.sql``; a database from a newer sessions_dal raises
    :class:`~sessions_dal.errors.SchemaVersionError` and is left untouched.

    ``path`` is a file path, ``":memory:"`` (one private database for the
    repository's lifetime), or a ``postgresql://`` URL (needs
    ``pip install 'sessions-dal[postgres]'``; the tables go in the first
    schema of the connection's ``search_path``). Both backends behave the same.
    The URL's scheme chooses the backend (see :mod:`sessions_dal.backends`,
    where backends register); a store already opened (a backend's
    ``open_store``, yours) may be passed instead, alone.

    ``busy_timeout`` is how many seconds a call waits for another
    connection's lock before raising
    :class:`~sessions_dal.errors.DatabaseLockedError` (PostgreSQL: the
    ``lock_timeout``, and the wait for a free pooled connection).
    ``synchronous`` is SQLite's durability level: ``"NORMAL"`` (the default in
    WAL mode: safe against application crashes; a power loss may drop the last
    commits) or ``"FULL"`` (also survives power loss, slower); ``"OFF"`` and
    ``"EXTRA"`` are accepted too. ``pool_size`` (PostgreSQL only, default 4)
    is how many connections the repository's threads share. ``options``
    passes a backend's own options by name (a backend registered by you).
    ``sessions_table`` and ``messages_table`` name openai-agents' two tables
    when its session class was given other names (letters, digits and
    underscores only); a database holds one such pair. ``read_only=True``
    never writes to the database (nor beside an SQLite file), and refuses
    every write with :class:`~sessions_dal.errors.ReadOnlyDatabaseError`.

    A database openai-agents wrote (``SQLiteSession``'s file,
    ``SQLAlchemySession``'s PostgreSQL tables) is adopted in place: its
    sessions and items are kept as they are, and become *unowned* sessions
    (see :meth:`get_unowned_sessions` and :meth:`claim_session`); both
    libraries keep working on it.

    One repository is safe to share between threads (SQLite: one connection
    and a lock; PostgreSQL: a pool). Other processes may open the same
    database at the same time; docs/concurrency.md says what each call
    guarantees when they do.

    >>> with SessionRepository(":memory:") as repo:
    ...     s = repo.create_session("alice", metadata={"title": "Trip"})
    ...     [x.metadata for x in repo.get_sessions("alice")]
    [{'title': 'Trip'}]
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Store,
        *,
        busy_timeout: float = 5.0,
        synchronous: str | None = None,
        sessions_table: str = DEFAULT_SESSIONS_TABLE,
        messages_table: str = DEFAULT_MESSAGES_TABLE,
        read_only: bool = False,
        pool_size: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict, not {type(options).__name__}")
        keywords = {"synchronous": synchronous, "pool_size": pool_size}
        for name in set(options or ()) & {k for k, v in keywords.items() if v is not None}:
            raise ValueError(f"{name} is given twice, as a keyword and in options: give it once")
        options = {**keywords, **(options or {})}
        if not isinstance(path, (str, os.PathLike)) and isinstance(path, Store):
            given = {name for name, value in options.items() if value is not None}
            if given or busy_timeout != 5.0 or read_only or (sessions_table, messages_table) != (
                    DEFAULT_SESSIONS_TABLE, DEFAULT_MESSAGES_TABLE):
                raise ValueError("a ready store was opened with its own options: pass it "
                                 "alone, SessionRepository(store)")
            if path.closed:
                raise ValueError("the store passed is closed; open a new one")
            self._store: Store = path
            return
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(f"path must be a str or os.PathLike (or a store, a backend's "
                            f"open_store()), not {type(path).__name__}")
        if not path:
            raise ValueError("path must not be empty; use ':memory:' for an in-memory database")
        if "\x00" in path:
            raise ValueError("path must not contain NUL characters")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be a bool, not {type(read_only).__name__}")
        sessions = check_table_name("sessions_table", sessions_table)
        messages = check_table_name("messages_table", messages_table)
        if sessions.lower() == messages.lower():
            raise ValueError("sessions_table and messages_table must be different tables")
        if not is_url(path) and is_connection_string(path):
            # Never a file name to create (or to quote in a message): the
            # password is in it.
            raise ValueError(
                "path looks like a PostgreSQL connection string or a mistyped URL, not an "
                "SQLite file: pass postgresql://user:password@host:port/database (its "
                "password percent-encoded); it is not shown here, as it may hold a password"
            )
        self._store = open_store(path, Common(busy_timeout, sessions, messages, read_only),
                                 options)

    @property
    def path(self) -> str:
        """The database the repository was opened with: its path."""
        return self._store.description

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._store.closed

    @property
    def read_only(self) -> bool:
        """True when opened with ``read_only=True``: nothing is ever written then."""
        return self._store.read_only

    def close(self) -> None:
        """Close the connection. Idempotent; later calls raise ``RepositoryClosedError``."""
        self._store.close()

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

    # -- a user's sessions ------------------------------------------------------------

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
        check_new_id("user_id", user_id)
        if session_id is None:
            session_id = str(uuid.uuid4())
        else:
            # Any text, as openai-agents' sessions take: an app's own ids stay its own.
            check_id("session_id", session_id)
        meta_text = "{}" if metadata is None else encode_metadata(metadata)
        now = _time.now()
        try:
            self._store.create_session(user_id, session_id, meta_text, now)
        except IdTaken:
            raise SessionExistsError(
                f"session_id {session_id!r} already exists", Remedy.NEW_OR_EXISTING
            ) from None
        meta = {} if metadata is None else json.loads(meta_text)
        return Session(self._store, session_id, user_id, meta, now, now)

    def get_session(self, user_id: str, session_id: str) -> Session | None:
        """Return the session, or ``None`` if it does not exist or is not ``user_id``'s."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        row = self._store.get_session(user_id, session_id)
        return None if row is None else self._session(row)

    def get_sessions(
        self, user_id: str, *, limit: int | None = None, offset: int = 0,
        order: str = "created",
    ) -> SessionList:
        """Return a page of the user's sessions, newest first.

        ``limit=None`` returns all of them from ``offset``. Ties in creation
        time are broken by creation order (later first), so walking the pages
        with ``offset`` neither skips nor repeats a session while none is
        created. An unknown user has no sessions: ``[]``.

        ``order="updated"`` lists the last active first, as a chat sidebar
        does: by ``updated_at``, which moves whenever items are added, popped
        or cleared (also by openai-agents on the same database, see
        ``docs/concurrency.md``), ties as for ``"created"``. Either order is
        an index range scan: a page costs the same at any number of sessions.

        >>> with SessionRepository(":memory:") as repo:
        ...     old, new = repo.create_session("alice"), repo.create_session("alice")
        ...     old.add_items([{"role": "user", "content": "back again"}])
        ...     repo.get_sessions("alice", order="updated")[0] == old
        True
        """
        check_id("user_id", user_id)
        count, start = check_limit(limit), check_int("offset", offset)
        rows = self._store.list_sessions(user_id, check_order(order), count, start)
        return SessionList([self._session(row) for row in rows])

    def iter_sessions(self, user_id: str, *, page_size: int = 100,
                      order: str = "created") -> Iterator[Session]:
        """Yield all the user's sessions, in ``order`` (as :meth:`get_sessions`),
        ``page_size`` at a time.

        Pages are fetched by keyset (after the last one seen), not by offset,
        so each page costs the same however deep the walk, memory stays at one
        page, and sessions created meanwhile never make it repeat one. With
        ``order="updated"``, a session written during the walk moves to the
        front: it is not seen again (or, if not yet seen, is skipped); every
        other session is yielded exactly once.
        """
        check_id("user_id", user_id)
        size = check_int("page_size", page_size, minimum=1)
        return self._iter_pages(user_id, check_order(order), size)

    def _iter_pages(self, user_id: str, order: str, page_size: int) -> Iterator[Session]:
        rows = self._store.sessions_after(user_id, order, None, page_size)
        while rows:
            for row in rows:
                yield self._session(row)
            if len(rows) < page_size:
                return
            rows = self._store.sessions_after(user_id, order, rows[-1].position, page_size)

    def count_sessions(self, user_id: str) -> int:
        """How many sessions ``user_id`` owns (0 for an unknown user)."""
        check_id("user_id", user_id)
        return self._store.count_sessions(user_id)

    def user_size(self, user_id: str) -> Size:
        """How many items and bytes all of ``user_id``'s sessions hold, the model's view and
        the compacted history apart (zeros for an unknown user). One statement summing
        the stored sizes of the user's items."""
        check_id("user_id", user_id)
        return Size(*self._store.user_size(user_id))

    def largest(self, *, limit: int = 10) -> Largest:
        """The ``limit`` users and sessions that take the most room (view and history
        bytes together), largest first: what to prune or compact first.

        Reads every item's size (the whole database's): an administrator's
        question, not a page's. Sessions no user owns are not counted.
        """
        limit = check_int("limit", limit, minimum=1)
        users, sessions = self._store.largest(limit)
        return Largest(
            [UserUsage(user, int(count), Size(*(int(n) for n in sizes)))
             for user, count, *sizes in users],
            [SessionUsage(session_id, user, Size(*(int(n) for n in sizes)))
             for session_id, user, *sizes in sessions])

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
        (like ``dict.update``), atomically: two merges of other keys at the
        same time both stay. ``replace=True`` stores ``metadata`` as the whole
        dict. Raises :class:`~sessions_dal.errors.SessionNotFoundError` if the
        session does not exist or is not ``user_id``'s.

        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice", metadata={"title": "Trip", "pinned": True})
        ...     repo.update_metadata("alice", s.session_id, {"title": "Trip to Rome"}).metadata
        {'title': 'Trip to Rome', 'pinned': True}
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        if not isinstance(replace, bool):
            raise TypeError(f"replace must be a bool, not {type(replace).__name__}")
        text = encode_metadata(metadata)

        def change(old: str) -> str:
            if replace:
                return text
            return encode_metadata({**decode_metadata(session_id, old), **metadata})

        row = self._store.update_metadata(user_id, session_id, change)
        if row is None:
            raise _not_found(user_id, session_id)
        return self._session(row)

    @write_call
    def fork_session(
        self, user_id: str, session_id: str, *, upto: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Branch a conversation: a new session of the same user with a copy of
        the first ``upto`` items of ``session_id`` (all if ``None``).

        For "edit an earlier message and continue from there": fork up to the
        message before it, then add the edited one to the new session. The
        original is left untouched. Items are copied in order, in one
        transaction, with ``upto`` capped at the session's length. The new
        session gets a uuid4 id and the metadata given (not the original's),
        plus ``"forked_from": {"session_id": ..., "items": <how many copied>}``.
        Raises :class:`~sessions_dal.errors.SessionNotFoundError` if the
        session is not ``user_id``'s.

        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice", session_id="trip")
        ...     s.add_items(["Rome?", "Yes, Rome.", "By plane?"])
        ...     branch = repo.fork_session("alice", "trip", upto=2, metadata={"title": "Trip"})
        ...     branch.add_items(["By train?"])
        ...     branch.get_items(), branch.metadata["forked_from"]
        (['Rome?', 'Yes, Rome.', 'By train?'], {'session_id': 'trip', 'items': 2})
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        count = None if upto is None else check_int("upto", upto)
        given = {} if metadata is None else json.loads(encode_metadata(metadata))
        new_id = str(uuid.uuid4())
        now = _time.now()
        made: dict[str, Any] = {}

        def describe(copied: int) -> str:
            made.clear()
            made.update(given, forked_from={"session_id": session_id, "items": copied})
            return encode_metadata(made)

        try:
            self._store.fork(user_id, session_id, new_id, count, describe, now)
        except NotOwned:
            raise _not_found(user_id, session_id) from None
        return Session(self._store, new_id, user_id, dict(made), now, now)

    @write_call
    def delete_session(self, user_id: str, session_id: str) -> bool:
        """Delete the session and all its items; ``True`` if it was deleted.

        Returns ``False``, changing nothing, when the session does not exist or
        belongs to another user.
        """
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        return self._store.delete_session(user_id, session_id)

    def prune(
        self, *, older_than: timedelta | datetime | None = None, keep_last: int | None = None,
        user_id: str | None = None, unowned: bool = False, dry_run: bool = False,
        progress: Callable[[int, int], object] | None = None,
    ) -> PruneReport:
        """Delete old sessions with their items, to keep storage bounded.

        Deletes every session (of ``user_id``, or of every user) that matches
        either rule given: its last activity (``updated_at``) is before
        ``older_than`` (a ``timedelta`` back from now, or an aware
        ``datetime``), or it is not among the ``keep_last`` most recently
        active sessions of its user. Users themselves stay, and so do sessions
        no user owns. To prune those instead, pass ``unowned=True`` with
        ``older_than`` only: it deletes the unowned sessions whose
        openai-agents ``updated_at`` (which it sets when it adds items) is
        before it. ``dry_run=True`` deletes nothing and reports what would be
        deleted now.

        Sessions are found first, then deleted 500 to a transaction
        (``sessions_dal.repository.PRUNE_BATCH``), each only if it was not
        written (or claimed) since it was found: a conversation that comes
        back to life meanwhile stays.
        ``progress(done, total)`` is called after each batch. If the call is
        interrupted, the batches before stay deleted (the exception's note says
        how many, and whether the batch under way had committed too); run it
        again to finish. An interrupt after the last batch committed carries
        ``COMMITTED_NOTE``, as any write call's does.

        >>> from datetime import timedelta
        >>> with SessionRepository(":memory:") as repo:
        ...     for n in range(5):
        ...         repo.create_session("alice").add_items([n])
        ...     print(repo.prune(keep_last=2, dry_run=True))
        ...     print(repo.prune(keep_last=2))
        PruneReport(sessions=3, items=3, dry_run=True)
        PruneReport(sessions=3, items=3, dry_run=False)
        """
        cutoff = _cutoff(older_than)
        limit = None if keep_last is None else check_int("keep_last", keep_last)
        if user_id is not None:
            check_id("user_id", user_id)
        for name, flag in (("unowned", unowned), ("dry_run", dry_run)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
        if cutoff is None and limit is None:
            raise ValueError("prune needs older_than, keep_last or both: which sessions to delete")
        if unowned and (user_id is not None or cutoff is None or limit is not None):
            raise ValueError(
                "unowned=True prunes the sessions no user owns, by age: give older_than "
                "only (no keep_last, no user_id)"
            )
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, not {type(progress).__name__}")
        found = self._store.prune_candidates(user_id, cutoff, limit, unowned)
        if dry_run:
            items = sum(self._store.count_items_of([row[0] for row in found[n:n + PRUNE_BATCH]])
                        for n in range(0, len(found), PRUNE_BATCH))
            return PruneReport(len(found), items, dry_run=True)
        sessions = items = 0
        finished = finishing = False
        batch = CommitsSeen()  # .committed: the batch under way committed (uncounted)
        try:
            with batch as under_way:
                for start in range(0, len(found), PRUNE_BATCH):
                    finishing = start + PRUNE_BATCH >= len(found)
                    under_way.committed = False
                    deleted, gone = self._store.prune(found[start:start + PRUNE_BATCH],
                                                      finishing)
                    # One statement: no interrupt lands between the counts and the flags.
                    sessions, items, under_way.committed, finished = (
                        sessions + deleted, items + gone, False, finishing)
                    if progress is not None:
                        progress(min(start + PRUNE_BATCH, len(found)), len(found))
        except BaseException as exc:
            _note_prune(exc, sessions, items, uncounted=batch.token.committed,
                        complete=finished or (batch.token.committed and finishing))
            raise
        return PruneReport(sessions, items)

    @write_call
    def delete_user(self, user_id: str) -> DeletedUser:
        """Erase the user, all their sessions and all their items, in one transaction.

        >>> with SessionRepository(":memory:") as repo:
        ...     repo.create_session("bob").add_items([1, 2, 3])
        ...     repo.delete_user("bob")
        DeletedUser(user_id='bob', found=True, sessions=1, items=3)
        """
        check_id("user_id", user_id)
        found, sessions, items = self._store.delete_user(user_id)
        return DeletedUser(user_id, found, sessions, items)

    def search(self, user_id: str, query: str, *, limit: int | None = 20,
               session_id: str | None = None,
               progress: Callable[[str, float], object] | None = None) -> SearchResults:
        """Return the user's items (and session titles) that contain every word of ``query``.

        Best match first (ties: newest first); only ``user_id``'s sessions, or
        only ``session_id`` of theirs. The items compaction moved into a
        session's history are found too, their hits saying so
        (:attr:`SearchHit.layer`); an earlier summary that a later compaction
        replaced is not (it is in no transcript). A query is words, ``"quoted phrases"``
        and ``prefix*`` words; case and Latin accents are ignored, every other
        character separates words (see the README's "Search" section). Searched
        are the string values inside items and the session's ``title``, not
        keys, ids or fixed values such as ``"message"``. A query without words,
        or with a word of more than 500 letters and digits (find a longer one
        by its start, ``prefix*``), is a ``ValueError``; a database that cannot
        search (SQLite without FTS5) raises
        :class:`~sessions_dal.errors.SearchUnavailableError`.

        Every item whose ``add_items`` returned before the search began is
        searched, whoever wrote it. The items written since the last search
        are indexed first (:meth:`update_search_index`, which calls
        ``progress(step, fraction)`` after each batch); a
        ``read_only`` repository, which cannot write the index, searches them
        without it (SQLite: in a temporary index of its own connection, kept
        for its next searches; PostgreSQL: computing their words as it searches).

        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice", metadata={"title": "Holidays"})
        ...     s.add_items([{"role": "user", "content": "Trains from Rome to Naples?"}])
        ...     [hit.snippet for hit in repo.search("alice", "rome train*")]
        ['[Trains] from [Rome] to Naples?']
        """
        check_id("user_id", user_id)
        terms = parse_query(query)
        count = check_limit(limit)
        if session_id is not None:
            check_id("session_id", session_id)
        hits = SearchResults()
        sessions: dict[str, Session] = {}
        rows = _reporting(progress, self._store.search, user_id, terms, session_id, count)
        for row in rows:
            session = sessions.get(row.session.session_id)
            if session is None:
                session = sessions[row.session.session_id] = self._session(row.session)
            if row.item is None:
                title = session.metadata.get("title")
                texts = list(item_texts(title)) if isinstance(title, str) else []
                item = None
            else:
                item = session._decode(row.item_id or 0, row.item, row.layer)
                texts = list(item_texts(item))
            parts = snippet_parts(texts, terms)
            hits.append(SearchHit(session, item, bracketed(parts), parts, row.layer))
        return hits

    def find_session(self, session_id: str) -> Session | None:
        """Return the session with this id whoever owns it (or nobody), or ``None``.

        This bypasses the ownership check of :meth:`get_session`: it is for
        administration tools (the command line uses it), not for serving users.
        """
        check_id("session_id", session_id)
        row = self._store.find_session(session_id)
        return None if row is None else self._session(row)

    def get_users(self, *, limit: int | None = None, offset: int = 0) -> list[UserSummary]:
        """Return a page of users, ordered by ``user_id``, with their session counts."""
        count, start = check_limit(limit), check_int("offset", offset)
        return [UserSummary(*row) for row in self._store.list_users(count, start)]

    # -- sessions openai-agents wrote ---------------------------------------------

    def get_unowned_sessions(self, *, limit: int | None = None, offset: int = 0
                             ) -> SessionList:
        """Return sessions that openai-agents' ``SQLiteSession`` wrote and no user owns.

        Newest first. Their ``user_id`` is ``None`` and their ``metadata``
        empty; their items can be read and written like any session's. Give
        them an owner with :meth:`claim_session`.
        """
        count, start = check_limit(limit), check_int("offset", offset)
        return SessionList([self._session(row) for row in self._store.list_unowned(count, start)])

    def get_unowned_session(self, session_id: str) -> Session | None:
        """Return the unowned session ``session_id``, or ``None`` if it is absent or owned."""
        check_id("session_id", session_id)
        row = self._store.get_unowned(session_id)
        return None if row is None else self._session(row)

    @write_call
    def delete_unowned_session(self, session_id: str) -> bool:
        """Delete an unowned session and its items; ``True`` if it was deleted.

        Returns ``False``, changing nothing, when there is no such session or a
        user owns it (delete that with :meth:`delete_session`).
        """
        check_id("session_id", session_id)
        return self._store.delete_unowned(session_id)

    def count_unowned_sessions(self) -> int:
        """How many sessions no user owns."""
        return self._store.count_unowned()

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
        (also when two users claim it at once: one wins) and
        :class:`~sessions_dal.errors.SessionNotFoundError` if it does not
        exist; nothing is written then.
        """
        check_new_id("user_id", user_id)
        check_id("session_id", session_id)
        meta_text = encode_metadata({} if metadata is None else metadata)
        (session,) = self._claim(user_id, [session_id], meta_text)
        return session

    @write_call
    def claim_sessions(self, user_id: str, session_ids: Iterable[str]) -> SessionList:
        """Claim several sessions for ``user_id`` in one transaction: all of them or none."""
        check_new_id("user_id", user_id)
        if isinstance(session_ids, str):
            raise TypeError("session_ids must be a list of str, not a str; wrap one id in a list")
        ids = [check_id(f"session_ids[{n}]", s) for n, s in enumerate(session_ids)]
        return self._claim(user_id, ids, None)

    def _claim(self, user_id: str, ids: list[str], meta_text: str | None) -> SessionList:
        try:
            rows = self._store.claim(user_id, ids, meta_text, _time.now())
        except OwnedByOther as exc:
            raise SessionOwnedError(
                f"session {exc.args[0]!r} belongs to another user; it cannot be claimed "
                f"for {user_id!r}"
            ) from None
        except NotFound as exc:
            raise SessionNotFoundError(
                f"there is no session {exc.args[0]!r} to claim", Remedy.LIST_UNOWNED
            ) from None
        return SessionList([self._session(row) for row in rows])

    # -- the whole database ---------------------------------------------------------

    def info(self) -> DatabaseInfo:
        """Counts and settings of the database, for a quick look at a file."""
        i = self._store.info()
        return DatabaseInfo(self.path, self._store.backend, i.schema_version,
                            i.migration_pending, self.read_only, i.users, i.sessions,
                            i.unowned_sessions, i.items, i.history_items, dict(i.details))

    def pending_migrations(self) -> list[str]:
        """What opening read-write would change in the file's schema, one line per step.

        Always ``[]`` for a read-write repository, which migrated when it
        opened; a ``read_only=True`` one reports what ``sessions-dal migrate``
        would do.
        """
        return self._store.pending_migrations()

    def backup(self, target: str | os.PathLike[str]) -> None:
        """Copy the whole database to a new file ``target``, consistently, while in use.

        Uses SQLite's online backup: other connections keep reading and
        writing meanwhile, and the copy is one point in time. The copy is
        written beside ``target`` and renamed into place, so ``target`` is
        either absent or complete; an existing ``target``, or the database's
        own files, raise ``ValueError`` (choose a new name).
        """
        if not isinstance(target, (str, os.PathLike)):
            raise TypeError(f"target must be a str or os.PathLike, not {type(target).__name__}")
        destination = os.fspath(target)
        if not isinstance(destination, str) or not destination:
            raise TypeError("target must be a non-empty str or os.PathLike")
        if not isinstance(self._store, BacksUp):
            raise NotImplementedError(self._store.lacks["backup"])
        self._store.backup(destination)

    def vacuum(self) -> int:
        """SQLite: give the room that deletes, prunes and compactions left in the file back
        to the file system; return how many bytes the file shrank by.

        Deleted rows' pages stay in the file, reused by later writes, so the
        file never shrinks by itself. ``VACUUM`` rewrites the whole file: it
        takes time and disk space in proportion to the database (up to twice
        its size while it runs), and holds the write lock meanwhile, so other
        writers wait (up to their ``busy_timeout``). Run it after a large prune
        or when the file is much larger than ``largest()`` says it holds. It
        changes no data: an interrupted vacuum leaves the file as it was.
        PostgreSQL raises ``NotImplementedError`` (its autovacuum reuses the
        room; ``VACUUM FULL`` gives it back).
        """
        if not isinstance(self._store, Vacuums):
            raise NotImplementedError(self._store.lacks["vacuum"])
        if self._store.read_only:
            raise ReadOnlyDatabaseError(
                f"the repository for {self._store.description} was opened with "
                "read_only=True; open it without read_only to vacuum it")
        return self._store.vacuum()

    @write_call
    def grant(self, role: str, *, read_only: bool = False, dry_run: bool = False) -> list[str]:
        """PostgreSQL: give ``role`` the rights an app needs here, in one transaction.

        The usual setup: the tables' owner opens the database (or runs
        ``sessions-dal migrate``) and calls this; the app then connects as
        ``role``, which can use every call of the library but not create,
        alter or drop a table. ``read_only=True`` grants only what a
        ``read_only=True`` repository needs (``USAGE`` and ``SELECT``).
        Returns the ``GRANT`` statements, schema and names quoted;
        ``dry_run=True`` only returns them (it works on a read-only
        repository too). The database must be at this sessions_dal's schema
        version. On SQLite, which has no roles, raises ``NotImplementedError``.
        """
        check_role(role)
        if not isinstance(read_only, bool) or not isinstance(dry_run, bool):
            raise TypeError("read_only and dry_run must be bools")
        if not isinstance(self._store, Grants):
            raise NotImplementedError(self._store.lacks["grant"])
        return self._store.grant(role, read_only, dry_run)

    def check(self) -> list[str]:
        """Run the database's integrity and foreign-key checks; return the problems found.

        An empty list means the database is sound. The search index is
        compared with the items and session titles it is derived from: items
        with words but no index row, rows of items that do not exist, items
        indexed under another owner or session, titles that disagree with the
        metadata; each such line says to run :meth:`reindex`. Set-based
        queries, in time about that of reading the items once (an item's words
        are computed only when it has no row: :meth:`reindex` recomputes them all).
        """
        return self._store.check()

    def reindex(self, *, progress: Callable[[str, float], object] | None = None) -> int:
        """Make the search index agree with the items and titles; return how many rows it fixed.

        Every item's and title's index row is computed again and compared with
        the stored one; only rows that differ are written (added, rewritten or
        removed, the removed text erased as :meth:`delete_session` erases), so
        0 means the index was right. It runs in batches of 20,000 item ids (then
        of sessions), each a transaction of its own, so that other writers wait
        for one batch at most: on SQLite each batch is a write transaction (one
        writer at a time); on PostgreSQL each holds the index table's lock,
        which every writer's trigger takes, so a batch sees each concurrent
        write whole, and writes that come after it keep the index right
        themselves. Nothing is lost or indexed twice; an interrupted reindex
        leaves what it fixed, run it again to finish.
        ``progress(step, fraction)`` is called after each batch. Raises
        :class:`~sessions_dal.errors.SearchUnavailableError` where the database
        cannot search (SQLite without FTS5).

        >>> with SessionRepository(":memory:") as repo:
        ...     repo.create_session("alice").add_items(["Rome"])
        ...     repo.reindex()
        0
        """
        return _reporting(progress, self._store.reindex)

    @write_call
    def update_search_index(self, *,
                            progress: Callable[[str, float], object] | None = None) -> int:
        """Index the items written since the last search; return how many got index rows.

        Appends do not index their items: the search index catches up when it
        is searched (:meth:`search` calls this first), in batches of items
        (SQLite 20,000, PostgreSQL 2,000), each a short write transaction,
        whoever wrote the items
        (openai-agents' classes included). A database that is never searched
        never pays for it; the first search after many appends pays for all
        of them, about 30 µs an item on SQLite, 150 µs on PostgreSQL (see the
        README's "Search").
        Call this on demand (after a bulk import, or from a background thread
        or a timer) to keep that cost off a user's search.
        ``progress(step, fraction)`` is called after each batch. Raises
        :class:`~sessions_dal.errors.SearchUnavailableError` where the database
        cannot search (SQLite without FTS5).

        >>> with SessionRepository(":memory:") as repo:
        ...     repo.create_session("alice").add_items(["Rome", "Naples", {"id": "x"}])
        ...     repo.update_search_index()
        2
        """
        if self._store.read_only:
            raise ReadOnlyDatabaseError(
                f"the repository for {self._store.description} was opened with "
                "read_only=True, and indexing writes; open it without read_only (its "
                "searches index what is new in memory meanwhile)"
            )
        return _reporting(progress, self._store.update_search_index)

    def export_to(self, out: IO[str], *, user_id: str | None = None,
                  progress: Progress | None = None) -> TransferCounts:
        """Write every user (or just ``user_id``) with their sessions and items to ``out``.

        JSON Lines (see :mod:`sessions_dal.transfer`). A full export also
        writes the sessions no user owns. Everything comes from one snapshot
        of the database: writes made meanwhile are either all in the export
        or not at all. The snapshot uses a connection of its own, so the
        repository's other calls go on meanwhile (except on ``:memory:``).
        ``progress(counts)`` is called after every 1,000 sessions and items.
        """

        if user_id is not None:
            check_id("user_id", user_id)
        return self._store.export(lambda reader: write_export(
            reader, out, user_id, progress, self._store.messages_table))

    @write_call
    def import_from(self, lines: Iterable[str], *, replace: bool = False,
                    require_end: bool = True, progress: Progress | None = None
                    ) -> TransferCounts:
        """Import what :meth:`export_to` wrote, in one transaction: all of it or nothing.

        A session that already exists raises
        :class:`~sessions_dal.errors.SessionExistsError` and nothing is
        imported, unless ``replace=True``, which deletes it (with its items)
        first. A malformed line raises ``ValueError`` naming its line number,
        and so does a file that stops before its ``end`` record (it was cut
        short) or whose counts disagree with that record; nothing is imported
        then either. Files from sessions_dal 0.1 have no ``end`` record: pass
        ``require_end=False``.
        """

        if not isinstance(replace, bool) or not isinstance(require_end, bool):
            raise TypeError("replace and require_end must be bools")
        try:
            return self._store.import_records(
                lambda writer: read_import(writer, lines, replace, require_end, progress))
        except IdTaken as exc:
            raise SessionExistsError(
                f"{exc.args[1]}: session {exc.args[0]!r} already exists in the database; "
                "nothing was imported", Remedy.IMPORT_REPLACE
            ) from None

    def _session(self, row: SessionRow) -> Session:
        metadata = decode_metadata(row.session_id, row.metadata)
        return Session(self._store, row.session_id, row.user_id, metadata, row.created_at,
                       row.updated_at)


# A URL's scheme (two letters at least: "C://x" is a Windows path).
# libpq's "key=value" connection strings, and postgresql URLs missing a part
# of "://": never SQLite paths (they would become files named after them).
_CONNINFO = re.compile(r"(?:^|\s)(?:host|hostaddr|dbname|user|password|port|service|sslmode)"
                       r"\s*=", re.IGNORECASE)
_MISTYPED_URL = re.compile(r"^postgres(?:ql)?(?::/?|//)(?!/)", re.IGNORECASE)


# user:password@host without a scheme, or //user:password@host.
_USERINFO = re.compile(r"^\s*(?://)?[^/\\\s:@]+:[^/\\\s@]*@")


def is_connection_string(path: str) -> bool:
    """Whether ``path`` is a libpq "key=value" string or a mistyped PostgreSQL URL.

    Such a path is never an SQLite file to create, nor a name to quote: it may
    hold a password.
    """
    stripped = path.strip()
    return bool(_CONNINFO.search(path) or _MISTYPED_URL.match(stripped)
                or _USERINFO.match(path) or (stripped != path and "://" in path)
                or ("://" in path and not is_url(path)
                    and not re.match(r"[A-Za-z]://", path)))  # C://x: a Windows path
def _cutoff(older_than: object) -> datetime | None:
    """The instant before which a session is old, from ``prune``'s ``older_than``."""
    if older_than is None:
        return None
    if isinstance(older_than, timedelta):
        if older_than < timedelta(0):
            raise ValueError(f"older_than must not be negative, got {older_than!r}")
        try:
            return _time.now() - older_than
        except OverflowError:
            raise ValueError(f"older_than reaches before year 1: {older_than!r}") from None
    if isinstance(older_than, datetime):
        if older_than.tzinfo is None or older_than.utcoffset() is None:
            raise ValueError(
                "older_than must be timezone-aware (e.g. datetime.now(timezone.utc) - "
                f"timedelta(days=90)), got naive {older_than!r}"
            )
        try:
            return older_than.astimezone(timezone.utc)
        except OverflowError:  # within a day of year 1 or 9999: the edge means the same
            edge = datetime.min if older_than.year == 1 else datetime.max
            return edge.replace(tzinfo=timezone.utc)
    raise TypeError(
        f"older_than must be a timedelta or an aware datetime, not {type(older_than).__name__}"
    )


def _note_prune(exc: BaseException, sessions: int, items: int, *, uncounted: bool,
                complete: bool) -> None:
    """Tell an interrupted prune's caller what stayed deleted: ``COMMITTED_NOTE`` once
    any batch had committed, and how far it got (``uncounted``: the batch under way
    had committed too, its counts unknown)."""
    if not (sessions or uncounted):
        return  # nothing was deleted
    if COMMITTED_NOTE not in getattr(exc, "__notes__", ()):
        add_note(exc, COMMITTED_NOTE)
    done = f"{sessions} sessions ({items} items){' and one more batch' if uncounted else ''}"
    add_note(exc, f"sessions_dal: prune had finished before this: it deleted {done}"
             if complete else
             f"sessions_dal: prune had deleted {done} before this; run it again to finish")


def _not_found(user_id: str, session_id: str) -> SessionNotFoundError:
    return SessionNotFoundError(f"user {user_id!r} has no session {session_id!r}",
                                Remedy.LIST_SESSIONS)


def _reporting(progress: Callable[[str, float], object] | None, work: Callable[..., _T],
               *args: Any) -> _T:
    """``work(*args)`` with its batches' progress reported to ``progress`` (if given)."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    report = None
    if progress is not None:
        def report(step: str, fraction: float) -> None:
            progress(step, fraction)
    token = PROGRESS.set(report)
    try:
        return work(*args)
    finally:
        PROGRESS.reset(token)
