"""The interface between the public layer and a storage backend.

``SessionRepository`` and ``Session`` check arguments, make ids, read the
clock, encode and decode JSON and decide which error a caller sees; they hold
no SQL. A backend's store (``sessions_dal.backends.sqlite.SQLiteStore``, ...)
owns its connection, statements, transactions, migrations and the translation
of its driver's errors. Between them, this narrow contract:

- **One store method is one transaction, or one consistent read.** The store
  decides how to make it atomic (SQLite: ``BEGIN IMMEDIATE``; a row-locking
  server: the row locks each operation needs). The public layer never composes
  transactions out of several calls.
- Logic the public layer owns but that must run inside the transaction is
  passed in as a callable: the metadata merge of :meth:`Store.update_metadata`,
  the decoding of a popped item in :meth:`Store.pop_item`, the reading of an
  import file in :meth:`Store.import_records`. Such callables are pure and fast:
  they run while the store holds its locks.
- Outcomes the public layer turns into errors are reported with the small
  exceptions below (never a driver's exception), so the wording and the error
  policy stay in one place.
- A store marks the moment its write has committed, by setting
  ``call_state.token.committed = True`` (see :mod:`sessions_dal._interrupts`),
  so that an interrupted caller can be told whether its write stayed.

Timestamps cross the interface as aware UTC ``datetime`` objects; metadata and
items as the JSON text that is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from ._search import Term

__all__ = [
    "AdoptionStore",
    "BacksUp",
    "Common",
    "Exporter",
    "Grants",
    "IdTaken",
    "Importer",
    "ItemStore",
    "MaintenanceStore",
    "NotFound",
    "NotOwned",
    "OwnedByOther",
    "Owner",
    "SearchRow",
    "SessionRow",
    "SessionStore",
    "Store",
    "StoreBase",
    "StoreInfo",
    "TransferStore",
    "UserRow",
]

_T = TypeVar("_T")


class SessionRow(NamedTuple):
    """A session as stored: who owns it (``None``: nobody), its metadata text, its times."""

    session_id: str
    user_id: str | None
    metadata: str
    created_at: datetime
    updated_at: datetime
    position: object = None
    """Where the session stands in its user's listing, for keyset paging (opaque)."""


class SearchRow(NamedTuple):
    """A search result as stored: its session, and the item's JSON text (``None``: the title).

    ``layer``: the compaction that moved the item into the session's history
    (``None``: an item of the view, or the title).
    """

    session: SessionRow
    item_id: int | None
    item: str | None
    layer: int | None = None


class UserRow(NamedTuple):
    """A user, with how many sessions they own."""

    user_id: str
    created_at: datetime
    sessions: int


class Owner(NamedTuple):
    """Whose items a session handle reads and writes: ``user_id`` ``None`` is nobody's.

    Every item operation of a store sees the session only while it is still
    this owner's: a deleted session, or one another user owns now, has no
    items for it, and writes to it raise :class:`NotOwned`.
    """

    session_id: str
    user_id: str | None


@dataclass(frozen=True)
class Common:
    """What every backend is opened with, checked by the public layer."""

    busy_timeout: float
    """Seconds to wait for a lock (a number >= 0; each backend has its maximum)."""
    sessions_table: str
    messages_table: str
    """openai-agents' two tables, as validated names."""
    read_only: bool


class StoreInfo(NamedTuple):
    """What a store reports about its database (see ``SessionRepository.info``)."""

    schema_version: int
    migration_pending: bool
    users: int
    sessions: int
    unowned_sessions: int
    items: int
    history_items: int
    details: dict[str, str]
    """The backend's own facts, by name (its version, its journal mode, ...)."""


class IdTaken(Exception):
    """The session id exists already (owned or not)."""


class NotOwned(Exception):
    """The session is not (or no longer) the handle's owner's."""


class OwnedByOther(Exception):
    """A claim met a session another user owns."""


class NotFound(Exception):
    """A claim met a session id that does not exist."""


class TooFew(Exception):
    """A compaction asked for more items than the view holds (args: how many it holds)."""


class Exporter(Protocol):
    """Reads of one snapshot, for an export (all of them see one point in time)."""

    def users(self, user_id: str | None) -> Iterator[tuple[str, datetime]]:
        """Every user (or just ``user_id``), by ``user_id``."""

    def sessions(self, user_id: str) -> Iterator[SessionRow]:
        """The user's sessions, in creation order."""

    def unowned(self) -> Iterator[tuple[str, object, object]]:
        """Sessions no user owns, with openai-agents' own timestamp texts, in listing order."""

    def items(self, session_id: str) -> Iterator[tuple[int, str]]:
        """A session's items, in order, with their row ids."""

    def history(self, session_id: str) -> Iterator[tuple[int, bool, str]]:
        """A session's compacted items, ``(layer, replaced, text)``, layer by layer, in order."""

    def replacements(self, session_id: str) -> dict[int, int]:
        """The row ids of a session's items that are a compaction's replacement, with its layer."""

    def verify(self) -> None:
        """Raise if what was read cannot be trusted to be one snapshot."""


class Importer(Protocol):
    """The writes of one import, all in one transaction."""

    def add_user(self, user_id: str, created_at: datetime) -> None:
        """Create the user unless it exists."""

    def add_session(self, row: SessionRow, replace: bool,
                    agents_times: tuple[object, object]) -> None:
        """Create a session (owned, or unowned if ``row.user_id`` is ``None``).

        An existing id raises :class:`IdTaken`, unless ``replace``, which
        deletes it first. An unowned session keeps ``agents_times`` as stored.
        """

    def add_items(self, session_id: str, texts: Sequence[str]) -> None:
        """Append items to a session added by this import."""

    def add_history(self, session_id: str, rows: Sequence[tuple[int, bool, str]]) -> None:
        """Append compacted items ``(layer, replaced, text)``, in order, to a session
        added by this import (before its items)."""

    def mark_replacements(self, session_id: str, marks: Sequence[tuple[int, int]]) -> None:
        """Mark the session's items that are a replacement: ``(n, layer)``, its n-th item
        (from 0), once all its items are added."""


class StoreBase(Protocol):
    """Who the store is; every store has these."""

    backend: str
    """``"sqlite"``, ``"postgresql"``: for reports, never for decisions."""
    description: str
    """The database, as messages name it: a path, or a URL without its password."""
    read_only: bool
    max_text_length: int
    """The longest item or metadata text the backend stores."""
    messages_table: str
    """openai-agents' messages table, as this store names it (messages name it)."""

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    lacks: Mapping[str, str]
    """The optional abilities (``backup``, ``grant``) this store does not have,
    each with why and what to use instead; the others it has as methods."""


class SessionStore(Protocol):
    """Users and their sessions."""

    def create_session(self, user_id: str, session_id: str, metadata: str, now: datetime
                       ) -> None:
        """Create the user if missing and the session; :class:`IdTaken` if the id exists."""

    def get_session(self, user_id: str, session_id: str) -> SessionRow | None: ...

    def list_sessions(self, user_id: str, order: str, limit: int | None, offset: int
                      ) -> list[SessionRow]:
        """``order`` ``"created"``: newest first, ties by creation order (later
        first); ``"updated"``: last active first, ties as for ``"created"``."""

    def sessions_after(self, user_id: str, order: str, position: object, limit: int
                       ) -> list[SessionRow]:
        """The next ``limit`` sessions after ``position`` (``None``: the first), same order."""

    def count_sessions(self, user_id: str) -> int: ...

    def update_metadata(self, user_id: str, session_id: str, change: Callable[[str], str]
                        ) -> SessionRow | None:
        """Replace the metadata text by ``change(old_text)``, atomically; ``None`` if absent."""

    def fork(self, user_id: str, session_id: str, new_id: str, upto: int | None,
             metadata: Callable[[int], str], now: datetime) -> None:
        """Create ``new_id`` for ``user_id`` with a copy of the first ``upto``
        items of ``session_id`` (all if ``None``), in one transaction;
        ``metadata(copied)`` gives its metadata text. :class:`NotOwned` if
        ``session_id`` is not the user's."""

    def delete_session(self, user_id: str, session_id: str) -> bool: ...

    def delete_user(self, user_id: str) -> tuple[bool, int, int]:
        """Delete the user with all sessions and items: (found, sessions, items)."""

    def prune_candidates(self, user_id: str | None, cutoff: datetime | None,
                         keep_last: int | None, unowned: bool
                         ) -> list[tuple[str, str | None, object]]:
        """The sessions a prune would delete now: ``(session_id, user_id, stamp)``.

        Owned sessions last active before ``cutoff``, or beyond the
        ``keep_last`` most recently active of their user (of ``user_id``
        only, if given); with ``unowned``, instead, the unowned sessions whose
        openai-agents ``updated_at`` is before ``cutoff``. ``stamp`` is
        opaque: :meth:`prune` deletes a session only if it still has it.
        """

    def count_items_of(self, session_ids: Sequence[str]) -> int:
        """How many items these sessions hold, together."""

    def prune(self, rows: Sequence[tuple[str, str | None, object]], last: bool
              ) -> tuple[int, int]:
        """Delete, in one transaction, each session of ``rows`` (as
        :meth:`prune_candidates` returns them) that has not been written or
        claimed since; return how many sessions and items were deleted.
        ``last``: the prune's last batch, where work that erasing needs once
        for all batches is done (SQLite: merging the search index)."""

    def find_session(self, session_id: str) -> SessionRow | None:
        """The session whoever owns it, or nobody."""

    def search(self, user_id: str, terms: tuple[Term, ...], session_id: str | None,
               limit: int | None) -> list[SearchRow]:
        """The user's items and titles that contain every term (in one session, if
        given), best first, ties newest first; one consistent read. Raises
        :class:`~sessions_dal.errors.SearchUnavailableError` where it cannot run."""

    def list_users(self, limit: int | None, offset: int) -> list[UserRow]: ...


class AdoptionStore(Protocol):
    """The sessions openai-agents wrote, which no user owns until claimed."""

    def list_unowned(self, limit: int | None, offset: int) -> list[SessionRow]: ...

    def get_unowned(self, session_id: str) -> SessionRow | None: ...

    def count_unowned(self) -> int: ...

    def delete_unowned(self, session_id: str) -> bool: ...

    def claim(self, user_id: str, session_ids: Sequence[str], metadata: str | None,
              now: datetime) -> list[SessionRow]:
        """Give each session the owner ``user_id``, all or none.

        A session the user owns already comes back unchanged; another user's
        raises :class:`OwnedByOther`, a missing one :class:`NotFound`.
        ``metadata`` (if not ``None``) is the new sessions' metadata text.
        """


class ItemStore(Protocol):
    """The items of one session, as its owner (an :class:`Owner`) sees them."""

    def get_items(self, owner: Owner, limit: int | None, offset: int
                  ) -> list[tuple[int, str]]:
        """The latest ``limit`` items (all if ``None``) before the newest
        ``offset`` ones, oldest first, with row ids."""

    def items_page(self, owner: Owner, position: object, limit: int, newest_first: bool
                   ) -> tuple[list[tuple[int, str]], object]:
        """The next ``limit`` items after ``position`` (``None``: from the
        first, or the newest), and the position of the last one (opaque)."""

    def add_items(self, owner: Owner, texts: Sequence[str], now: datetime) -> None:
        """Append, in one transaction; :class:`NotOwned` if the session is not the owner's."""

    def pop_item(self, owner: Owner, now: datetime, decode: Callable[[int, str], _T]
                 ) -> tuple[bool, _T | None]:
        """Remove the latest item and return ``(True, decode(id, text))``, or ``(False, None)``.

        If ``decode`` raises, the item stays. Each concurrent call gets a
        different item; none gets ``(False, None)`` while items remain.
        """

    def clear_items(self, owner: Owner, now: datetime) -> bool:
        """Remove every item; whether there were any."""

    def count_items(self, owner: Owner) -> int: ...

    def size(self, owner: Owner) -> tuple[int, int, int, int]:
        """(items, bytes, history items, history bytes) of the session."""

    def compact(self, owner: Owner, texts: Sequence[str], upto: int | None, now: datetime
                ) -> tuple[int, int]:
        """Move the view's first ``upto`` items (all if ``None``) to the history and put
        ``texts`` in their place, in one transaction; ``(layer, items moved)``.

        :class:`TooFew` if the view holds fewer than ``upto`` items,
        :class:`NotOwned` if the session is not the owner's; either way nothing
        changed. A compaction that moves nothing and adds nothing is ``(0, 0)``.
        """

    def history_page(self, owner: Owner, position: object, limit: int
                     ) -> tuple[list[tuple[int, str, int]], object]:
        """The next ``limit`` items of the transcript (compacted items, then the
        view's that are not a replacement) after ``position`` (``None``: from the
        first), as ``(row id, text, layer)`` (layer 0: still in the view), and the
        new position (opaque)."""


class MaintenanceStore(Protocol):
    """The whole database: facts, checks, the search index, migrations."""

    def user_size(self, user_id: str) -> tuple[int, int, int, int]:
        """(items, bytes, history items, history bytes) of all the user's sessions."""

    def largest(self, limit: int) -> tuple[list[Any], list[Any]]:
        """The largest users ``(user_id, sessions, items, bytes, history items, history
        bytes)`` and sessions ``(session_id, user_id, items, bytes, ...)``, by bytes."""

    def info(self) -> StoreInfo: ...

    def check(self) -> list[str]:
        """The problems an integrity check finds (empty if sound), the search
        index's disagreements with the items and titles among them."""

    def update_search_index(self) -> int:
        """Index what the index does not hold yet (items written since the last
        search), in batches of transactions, telling
        ``backends._migrations.PROGRESS`` how far; return how many items got
        rows. A backend whose index is kept as items are written returns 0.
        Raises :class:`~sessions_dal.errors.SearchUnavailableError` where there
        is no index."""

    def reindex(self) -> int:
        """Make the search index what the items and titles say, in batches of
        transactions, telling ``backends._migrations.PROGRESS`` how far; return
        how many index rows were added, rewritten or removed. Raises
        :class:`~sessions_dal.errors.SearchUnavailableError` where there is no index."""

    def pending_migrations(self) -> list[str]: ...


class TransferStore(Protocol):
    """Export and import, each one consistent read or one transaction."""

    def export(self, work: Callable[[Exporter], _T]) -> _T:
        """Run ``work`` on reads that all see one snapshot."""

    def import_records(self, work: Callable[[Importer], _T]) -> _T:
        """Run ``work``'s writes in one transaction: all of them, or none."""


@runtime_checkable
class Store(StoreBase, SessionStore, AdoptionStore, ItemStore, MaintenanceStore, TransferStore,
            Protocol):
    """What a backend provides: every role above. One method: one transaction, or one
    consistent read. A backend may also have the optional abilities below (as
    methods), or name them in ``lacks``."""


@runtime_checkable
class BacksUp(Protocol):
    """Optional: a store that copies its database to a new file."""

    def backup(self, target: str) -> None:
        """Copy the database to the new file ``target``, consistently."""


@runtime_checkable
class Vacuums(Protocol):
    """Optional: a store that gives the room deleted rows left back to the file system."""

    def vacuum(self) -> int:
        """Rewrite the database without its free room; how many bytes it gave back."""


@runtime_checkable
class Grants(Protocol):
    """Optional: a store whose database has roles to grant rights to."""

    def grant(self, role: str, read_only: bool, dry_run: bool) -> list[str]:
        """The statements that give ``role`` an app's rights (a reader's if ``read_only``),
        run in one transaction unless ``dry_run``."""
