"""Session: the items of one conversation, in the order they were added."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from json import loads
from typing import Any

from . import _time
from ._interrupts import write_call
from ._search import cut
from ._store import NotOwned, Owner, Store, TooFew
from ._validate import check_int, check_limit, corrupt_item, encode_items
from ._view import session_html, sessions_html
from .errors import SessionNotFoundError

__all__ = ["Session", "SessionList", "Size"]


@dataclass(frozen=True)
class Size:
    """How big a session (or all of a user's) is: the model's view and the compacted
    history apart (see :meth:`Session.compact`). ``bytes``: of the items' stored JSON
    text, what they take in the database before its own overhead and indexes."""

    items: int
    bytes: int
    history_items: int
    """Items a compaction moved out of the view (earlier replacements among them)."""
    history_bytes: int


class Session:
    """One conversation owned by one user: its identity, metadata and items.

    Obtain sessions from :class:`~sessions_dal.SessionRepository`; do not
    construct them. A session keeps using its repository's store, so it
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

    __slots__ = ("_owner", "_store", "created_at", "metadata", "session_id", "updated_at",
                 "user_id")

    def __init__(
        self,
        store: Store,
        session_id: str,
        user_id: str | None,
        metadata: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
    ) -> None:
        self._store = store
        self._owner = Owner(session_id, user_id)
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
        """When items were last added, popped or cleared (UTC), by sessions_dal or,
        on the same database, by openai-agents (see ``docs/concurrency.md``)."""

    def get_items(self, limit: int | None = None, *, offset: int = 0) -> list[Any]:
        """Return the latest ``limit`` items, oldest first (all items if ``None``).

        ``offset`` counts back from the newest, to scroll back through a long
        conversation: ``get_items(20, offset=20)`` is the 20 items before the
        latest 20, oldest first. The cost is that of ``limit + offset`` items,
        whatever the session's length. ``limit=0`` returns ``[]``. A stored row
        that is not valid JSON raises :class:`~sessions_dal.errors.CorruptItemError`
        naming the row; rows are never skipped silently. A session that is no
        longer this handle's (deleted, or now another user's) has no items: ``[]``.

        >>> from sessions_dal import SessionRepository
        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice")
        ...     s.add_items(list(range(1, 8)))
        ...     s.get_items(3), s.get_items(3, offset=3), s.get_items(3, offset=6)
        ([5, 6, 7], [2, 3, 4], [1])
        """
        rows = self._store.get_items(self._owner, check_limit(limit),
                                     check_int("offset", offset))
        try:
            return [loads(text) for _, text in rows]
        except (ValueError, TypeError, RecursionError):
            return [self._decode(row_id, text) for row_id, text in rows]  # names the bad row

    def iter_items(self, *, page_size: int = 100, newest_first: bool = False) -> Iterator[Any]:
        """Yield every item, oldest first (or newest first), ``page_size`` at a time.

        Pages are fetched by keyset (after the last item yielded), so memory
        stays at one page and each page costs the same however deep the walk.
        Items appended during an oldest-first walk are yielded at its end; an
        item popped or cleared before the walk reaches it is not yielded. If
        the session stops being this handle's, the walk ends.
        """
        size = check_int("page_size", page_size, minimum=1)
        if not isinstance(newest_first, bool):
            raise TypeError(f"newest_first must be a bool, not {type(newest_first).__name__}")
        return self._iter_pages(size, newest_first)

    def _iter_pages(self, page_size: int, newest_first: bool) -> Iterator[Any]:
        position: object = None
        while True:
            rows, position = self._store.items_page(self._owner, position, page_size,
                                                    newest_first)
            for row_id, text in rows:
                yield self._decode(row_id, text)
            if len(rows) < page_size:
                return

    @write_call
    def add_items(self, items: Iterable[Any]) -> None:
        """Append ``items`` (JSON values) in order, in one transaction.

        Every item is checked before anything is written: one bad item raises
        ``TypeError``/``ValueError`` naming its index, and nothing is stored.
        An empty list does nothing. Batches added at the same time by other
        threads or processes never interleave. Raises
        :class:`~sessions_dal.errors.SessionNotFoundError` if the session is no
        longer this handle's: an owned session deleted (or now another
        user's), an unowned one claimed by a user. An unowned session has no
        owner to lose: as with openai-agents' ``SQLiteSession``, writing to its
        id creates it again if it was deleted.
        """
        texts = encode_items(items)
        if not texts:
            return
        now = _time.now()
        try:
            self._store.add_items(self._owner, texts, now)
        except NotOwned:
            raise self._gone() from None
        self.updated_at = now

    @write_call
    def pop_item(self) -> Any | None:
        """Remove and return the latest item, or ``None`` if there is none.

        Concurrent calls each get a different item, and none gets ``None``
        while items remain. If that item is not valid JSON,
        :class:`CorruptItemError` is raised and the item stays stored. Raises
        :class:`~sessions_dal.errors.SessionNotFoundError` if the session is no
        longer this handle's.
        """
        now = _time.now()
        try:
            popped, item = self._store.pop_item(self._owner, now, self._decode)
        except NotOwned:
            raise self._gone() from None
        if popped:
            self.updated_at = now
        return item

    @write_call
    def compact(self, replacement: Iterable[Any], *, upto: int | None = None) -> int:
        """Replace the first ``upto`` items the model sees (all, if ``None``) with
        ``replacement`` (typically a summary a model wrote), keeping them as history.

        One transaction: a crash, an interrupt or a concurrent writer leaves
        either the old view or the new one, and an item appended meanwhile is
        neither lost nor compacted. Afterwards :meth:`get_items` (and
        openai-agents' own sessions on the same database) read ``replacement``,
        then the items after the first ``upto``; :meth:`iter_history` still
        reads every item ever added, in order. Compacting again keeps every
        earlier layer. Returns how many items left the view.

        Raises ``ValueError`` if the session holds fewer than ``upto`` items,
        and :class:`~sessions_dal.errors.SessionNotFoundError` if the session
        is no longer this handle's; nothing changes then.

        >>> from sessions_dal import SessionRepository
        >>> with SessionRepository(":memory:") as repo:
        ...     s = repo.create_session("alice")
        ...     s.add_items(["q1", "a1", "q2", "a2"])
        ...     s.compact([{"role": "system", "content": "summary of q1/a1"}], upto=2)
        ...     s.get_items(), list(s.iter_history())
        2
        ([{'role': 'system', 'content': 'summary of q1/a1'}, 'q2', 'a2'], ['q1', 'a1', 'q2', 'a2'])
        """
        texts = encode_items(replacement, name="replacement")
        if upto is not None:
            upto = check_int("upto", upto, minimum=0)
        now = _time.now()
        try:
            _, moved = self._store.compact(self._owner, texts, upto, now)
        except NotOwned:
            raise self._gone() from None
        except TooFew as exc:
            raise ValueError(
                f"upto={upto}, but session {self.session_id!r} holds {exc.args[0]} item"
                f"{'s' if exc.args[0] != 1 else ''}; nothing was compacted (upto=None "
                "compacts them all)") from None
        if moved or texts:
            self.updated_at = now
        return moved

    def iter_history(self, *, page_size: int = 100, with_layers: bool = False
                     ) -> Iterator[Any]:
        """Yield every item ever added and not popped or cleared, oldest first,
        ``page_size`` at a time: the items compacted away (see :meth:`compact`)
        and those still in the model's view, without the replacements.
        ``with_layers``: yield ``(layer, item)``, ``layer`` the number of the
        compaction that moved the item out of the view (1, 2, ...), ``None`` for
        an item still in it.

        A compaction during the walk does not make it skip or repeat an item
        (it resumes by how many it has read). If the session stops being this
        handle's, the walk ends.
        """
        size = check_int("page_size", page_size, minimum=1)
        if not isinstance(with_layers, bool):
            raise TypeError(f"with_layers must be a bool, not {type(with_layers).__name__}")
        return self._iter_history(size, with_layers)

    def _iter_history(self, page_size: int, with_layers: bool) -> Iterator[Any]:
        position: object = None
        while True:
            rows, position = self._store.history_page(self._owner, position, page_size)
            for row_id, text, layer in rows:
                item = self._decode(row_id, text, layer)
                yield (layer or None, item) if with_layers else item
            if len(rows) < page_size:
                return

    @write_call
    def clear_session(self) -> None:
        """Remove every item; the session itself, its owner and metadata remain.

        Raises :class:`~sessions_dal.errors.SessionNotFoundError` if the
        session is no longer this handle's.
        """
        now = _time.now()
        try:
            cleared = self._store.clear_items(self._owner, now)
        except NotOwned:
            raise self._gone() from None
        if cleared:
            self.updated_at = now

    def size(self) -> Size:
        """How many items and bytes the session holds, its view and history apart.

        One statement summing the items' stored sizes: its cost grows with the
        session, as :meth:`count_items`' does, and a sidebar of a page of sessions
        can show it. 0 everywhere once the session is not this handle's.
        """
        return Size(*self._store.size(self._owner))

    def count_items(self) -> int:
        """How many items the session holds, without loading them (0 once it is not ours)."""
        return self._store.count_items(self._owner)

    def to_dict(self) -> dict[str, Any]:
        """The session's fields as a plain dict (for display, JSON or pandas); no query."""
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "metadata": self.metadata,
        }

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

    def _decode(self, row_id: int, text: str, layer: int | None = None) -> Any:
        """``text`` decoded; a row of the compacted history's if ``layer``."""
        try:
            return loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise corrupt_item(self._store.messages_table, self.session_id, row_id, exc,
                               layer=layer or None) from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        return self._store is other._store and self.session_id == other.session_id

    def __hash__(self) -> int:
        return hash(self.session_id)

    def __repr__(self) -> str:
        """Who, what and when, as a notebook or a debugger shows it; never a query.

        The title (``metadata["title"]``, cut at 40 characters) when there is
        one, and the last activity, to the second.
        """
        title = self.metadata.get("title")
        shown = "" if title is None else f"title={_cut(title)}, "
        return (
            f"Session(session_id={self.session_id!r}, user_id={self.user_id!r}, {shown}"
            f"updated_at='{self.updated_at.isoformat(timespec='seconds')}')"
        )

    def _repr_html_(self) -> str:
        """The notebook view: the session's header and its latest 20 items as a
        conversation (who said what, tool calls and outputs, long text folded);
        two bounded queries. Every value is HTML-escaped."""
        return session_html(self)


class SessionList(list[Session]):
    """The list the repository's listings return: a plain ``list`` of
    :class:`Session`, which a notebook shows as a table (title, last activity,
    item count, id) of its first 50 sessions."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return sessions_html(self)


def _cut(value: object, width: int = 40) -> str:
    """``repr(value)`` of at most about ``width`` characters: a str cut inside its
    quotes, anything else cut with an ellipsis."""
    if isinstance(value, str):
        return repr(cut(value, width))
    return cut(repr(value), width)
