"""Session: the items of one conversation, in the order they were added."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from json import loads
from typing import Any

from ._validate import check_limit, encode_items
from .connection import Connection, Database, write_call
from .errors import CorruptItemError, SessionNotFoundError

__all__ = ["Session"]

# Items live in openai-agents' table, ordered by its AUTOINCREMENT id, so
# SQLiteSession and sessions_dal see one history in one order.
#
# Every statement of a Session is guarded by who owns the session: a handle
# of alice's never reads or changes items after the session stopped being
# hers (deleted, then re-created by bob under the same id), and a handle of an
# unowned session stops working once a user claims it. The guard is the key
# the statement looks items up by: the session id if it is still the handle's,
# else NULL, which matches nothing. One lookup of the unique session_id index
# per statement, not a test per item (measured: an EXISTS term cost ~150
# instructions per row counted).
_OWNED = "(SELECT session_id FROM agent_user_sessions WHERE session_id = ? AND user_id = ?)"
_UNOWNED = "(SELECT ? WHERE NOT EXISTS (SELECT 1 FROM agent_user_sessions WHERE session_id = ?))"


def _statements(key: str) -> dict[str, str]:
    return {
        "all": f"SELECT id, message_data FROM agent_messages WHERE session_id = {key} ORDER BY id",
        "latest": (
            f"SELECT id, message_data FROM agent_messages WHERE session_id = {key} "
            "ORDER BY id DESC LIMIT ?"
        ),
        "pop": (
            "DELETE FROM agent_messages WHERE id = (SELECT id FROM agent_messages "
            f"WHERE session_id = {key} ORDER BY id DESC LIMIT 1) RETURNING id, message_data"
        ),
        "clear": f"DELETE FROM agent_messages WHERE session_id = {key}",
        "count": f"SELECT count(*) FROM agent_messages WHERE session_id = {key}",
        "mine": f"SELECT {key} IS NOT NULL",
    }


_GUARDED = {True: _statements(_OWNED), False: _statements(_UNOWNED)}
_INSERT_ITEM = "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)"
# SQLiteSession.clear_session() deletes this row, so re-create it when missing
# (agent_messages has a foreign key to it); like SQLiteSession, bump updated_at.
_UPSERT_AGENT_SESSION = (
    "INSERT INTO agent_sessions (session_id) VALUES (?) "
    "ON CONFLICT (session_id) DO UPDATE SET updated_at = CURRENT_TIMESTAMP"
)
_TOUCH = "UPDATE agent_user_sessions SET updated_at = ? WHERE session_id = ? AND user_id = ?"


def utc_now() -> str:
    """The current time as stored: ISO 8601, UTC, microseconds, fixed width."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> datetime:
    """Read a stored timestamp back as a timezone-aware UTC ``datetime``."""
    return datetime.fromisoformat(text)


_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_agents_timestamp(text: str | None) -> datetime:
    """Read an openai-agents ``CURRENT_TIMESTAMP`` ('YYYY-MM-DD HH:MM:SS', UTC).

    A missing or unreadable value (the column is nullable) reads as the epoch,
    so such a session sorts as the oldest rather than failing a listing.
    """
    try:
        parsed = datetime.fromisoformat(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _UNKNOWN_TIME
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


class Session:
    """One conversation owned by one user: its identity, metadata and items.

    Obtain sessions from :class:`~sessions_dal.SessionRepository`; do not
    construct them. A session keeps using its repository's connection, so it
    works on its own (pass it around, store it) until the repository closes.

    ``session_id``, ``user_id`` and ``created_at`` never change. ``metadata``
    and ``updated_at`` are a snapshot taken when the object was loaded and kept
    current by this object's own writes; items are always read live.

    A session object stays bound to its owner: once the session is no longer
    ``user_id``'s (deleted, even if another user then creates one with the
    same id), reads see no items and writes raise
    :class:`~sessions_dal.errors.SessionNotFoundError`. An unowned session's
    object (``user_id`` is ``None``) works the same way until a user claims it.

    >>> from sessions_dal import SessionRepository
    >>> with SessionRepository(":memory:") as repo:
    ...     s = repo.create_session("alice")
    ...     s.add_items([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    ...     s.get_items(limit=1)
    [{'role': 'assistant', 'content': 'yo'}]
    """

    __slots__ = ("_db", "_guard", "_sql", "created_at", "metadata", "session_id", "updated_at",
                 "user_id")

    def __init__(
        self,
        db: Database,
        session_id: str,
        user_id: str | None,
        metadata: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
    ) -> None:
        self._db = db
        self.session_id = session_id
        """The session's id: a uuid4 string unless one was given at creation."""
        self.user_id = user_id
        """The id of the user who owns the session; ``None`` for a session that
        openai-agents wrote and no user has claimed yet."""
        self.metadata = metadata
        """The session's metadata dict (for example a title), as last loaded or set."""
        self.created_at = created_at
        """When the session was created (timezone-aware, UTC)."""
        self.updated_at = updated_at
        """When items were last added, popped or cleared through sessions_dal (UTC)."""
        self._sql = _GUARDED[user_id is not None]
        # The parameters of the guard (see _OWNED and _UNOWNED).
        self._guard: tuple[str, ...] = (
            (session_id, session_id) if user_id is None else (session_id, user_id)
        )

    def get_items(self, limit: int | None = None) -> list[Any]:
        """Return the latest ``limit`` items, oldest first (all items if ``None``).

        ``limit=0`` returns ``[]``. A stored row that is not valid JSON raises
        :class:`~sessions_dal.errors.CorruptItemError` naming the row; rows are
        never skipped silently. A session that is no longer this handle's
        (deleted, or now another user's) has no items: ``[]``.
        """
        count = check_limit(limit)
        if count is None:
            rows = self._db.fetchall(self._sql["all"], self._guard)
        else:
            rows = self._db.fetchall(self._sql["latest"], (*self._guard, count))
            rows.reverse()
        try:
            return [loads(text) for _, text in rows]
        except (ValueError, TypeError, RecursionError):
            return [self._decode(row_id, text) for row_id, text in rows]  # names the bad row

    @write_call
    def add_items(self, items: Iterable[Any]) -> None:
        """Append ``items`` (JSON values) in order, in one transaction.

        Every item is checked before anything is written: one bad item raises
        ``TypeError``/``ValueError`` naming its index, and nothing is stored.
        An empty list does nothing. Raises
        :class:`~sessions_dal.errors.SessionNotFoundError` if the session is no
        longer this handle's: an owned session deleted (or now another
        user's), an unowned one claimed by a user. An unowned session has no
        owner to lose: as with openai-agents' ``SQLiteSession``, writing to its
        id creates it again if it was deleted.
        """
        rows = encode_items(self.session_id, items)
        if not rows:
            return
        now = utc_now()
        self._db.write(self._add, rows, now)
        self.updated_at = parse_timestamp(now)

    def _add(self, conn: Connection, rows: list[tuple[str, str]], now: str) -> None:
        if self.user_id is None:
            self._require_mine(conn)
        else:
            self._touch(conn, now)
        conn.execute(_UPSERT_AGENT_SESSION, (self.session_id,))
        conn.executemany(_INSERT_ITEM, rows)

    @write_call
    def pop_item(self) -> Any | None:
        """Remove and return the latest item, or ``None`` if there is none.

        If that item is not valid JSON, :class:`CorruptItemError` is raised and
        the item stays stored. Raises
        :class:`~sessions_dal.errors.SessionNotFoundError` if the session is no
        longer this handle's.
        """
        now = utc_now()
        popped, item = self._db.write(self._pop, now)
        if popped:
            self.updated_at = parse_timestamp(now)
        return item

    def _pop(self, conn: Connection, now: str) -> tuple[bool, Any]:
        rows = conn.execute(self._sql["pop"], self._guard).fetchall()
        if not rows:
            self._require_mine(conn)
            return False, None
        item = self._decode(*rows[0])  # a corrupt row raises, and stays
        if self.user_id is not None:
            self._touch(conn, now)
        return True, item

    @write_call
    def clear_session(self) -> None:
        """Remove every item; the session itself, its owner and metadata remain.

        Raises :class:`~sessions_dal.errors.SessionNotFoundError` if the
        session is no longer this handle's.
        """
        now = utc_now()
        if self._db.write(self._clear, now):
            self.updated_at = parse_timestamp(now)

    def _clear(self, conn: Connection, now: str) -> bool:
        if conn.execute(self._sql["clear"], self._guard).rowcount == 0:
            self._require_mine(conn)
            return False
        if self.user_id is not None:
            self._touch(conn, now)
        return True

    def count_items(self) -> int:
        """How many items the session holds, without loading them (0 once it is not ours)."""
        count: int = self._db.fetchone(self._sql["count"], self._guard)[0]
        return count

    def to_dict(self) -> dict[str, Any]:
        """The session's fields as a plain dict (for display, JSON or pandas); no query."""
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "metadata": self.metadata,
        }

    def _touch(self, conn: Connection, now: str) -> None:
        if conn.execute(_TOUCH, (now, *self._guard)).rowcount == 0:
            raise self._gone()

    def _require_mine(self, conn: Connection) -> None:
        if not conn.execute(self._sql["mine"], self._guard).fetchone()[0]:
            raise self._gone()

    def _gone(self) -> SessionNotFoundError:
        if self.user_id is None:
            return SessionNotFoundError(
                f"session {self.session_id!r} has been claimed by a user since this unowned "
                "handle was loaded; open it through its owner with get_session()"
            )
        return SessionNotFoundError(
            f"user {self.user_id!r} no longer has session {self.session_id!r} (it was "
            "deleted); create a new session with SessionRepository.create_session()"
        )

    def _decode(self, row_id: int, text: str) -> Any:
        try:
            return loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise CorruptItemError(
                f"item {row_id} of session {self.session_id!r} (agent_messages.id = "
                f"{row_id}) is not valid JSON ({exc}); repair or delete that row"
            ) from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        return self._db is other._db and self.session_id == other.session_id

    def __hash__(self) -> int:
        return hash(self.session_id)

    def __repr__(self) -> str:
        return (
            f"Session(session_id={self.session_id!r}, user_id={self.user_id!r}, "
            f"created_at='{self.created_at.isoformat()}')"
        )
