"""What every SQL store does the same way, written once.

A backend's store inherits :class:`SharedStore` and gives it ``_db`` (its
runner: :class:`Runner`), ``_sql`` (its statements, under the names used
here), and ``_session_row``/``_unowned_row``: how its rows become a
:class:`~sessions_dal._store.SessionRow` (each driver returns its own time
types). What stays in each store is what really differs: its writes, with
their locks and transactions, its search and its index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, cast

from .._store import Owner, SessionRow, StoreInfo, TooFew, UserRow

__all__ = ["PAGE", "Runner", "SharedExporter", "SharedStore", "key", "keyset", "paged",
           "plan_compaction"]

_T = TypeVar("_T")

PAGE = 500
"""Rows per page of an export: a few hundred kilobytes of items at most in memory."""


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


def paged(fetch: Callable[[tuple[Any, ...], int], list[Any]], first: tuple[Any, ...],
          position: Callable[[Any], tuple[Any, ...]]) -> Iterator[Any]:
    """Every row of a keyset-paged statement, :data:`PAGE` rows a query.

    ``fetch(after, size)`` returns the next ``size`` rows after the position
    ``after`` (the order's columns, ``first`` before any row); ``position(row)``
    is a row's.
    Keyset, not ``OFFSET``: a page costs the same at the end as at the start.
    """
    after, size = first, PAGE
    while True:
        rows = fetch(after, size)
        yield from rows
        if len(rows) < size:
            return
        after = position(rows[-1])


def plan_compaction(conn: Any, sql: Any, session_id: str, texts: Sequence[str],
                    upto: int | None) -> tuple[list[Any], int, int] | None:
    """What a compaction will do, read inside its transaction once the session is
    locked: the view's rows (``sql.view_rows``, in view order), how many leave it and
    the new layer's number; ``None`` when nothing would change.

    Raises :class:`~sessions_dal._store.TooFew` when ``upto`` exceeds the view.
    """
    rows = conn.execute(sql.view_rows, (session_id,)).fetchall()
    moved = len(rows) if upto is None else upto
    if moved > len(rows):
        raise TooFew(len(rows))
    if not moved and not texts:
        return None
    layer = int(conn.execute(sql.next_layer, {"session": session_id}).fetchone()[0])
    return rows, moved, layer


def _one(conn: Any, statement: str, parameters: Any) -> Any:
    return conn.execute(statement, parameters).fetchone()


class SharedStore:
    """The store methods whose body is one statement (or one transaction of the
    backend's own) through the runner: the same text on every backend."""

    _db: Runner
    _sql: Any
    _no_limit: ClassVar[int | None]
    """What the backend's ``LIMIT`` takes for "no limit"."""
    _session_row: Callable[[Any], SessionRow]
    _unowned_row: Callable[..., SessionRow]
    _user_time: Callable[[str, Any], datetime]
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

    def list_sessions(self, user_id: str, order: str, limit: int | None, offset: int
                      ) -> list[SessionRow]:
        rows = self._db.fetchall(self._sql.select_page[order],
                                 (user_id, self._limit(limit), offset))
        return [self._session_row(row) for row in rows]

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

    def list_unowned(self, limit: int | None, offset: int) -> list[SessionRow]:
        rows = self._db.fetchall(self._sql.select_unowned, (self._limit(limit), offset))
        return [self._unowned_row(*row) for row in rows]

    def count_unowned(self) -> int:
        count: int = self._db.fetchone(self._sql.count_unowned)[0]
        return count

    def list_users(self, limit: int | None, offset: int) -> list[UserRow]:
        rows = self._db.fetchall(self._sql.select_users, (self._limit(limit), offset))
        return [UserRow(user, self._user_time(user, created), n) for user, created, n in rows]

    def get_items(self, owner: Owner, limit: int | None, offset: int
                  ) -> list[tuple[int, str]]:
        items = self._sql.items[owner.user_id is not None]
        rows: list[tuple[int, str]]
        if offset:
            rows = self._db.fetchall(items.latest_before,
                                     (*key(owner), self._limit(limit), offset))
        elif limit is None:
            return self._db.fetchall(items.all, key(owner))
        else:
            rows = self._db.fetchall(items.latest, (*key(owner), limit))
        rows.reverse()  # the latest were read newest first
        return rows

    def history_page(self, owner: Owner, position: object, limit: int
                     ) -> tuple[list[tuple[int, str, int]], object]:
        return self._db.read(self._history_page, owner, position, limit)

    def _history_page(self, conn: Any, owner: Owner, position: object, limit: int
                      ) -> tuple[list[tuple[int, str, int]], object]:
        # A position is (the latest compaction's number, items read, the part,
        # the last row's order columns in it). A page reads the history part,
        # then the view part, each in index order; every row says the latest
        # layer. A compaction since the last page (or between this page's two
        # statements) moved items from the view to the history and gave the
        # rest new ids, but left the transcript's order as it was: the page is
        # then read again by how many items were read, in one statement.
        items = self._sql.items[owner.user_id is not None]
        k = key(owner)
        kk = (*k, *k)  # the latest layer's parameters: of the history and the marks
        seen, done, part, after = cast("tuple[int | None, int, int, tuple[object, ...]]",
                                       position or (None, 0, 0, items.history_start))
        page: list[tuple[int, str, int]] = []
        latest: set[int] = set()
        if part == 0:
            rows = conn.execute(items.history_part, (*kk, *k, *after, limit)).fetchall()
            page = [(row[-2], row[-1], row[1]) for row in rows]
            latest.update(row[0] for row in rows)
            after = tuple(rows[-1][1:-1]) if rows else after
            if len(rows) < limit:
                part, after = 1, items.view_start
        if part == 1 and len(page) < limit:
            rows = conn.execute(items.view_part, (*kk, *k, *after, limit - len(page))
                                ).fetchall()
            page += [(row[-2], row[-1], 0) for row in rows]
            latest.update(row[0] for row in rows)
            after = tuple(rows[-1][1:-1]) if rows else after
        if len(page) < limit or not latest:  # the end: is it still the same transcript?
            latest.add(conn.execute(items.layer, kk).fetchone()[0])
        if seen is not None:
            latest.add(seen)
        if len(latest) > 1:  # a compaction came between: read this page by offset
            rows = conn.execute(items.history_from, (*kk, *k, *k, limit, done)).fetchall()
            page = [(row[-2], row[-1], row[2]) for row in rows]
            latest = {rows[0][0] if rows else max(latest)}
            part = rows[-1][1] if rows else 1
            after = (tuple(rows[-1][2:-1]) if part == 0 else tuple(rows[-1][3:-1])) if rows \
                else items.view_start
        return page, (latest.pop(), done + len(page), part, after)

    def size(self, owner: Owner) -> tuple[int, int, int, int]:
        k = key(owner)
        return cast("tuple[int, int, int, int]", tuple(int(n) for n in self._db.fetchone(
            self._sql.items[owner.user_id is not None].size, (*k, *k, *k, *k))))

    def user_size(self, user_id: str) -> tuple[int, int, int, int]:
        return cast("tuple[int, int, int, int]",
                    tuple(int(n) for n in self._db.read(_one, self._sql.user_size,
                                                        {"user": user_id})))

    def largest(self, limit: int) -> tuple[list[Any], list[Any]]:
        return self._db.read(self._largest, limit)

    def _largest(self, conn: Any, limit: int) -> tuple[list[Any], list[Any]]:
        return (conn.execute(self._sql.largest_users, (limit,)).fetchall(),
                conn.execute(self._sql.largest_sessions, (limit,)).fetchall())

    def count_items(self, owner: Owner) -> int:
        count: int = self._db.fetchone(self._sql.items[owner.user_id is not None].count,
                                       key(owner))[0]
        return count

    def info(self) -> StoreInfo:
        return self._db.read(self._info)

    def check(self) -> list[str]:
        return self._db.read(self._check)

    def _limit(self, limit: int | None) -> int | None:
        return self._no_limit if limit is None else limit


class SharedExporter:
    """The export reads every SQL backend pages alike (``sessions_dal._store.Exporter``).

    A backend's exporter gives ``_sql``, ``_page`` (one page's rows, run as
    its runner runs the caller's code), ``_first_session`` (the position before
    any session) and the row converters, and writes ``unowned`` and ``items``,
    whose keysets differ.
    """

    _sql: Any
    _first_session: ClassVar[tuple[object, int]]
    _session_row: Callable[[Any], SessionRow]
    _user_time: Callable[[str, Any], datetime]

    def _page(self, statement: str, parameters: Sequence[object]) -> list[Any]:
        raise NotImplementedError

    def users(self, user_id: str | None) -> Iterator[tuple[str, datetime]]:
        rows: Iterable[Any]
        if user_id is not None:
            rows = self._page(self._sql.export_user, (user_id,))
        else:
            rows = paged(lambda after, size: self._page(self._sql.export_users,
                                                        (*after, size)),
                         ("",), lambda row: (row[0],))
        for user, created in rows:
            yield user, self._user_time(user, created)

    def replacements(self, session_id: str) -> dict[int, int]:
        return dict(self._page(self._sql.export_marks, (session_id,)))

    def sessions(self, user_id: str) -> Iterator[SessionRow]:
        # In creation order, (created_at, seq): an import re-creates the listing's order.
        for row in paged(lambda after, size: self._page(self._sql.export_sessions,
                                                        (user_id, *after, size)),
                         self._first_session, lambda row: (row[3], row[5])):
            yield self._session_row(row)
