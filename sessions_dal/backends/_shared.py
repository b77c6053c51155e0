"""What every SQL store does the same way, written once.

A backend's store inherits :class:`SharedStore` and gives it ``_db`` (its
runner: :class:`Runner`), ``_sql`` (its statements, under the names used
here), and ``_session_row``/``_unowned_row``: how its rows become a
:class:`~sessions_dal._store.SessionRow` (each driver returns its own time
types). What stays in each store is what really differs: its writes, with
their locks and transactions, its search and its index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

from .._store import Owner, SessionRow, StoreInfo

__all__ = ["Runner", "SharedStore", "key", "keyset"]

_T = TypeVar("_T")


class Runner(Protocol):
    """A backend's way to run work in a transaction, or one statement."""

    @property
    def closed(self) -> bool: ...
    def read(self, work: Callable[..., _T], *args: Any) -> _T: ...
    def write(self, work: Callable[..., _T], *args: Any) -> _T: ...
    def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]: ...
    def fetchone(self, sql: str, parameters: Sequence[Any] = ()) -> Any: ...


def key(owner: Owner) -> tuple[str, str]:
    """The parameters of an item statement's owner key (see each ``_sql.SQL.items``)."""
    # An owned handle's key parameters are (session_id, user_id): the owner itself.
    return owner if owner.user_id is not None else (owner.session_id, owner.session_id)  # type: ignore[return-value]


def keyset(order: str, position: object) -> tuple[object, ...]:
    """The values of the order's columns, from a row's position (see ``_session_row``)."""
    created, updated, seq = cast("tuple[object, object, int]", position)
    return (created, seq) if order == "created" else (updated, created, seq)


class SharedStore:
    """The store methods whose body is one statement (or one transaction of the
    backend's own) through the runner: the same text on every backend."""

    _db: Runner
    _sql: Any
    _session_row: Callable[[Any], SessionRow]
    _unowned_row: Callable[..., SessionRow]
    _update_metadata: Callable[..., SessionRow | None]
    _info: Callable[..., StoreInfo]
    _check: Callable[..., list[str]]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._db.closed

    def get_session(self, user_id: str, session_id: str) -> SessionRow | None:
        row = self._db.fetchone(self._sql.select_one, (session_id, user_id))
        return None if row is None else self._session_row(row)

    def sessions_after(self, user_id: str, order: str, position: object, limit: int
                       ) -> list[SessionRow]:
        if position is None:
            rows = self._db.fetchall(self._sql.select_first[order], (user_id, limit))
        else:
            rows = self._db.fetchall(self._sql.select_after[order],
                                     (user_id, *keyset(order, position), limit))
        return [self._session_row(row) for row in rows]

    def count_sessions(self, user_id: str) -> int:
        count: int = self._db.fetchone(self._sql.count_sessions, (user_id,))[0]
        return count

    def update_metadata(self, user_id: str, session_id: str, change: Callable[[str], str]
                        ) -> SessionRow | None:
        return self._db.write(self._update_metadata, user_id, session_id, change)

    def find_session(self, session_id: str) -> SessionRow | None:
        row = self._db.fetchone(self._sql.select_by_id, (session_id,))
        return self._session_row(row) if row is not None else self.get_unowned(session_id)

    def get_unowned(self, session_id: str) -> SessionRow | None:
        row = self._db.fetchone(self._sql.select_unowned_one, (session_id,))
        return None if row is None else self._unowned_row(*row)

    def count_unowned(self) -> int:
        count: int = self._db.fetchone(self._sql.count_unowned)[0]
        return count

    def count_items(self, owner: Owner) -> int:
        count: int = self._db.fetchone(self._sql.items[owner.user_id is not None].count,
                                       key(owner))[0]
        return count

    def info(self) -> StoreInfo:
        return self._db.read(self._info)

    def check(self) -> list[str]:
        return self._db.read(self._check)
