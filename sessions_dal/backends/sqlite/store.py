"""SQLiteStore: the store of one SQLite file (or ``:memory:``) behind ``SessionRepository``.

Each public method is one transaction (:meth:`Database.write`, ``BEGIN
IMMEDIATE``) or one read. ``BEGIN IMMEDIATE`` takes the database's single
write lock before the first statement, so every write transaction, in every
thread and process, runs alone: whatever it reads stays true until it commits.
The read-then-write operations (claiming a session, merging metadata, popping
the latest item, an import's existence checks) rely on that, and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timezone
from itertools import repeat
from types import MappingProxyType
from typing import Any, TypeVar, cast

from ..._files import is_database_file, publish, temporary_beside
from ..._search import Term
from ..._store import (
    IdTaken,
    NotFound,
    NotOwned,
    OwnedByOther,
    Owner,
    SearchRow,
    SessionRow,
    StoreInfo,
)
from ...errors import (
    CorruptDataError,
    CorruptSessionError,
    DatabaseLockedError,
    SearchUnavailableError,
)
from .._index import (
    EXTRA,
    INDEX_HISTORY,
    INDEX_ITEMS,
    INDEX_NEW,
    INDEX_TITLES,
    MISSING,
    WRONG_HISTORY,
    WRONG_OWNER,
    WRONG_TITLES,
    index_problem,
)
from .._migrations import in_batches
from .._shared import SharedExporter, SharedStore, key, paged, plan_compaction
from ._opening import (
    MAX_BUSY_TIMEOUT,
    SYNCHRONOUS_LEVELS,
    Opened,
    open_connection,
    open_read_only,
)
from ._runner import Database, in_read_transaction
from ._schema import (
    SCHEMA_VERSION,
    apply_migrations,
    ensure_search,
    has_fts5,
    inspect_file,
    inspect_read_only,
    pending_steps,
    schema_version,
)
from ._sql import SQL

__all__ = ["MAX_BUSY_TIMEOUT", "SCHEMA_VERSION", "SYNCHRONOUS_LEVELS", "SQLiteStore"]

_T = TypeVar("_T")
_LAST_ID = 2 ** 63 - 1  # the greatest rowid
MAX_TEXT_LENGTH = 1_000_000_000
"""SQLite's default maximum string length (SQLITE_MAX_LENGTH)."""


def _owned(row: Sequence[Any]) -> SessionRow:
    session_id, user_id, metadata, created, updated, seq = row
    try:  # the hot path of every listing: as sessions_dal writes them, UTC with an offset
        created_at, updated_at = _fromisoformat(created), _fromisoformat(updated)
        if created_at.tzinfo is not None and updated_at.tzinfo is not None:
            return SessionRow(session_id, user_id, metadata, created_at, updated_at,
                              (created, updated, seq))
    except (TypeError, ValueError):
        pass
    return SessionRow(session_id, user_id, metadata,
                      _session_time(session_id, "created_at", created),
                      _session_time(session_id, "updated_at", updated), (created, updated, seq))


def _unowned(session_id: str, created: str | None, updated: str | None) -> SessionRow:
    return SessionRow(session_id, None, "{}", _agents_time(created), _agents_time(updated))


def _user_time(user_id: str, text: object) -> datetime:
    return _stored_time(text, CorruptDataError, f"user {user_id!r} (its agent_users row)",
                        "created_at")


class SQLiteStore(SharedStore):
    """Users, sessions and items in one SQLite file, on disk compatible with openai-agents.

    Opening creates the file if needed and applies pending migrations (unless
    ``read_only``, which never writes: see ``open_read_only``).
    """

    backend = "sqlite"
    max_text_length = MAX_TEXT_LENGTH

    _db: Database  # this backend's runner, with more than SharedStore needs
    lacks: Mapping[str, str] = MappingProxyType({
        "grant": "SQLite has no roles: who may read or write a file is decided by its (and "
                 "its folder's) permissions; grant() is for PostgreSQL"})

    # How this driver's rows become the contract's (SharedStore reads through these).
    _session_row = staticmethod(_owned)
    _unowned_row = staticmethod(_unowned)
    _user_time = staticmethod(_user_time)
    _no_limit = -1  # SQLite's LIMIT for "all"

    def __init__(self, path: str, *, busy_timeout: float, synchronous: str,
                 sessions_table: str, messages_table: str, read_only: bool) -> None:
        self.description = path
        self.read_only = read_only
        self.messages_table = messages_table
        self._sql = sql = SQL(sessions_table, messages_table)
        self._unmerged = False
        """A prune deleted from the search index and has not merged it yet."""
        self._tail: tuple[sqlite3.Connection, int, int] | None = None
        """A read-only search's temporary index: its connection, and the items
        (after, upto] it holds (see _search_snapshot)."""
        memory = path == ":memory:"
        if path.startswith("file:"):
            raise ValueError(
                f"path {path!r} looks like an SQLite URI; pass a plain file path (or ':memory:')"
            )
        # Reopened later (a snapshot, a stale connection): by the absolute path,
        # whatever the process's working directory is by then.
        self._real = real = path if memory else os.path.abspath(path)
        if read_only:
            if memory:
                raise ValueError(
                    "read_only needs a database file; an in-memory database is always new "
                    "and empty"
                )

            def connect() -> Opened:
                return open_read_only(real, busy_timeout=busy_timeout,
                                      inspect=lambda c: inspect_read_only(c, sql))

            conn, fingerprint = connect()
            self._db = Database(conn, path, busy_timeout, reopen=connect,
                                fingerprint=fingerprint, read_only=True)
            return

        def connect_rw() -> Opened:
            conn = open_connection(real, busy_timeout=busy_timeout, synchronous=synchronous,
                                   inspect=lambda c: inspect_file(c, sql))
            return conn, None

        self._db = Database(connect_rw()[0], path, busy_timeout,
                            reopen=None if memory else connect_rw)
        try:
            apply_migrations(self._db, sql)
            ensure_search(self._db, sql)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the connection; later calls raise ``RepositoryClosedError``."""
        self._db.close()

    # -- a user's sessions --------------------------------------------------------

    def create_session(self, user_id: str, session_id: str, metadata: str, now: datetime
                       ) -> None:
        self._db.write(self._create, user_id, session_id, metadata, _text(now))

    def _create(self, conn: sqlite3.Connection, user_id: str, session_id: str, metadata: str,
                now: str, *, with_items: bool = False) -> None:
        sql = self._sql
        conn.execute(sql.insert_user, (user_id, now))
        # openai-agents' row of the session comes with its first items (the
        # items' foreign key needs it; add_items and SQLiteSession insert it
        # when missing, as after SQLiteSession.clear_session()): a session
        # with no items costs two rows fewer. A fork copies items at once.
        if (conn.execute(sql.insert_agent_session, (session_id,)).rowcount == 0
                or conn.execute(sql.insert_owned, (session_id, user_id, metadata, now, now)
                                ).rowcount == 0
                if with_items else
                conn.execute(sql.insert_new_owned, {"session": session_id, "user": user_id,
                                                     "metadata": metadata, "now": now}
                             ).rowcount == 0):
            raise IdTaken(session_id)

    def _update_metadata(self, conn: sqlite3.Connection, user_id: str, session_id: str,
                         change: Callable[[str], str]) -> SessionRow | None:
        # Read, change, write: nobody writes in between, under BEGIN IMMEDIATE.
        row = conn.execute(self._sql.select_one, (session_id, user_id)).fetchone()
        if row is None:
            return None
        new = conn.execute(self._sql.update_metadata,
                           (change(row[2]), session_id, user_id)).fetchone()
        return _owned(new)

    def fork(self, user_id: str, session_id: str, new_id: str, upto: int | None,
             metadata: Callable[[int], str], now: datetime) -> None:
        self._db.write(self._fork, user_id, session_id, new_id, upto, metadata, _text(now))

    def _fork(self, conn: sqlite3.Connection, user_id: str, session_id: str, new_id: str,
              upto: int | None, metadata: Callable[[int], str], now: str) -> None:
        sql = self._sql
        # Under BEGIN IMMEDIATE nothing changes the original between these.
        if conn.execute(sql.is_owned, (session_id, user_id)).fetchone() is None:
            raise NotOwned(session_id)
        (count,) = conn.execute(sql.count_items, (session_id,)).fetchone()
        copied = count if upto is None else min(count, upto)
        self._create(conn, user_id, new_id, metadata(copied), now, with_items=True)
        # Which copied items are a compaction's replacement (a session that never
        # compacted has no marks: no item's is looked up).
        layers = ([row[0] for row in conn.execute(sql.first_layers, (session_id, copied))]
                  if conn.execute(sql.has_marks, (session_id,)).fetchone() else [])
        conn.execute(sql.copy_items, (new_id, session_id, copied))
        conn.execute(sql.copy_history, (new_id, session_id))
        if any(layer is not None for layer in layers):
            copies = [row[0] for row in conn.execute(sql.item_ids, (new_id,))]
            conn.executemany(sql.mark_replacement, [
                (item_id, new_id, layer)
                for item_id, layer in zip(copies, layers, strict=True) if layer is not None])

    # Deletes erase: texts are overwritten before their rows are deleted (see
    # _sql.SQL.scrub_items), deleted cells are zeroed (secure_delete), and the
    # WAL, which still holds the pages as they were, is emptied after commit.

    def delete_session(self, user_id: str, session_id: str) -> bool:
        deleted = self._db.write(self._delete_session, user_id, session_id)
        if deleted:
            self._db.empty_wal()
        return deleted

    def _delete_session(self, conn: sqlite3.Connection, user_id: str, session_id: str) -> bool:
        sql = self._sql
        if conn.execute(sql.scrub_owned, (session_id, user_id)).rowcount == 0:
            return False
        conn.execute(sql.scrub_items, (session_id,))
        searchable = self._scrub_index(conn, sql.indexed_of_session, {"session": session_id})
        # Items and history (the agent_sessions row's trigger) first: deleting
        # the owner first would re-index them as nobody's.
        conn.execute(sql.delete_items, (session_id,))
        conn.execute(sql.delete_agent_session, (session_id,))
        conn.execute(sql.delete_owned, (session_id, user_id))
        if searchable:
            self._erase_from_index(conn)
        return True

    def delete_user(self, user_id: str) -> tuple[bool, int, int]:
        found, sessions, items = self._db.write(self._delete_user, user_id)
        if found:
            self._db.empty_wal()
        return found, sessions, items

    def _delete_user(self, conn: sqlite3.Connection, user_id: str) -> tuple[bool, int, int]:
        sql = self._sql
        conn.execute(sql.scrub_user_items, (user_id,))
        conn.execute(sql.scrub_user_owned, (user_id,))
        searchable = self._scrub_index(conn, sql.indexed_of_user, {"user": user_id})
        items = conn.execute(sql.delete_user_items, (user_id,)).rowcount
        conn.execute(sql.delete_user_agent_sessions, (user_id,))
        sessions = conn.execute(sql.delete_user_owned, (user_id,)).rowcount
        found = conn.execute(sql.delete_user, (user_id,)).rowcount > 0
        if sessions and searchable:
            self._erase_from_index(conn)
        return found, sessions, items

    def _scrub_index(self, conn: sqlite3.Connection, rows: str,
                     parameters: Sequence[object] | Mapping[str, object]) -> bool:
        """Overwrite the search index's rows that the query ``rows`` finds (those of
        what is deleted); False: no index."""
        if conn.execute(self._sql.has_search_index).fetchone() is None:
            return False
        conn.executemany(self._sql.scrub_search_row, conn.execute(rows, parameters).fetchall())
        return True

    def _erase_from_index(self, conn: sqlite3.Connection) -> None:
        """Rewrite the search indexes (the items' and the history's) without what
        was deleted.

        An FTS5 delete only records that the row is gone; its words stay in
        the index's older segments until they are merged. 'optimize' merges
        them all into one (time and writes in proportion to the whole index,
        see the README; none for an index already merged), after which
        secure_delete zeroes the old pages.
        """
        conn.execute(self._sql.optimize_search_index)
        if conn.execute(self._sql.has_history_index).fetchone() is not None:
            conn.execute(self._sql.optimize_history_index)

    def prune_candidates(self, user_id: str | None, cutoff: datetime | None,
                         keep_last: int | None, unowned: bool
                         ) -> list[tuple[str, str | None, object]]:
        sql = self._sql
        if unowned and cutoff is not None:
            # openai-agents' CURRENT_TIMESTAMP text: 'YYYY-MM-DD HH:MM:SS', UTC;
            # the year padded by hand (strftime does not pad it below 1000).
            utc = cutoff.astimezone(timezone.utc)
            agents_before = f"{utc.year:04d}-{utc:%m-%d %H:%M:%S}"
            return [(session_id, None, stamp) for session_id, stamp in self._db.fetchall(
                sql.prune_unowned_candidates, (agents_before,))]
        by_user = () if user_id is None else (user_id,)
        before = None if cutoff is None else _text(cutoff)
        return self._db.fetchall(sql.prune_candidates[user_id is not None],
                                 (*by_user, keep_last, before))

    def count_items_of(self, session_ids: Sequence[str]) -> int:
        return sum(self._db.fetchone(self._sql.count_items_of, (session_id,))[0]
                   for session_id in session_ids)

    def prune(self, rows: Sequence[tuple[str, str | None, object]], last: bool
              ) -> tuple[int, int]:
        sessions, items = self._db.write(self._prune, rows, last)
        if sessions or last:
            self._db.empty_wal()
        return sessions, items

    def _prune(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, str | None, object]],
               last: bool) -> tuple[int, int]:
        sql, items, searchable = self._sql, 0, False
        # As found, or not at all: written since (or claimed), a session stays.
        # Every text of the batch is overwritten before any row is deleted.
        gone: list[tuple[str, str | None]] = []
        for session_id, user_id, stamp in rows:
            if (conn.execute(sql.scrub_owned_as_found, (session_id, user_id, stamp)).rowcount
                    if user_id is not None else
                    conn.execute(sql.unowned_as_found, (session_id, stamp)).fetchone()):
                gone.append((session_id, user_id))
                conn.execute(sql.scrub_items, (session_id,))
        # The index's rows of the whole batch together, overwritten then deleted
        # before the rows they come from: FTS5 writes its pending changes out
        # whenever another statement comes between two of its own, and each
        # write-out is merged later (interleaved, 5x the cost of the prune).
        if gone and conn.execute(sql.has_search_index).fetchone() is not None:
            searchable = True
            indexed = [row for session_id, _ in gone
                       for row in conn.execute(sql.indexed_of_session, {"session": session_id})]
            conn.executemany(sql.scrub_search_row, indexed)
            conn.executemany(sql.delete_search_row, indexed)
        for session_id, user_id in gone:
            items += conn.execute(sql.delete_items, (session_id,)).rowcount
            conn.execute(sql.delete_agent_session, (session_id,))  # and its history
            if user_id is not None:
                conn.execute(sql.delete_owned, (session_id, user_id))
        # The index is merged once, with the last batch: merging rewrites all
        # of it (an interrupted prune leaves that to the next erasing delete).
        self._unmerged = self._unmerged or bool(gone and searchable)
        if last and self._unmerged:
            self._erase_from_index(conn)
            self._unmerged = False
        return len(gone), items

    def search(self, user_id: str, terms: tuple[Term, ...], session_id: str | None,
               limit: int | None) -> list[SearchRow]:
        if self._db.fetchone(self._sql.has_search_index, ()) is None:
            raise self._no_search()
        parameters: dict[str, object] = {
            "match": _match(user_id, session_id, terms), "words": _words(terms),
            "limit": self._limit(limit), "user": user_id, "session": session_id}
        parameters.update((f"t{n}", " ".join(term.words).lower())
                          for n, term in enumerate(terms))
        if not self.read_only:
            # Another writer may hold the file past busy_timeout: then searched
            # as a read-only repository searches.
            with contextlib.suppress(DatabaseLockedError):
                self._catch_up()
        # One read transaction: the index up to its mark, and what is after it
        # (what a compaction copied since the catch-up, a read-only repository's
        # new items) in a temporary index, see _search_snapshot.
        rows = self._db.read(in_read_transaction, lambda conn, _: self._search_snapshot(
            conn, len(terms), parameters))
        # (id, text, session..., seq, layer, kind, position, score): see SQL.search
        return [SearchRow(_owned(row[2:-4]), row[0] if row[-3] else None, row[1], row[-4])
                for row in rows]

    def _search_snapshot(self, conn: sqlite3.Connection, terms: int,
                         parameters: dict[str, object]) -> list[Any]:
        """Search one state of the file without moving the index's mark: the items
        after it are searched in a temporary index of this connection's, kept
        for the next search (usually there are none: a read-write search has
        just caught up, and a compaction or another writer came between)."""
        sql = self._sql
        history = conn.execute(sql.has_history_index).fetchone() is not None
        if conn.execute(sql.has_search_state).fetchone() is None:
            # A file of version 4 or older (read-only): its triggers kept the index whole.
            return conn.execute(sql.search(terms, history),
                                {**parameters, "upto": _LAST_ID}).fetchall()
        upto, last = conn.execute(sql.search_mark).fetchone()
        parameters = {**parameters, "upto": upto}
        rows = conn.execute(sql.search(terms, history), parameters).fetchall()
        if last is None or last <= upto:
            return rows
        held = self._tail
        if held is None or held[0] is not conn or held[1] != upto:
            conn.execute(sql.tail_create)
            conn.execute(sql.tail_empty)
            held = (conn, upto, upto)
        in_batches(INDEX_NEW, held[2] + 1, last,
                   lambda after, upto: conn.execute(sql.tail_fill,
                                                    {"after": after, "upto": upto}),
                   lambda after, count: _nth_item_after(conn, sql, after, count))
        self._tail = (conn, upto, last)
        rows += conn.execute(sql.search_tail(terms), {**parameters, "upto": last}).fetchall()
        # Scores are each row's own (no corpus statistics): the two lists merge.
        rows.sort(key=lambda row: (row[-1], row[-3], row[-2]), reverse=True)
        limit = cast(int, parameters["limit"])
        return rows if limit < 0 else rows[:limit]

    def update_search_index(self) -> int:
        if self._db.fetchone(self._sql.has_search_index, ()) is None:
            raise self._no_search()
        return self._catch_up()[0]

    def _catch_up(self) -> tuple[int, int]:
        """Index the items after the mark; return how many got rows, and the last
        item id now indexed (every item committed before this call began)."""
        upto, last = self._db.fetchone(self._sql.search_mark)
        if last is None or last <= upto:
            return 0, upto  # the common case: one read
        indexed = 0

        def run(after: int, upto: int) -> None:
            nonlocal indexed
            indexed += self._db.write(self._index_new, after, upto)

        in_batches(INDEX_NEW, upto + 1, last, run, self._nth_item_after)
        return indexed, last

    def _nth_item_after(self, after: int, count: int) -> int | None:
        return self._db.read(_nth_item_after, self._sql, after, count)

    def _index_new(self, conn: sqlite3.Connection, after: int, upto: int) -> int:
        # Another process may have indexed some of them meanwhile: from its mark on.
        after = max(after, conn.execute(self._sql.search_mark).fetchone()[0])
        if after >= upto:
            return 0
        bounds = {"after": after, "upto": upto}
        indexed: int = conn.execute(self._sql.index_new, bounds).rowcount
        conn.execute(self._sql.move_search_mark, bounds)
        return indexed

    def _no_search(self) -> SearchUnavailableError:
        if not self._db.read(has_fts5):
            return SearchUnavailableError(
                f"search needs SQLite's FTS5 module, which the SQLite {sqlite3.sqlite_version} "
                "this Python uses lacks; everything else works. Use a Python whose sqlite3 "
                "has FTS5 (python.org's builds and most Linux distributions' do); the "
                "index is built when such a Python opens the database read-write"
            )
        return SearchUnavailableError(
            f"database {self.description!r} has no search index yet: open it read-write "
            "once, or run 'sessions-dal migrate'"
        )

    # -- sessions openai-agents wrote ----------------------------------------------

    def delete_unowned(self, session_id: str) -> bool:
        deleted = self._db.write(self._delete_unowned, session_id)
        if deleted:
            self._db.empty_wal()
        return deleted

    def _delete_unowned(self, conn: sqlite3.Connection, session_id: str) -> bool:
        sql = self._sql
        # Check, then erase as delete_session does: nobody writes in between,
        # under BEGIN IMMEDIATE.
        if conn.execute(sql.select_unowned_one, (session_id,)).fetchone() is None:
            return False
        conn.execute(sql.scrub_items, (session_id,))
        searchable = self._scrub_index(conn, sql.indexed_of_session, {"session": session_id})
        conn.execute(sql.delete_unowned_items, (session_id, session_id))
        conn.execute(sql.delete_unowned, (session_id, session_id))
        if searchable:
            self._erase_from_index(conn)
        return True

    def claim(self, user_id: str, session_ids: Sequence[str], metadata: str | None,
              now: datetime) -> list[SessionRow]:
        return self._db.write(self._claim_all, user_id, session_ids, metadata, _text(now))

    def _claim_all(self, conn: sqlite3.Connection, user_id: str, session_ids: Sequence[str],
                   metadata: str | None, now: str) -> list[SessionRow]:
        return [self._claim(conn, user_id, session_id, metadata, now)
                for session_id in session_ids]

    def _claim(self, conn: sqlite3.Connection, user_id: str, session_id: str,
               metadata: str | None, now: str) -> SessionRow:
        # Check the owner, then insert: nobody writes in between, under BEGIN IMMEDIATE.
        sql = self._sql
        owner = conn.execute(sql.select_owner, (session_id,)).fetchone()
        if owner is not None:
            if owner[0] != user_id:
                raise OwnedByOther(session_id)
            return _owned(conn.execute(sql.select_one, (session_id, user_id)).fetchone())
        times = conn.execute(sql.select_agent_times, (session_id,)).fetchone()
        if times is None:
            raise NotFound(session_id)
        # The session keeps its age: openai-agents' times, in our format.
        created, updated = (_text(_agents_time(t)) for t in times)
        conn.execute(sql.insert_user, (user_id, now))
        conn.execute(sql.insert_owned, (session_id, user_id, metadata or "{}", created, updated))
        return _owned(conn.execute(sql.select_one, (session_id, user_id)).fetchone())

    # -- the items of one session, as its owner sees them ---------------------------

    def items_page(self, owner: Owner, position: object, limit: int, newest_first: bool
                   ) -> tuple[list[tuple[int, str]], object]:
        statement = self._sql.items[owner.user_id is not None].page[newest_first,
                                                                      position is None]
        after = () if position is None else (position,)
        rows = self._db.fetchall(statement, (*key(owner), *after, limit))
        return rows, rows[-1][0] if rows else position

    # The hot path of add_items: one method, the owned case first.

    def add_items(self, owner: Owner, texts: Sequence[str], now: datetime) -> None:
        self._db.write(self._add_items, owner, texts, _text(now))

    def _add_items(self, conn: sqlite3.Connection, owner: Owner, texts: Sequence[str],
                   now: str) -> None:
        sql, session_id, user_id = self._sql, owner.session_id, owner.user_id
        if user_id is None:
            self._require_owner(conn, owner)
        conn.execute(sql.upsert_agent_session, (session_id,))
        conn.executemany(sql.insert_item, zip(repeat(session_id), texts))
        # Last: the activity trigger the upsert fired must not have the last
        # word. Not ours (any more): the transaction rolls back, nothing written.
        if user_id is not None and conn.execute(sql.touch, (now, session_id, user_id)
                                                ).rowcount == 0:
            raise NotOwned(session_id)

    def pop_item(self, owner: Owner, now: datetime, decode: Callable[[int, str], _T]
                 ) -> tuple[bool, _T | None]:
        return self._db.write(self._pop_item, owner, _text(now), decode)

    def _pop_item(self, conn: sqlite3.Connection, owner: Owner, now: str,
                  decode: Callable[[int, str], _T]) -> tuple[bool, _T | None]:
        # Under BEGIN IMMEDIATE no other pop runs between finding the latest
        # item and deleting it.
        items = self._sql.items[owner.user_id is not None]
        rows = conn.execute(items.pop, key(owner)).fetchall()
        if not rows:
            self._require_owner(conn, owner)
            return False, None
        item_id = rows[0][0]
        item = decode(*rows[0])  # a corrupt row raises here, and stays
        # Overwritten, then deleted, as a delete erases; the index is not
        # merged (a pop is frequent, a merge rewrites the whole index): its
        # words stay in the index's word lists, found by no search, until the
        # next erasing call merges it.
        conn.execute(items.scrub_one, (item_id,))
        self._scrub_index(conn, items.indexed_one, (item_id,))
        conn.execute(items.delete_one, (item_id,))
        if owner.user_id is not None:
            self._touch_or_check(conn, owner, now)
        return True, item

    def clear_items(self, owner: Owner, now: datetime) -> bool:
        cleared = self._db.write(self._clear_items, owner, _text(now))
        if cleared:
            self._db.empty_wal()
        return cleared

    def _clear_items(self, conn: sqlite3.Connection, owner: Owner, now: str) -> bool:
        items = self._sql.items[owner.user_id is not None]
        # A whole conversation goes, its history with it: erased as
        # delete_session erases it.
        cleared = conn.execute(items.scrub_all, key(owner)).rowcount > 0
        if not cleared:
            self._require_owner(conn, owner)
        history = self._erase_history(conn, owner.session_id)
        if not history and not cleared:
            return False
        searchable = False
        if cleared:
            searchable = self._scrub_index(conn, items.indexed_all, key(owner))
            conn.execute(items.clear, key(owner))
        if searchable or (history and conn.execute(
                self._sql.has_search_index).fetchone() is not None):
            self._erase_from_index(conn)
        if owner.user_id is not None:
            self._touch_or_check(conn, owner, now)
        return True

    def compact(self, owner: Owner, texts: Sequence[str], upto: int | None, now: datetime
                ) -> tuple[int, int]:
        return self._db.write(self._compact, owner, texts, upto, _text(now))

    def _compact(self, conn: sqlite3.Connection, owner: Owner, texts: Sequence[str],
                 upto: int | None, now: str) -> tuple[int, int]:
        sql, session_id = self._sql, owner.session_id
        # Under BEGIN IMMEDIATE nobody appends between reading the view and
        # rewriting it: an item appended before is in the view read here.
        self._require_owner(conn, owner)
        plan = plan_compaction(conn, sql, session_id, texts, upto)
        if plan is None:
            return 0, 0
        rows, moved, layer = plan
        old = rows[-1][0] if rows else 0  # the view's last id: every new row comes after
        last = rows[moved - 1][0] if moved else (rows[0][0] - 1 if rows else 0)
        bounds = {"session": session_id, "last": last, "old": old, "layer": layer}
        conn.execute(sql.to_history, bounds)
        # The replacement, then the items kept, copied after it with their times:
        # id order is the view's order, and the replacement takes the time of
        # the first item it replaces.
        conn.execute(sql.upsert_agent_session, (session_id,))
        stamp = rows[0][1] if rows else None
        conn.executemany(sql.insert_item_at, [(session_id, text, stamp) for text in texts])
        kept_layers = [row[0] for row in conn.execute(sql.kept_layers, bounds)]
        conn.execute(sql.copy_kept, bounds)
        new_ids = [row[0] for row in conn.execute(sql.new_ids, (session_id, old))]
        conn.execute(sql.delete_old_marks, (session_id, old))
        # The old rows' index rows too (their copies are indexed by the next
        # search): overwritten, then taken out by the delete trigger.
        self._scrub_index(conn, sql.indexed_old, bounds)
        for statement in sql.delete_old:
            conn.execute(statement, (session_id, old))
        marks = [(item_id, session_id, layer) for item_id in new_ids[:len(texts)]]
        marks += [(item_id, session_id, was) for item_id, was
                  in zip(new_ids[len(texts):], kept_layers, strict=True) if was is not None]
        conn.executemany(sql.mark_replacement, marks)
        if owner.user_id is not None:
            self._touch_or_check(conn, owner, now)
        return layer, moved

    def _erase_history(self, conn: sqlite3.Connection, session_id: str) -> bool:
        """Erase a session's compacted items; whether it had any."""
        if conn.execute(self._sql.scrub_history, (session_id,)).rowcount == 0:
            conn.execute(self._sql.clear_history[1], (session_id,))  # stale marks
            return False
        for statement in self._sql.clear_history:
            conn.execute(statement, (session_id,))
        return True

    def _touch_or_check(self, conn: sqlite3.Connection, owner: Owner, now: str) -> None:
        """Move an owned session's updated_at (or check an unowned one is still nobody's)."""
        if owner.user_id is None:
            self._require_owner(conn, owner)
        elif conn.execute(self._sql.touch, (now, *owner)).rowcount == 0:
            raise NotOwned(owner.session_id)

    def _require_owner(self, conn: sqlite3.Connection, owner: Owner) -> None:
        if not conn.execute(self._sql.items[owner.user_id is not None].mine,
                            key(owner)).fetchone()[0]:
            raise NotOwned(owner.session_id)

    # -- the whole database --------------------------------------------------------

    def _info(self, conn: sqlite3.Connection) -> StoreInfo:
        users, owned, unowned, items = conn.execute(self._sql.count_all).fetchone()
        journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if self.read_only and _is_wal_file(self._real):
            journal_mode = "wal"  # an immutable connection reports "delete"
        return StoreInfo(schema_version(conn)[0], bool(pending_steps(conn)),
                         users, owned, unowned, items,
                         conn.execute(self._sql.count_history).fetchone()[0],
                         {"sqlite_version": sqlite3.sqlite_version, "journal_mode": journal_mode})

    def _check(self, conn: sqlite3.Connection) -> list[str]:
        problems = _check(conn)
        if problems or not has_fts5(conn) or conn.execute(
                self._sql.has_search_index).fetchone() is None:
            return problems  # a damaged file first; an index only with FTS5 to read it
        sql = self._sql
        everything: dict[str, int] = {"after": -1, "upto": 2 ** 63 - 1}  # every title
        checks: list[tuple[str, str, Mapping[str, int]]] = [
            (sql.index_missing[conn.execute(sql.has_search_state).fetchone() is not None],
             MISSING, {}),
            (sql.index_extra, EXTRA, {}),
            (sql.index_wrong_owner, WRONG_OWNER, {}),
            (sql.index_wrong_titles, WRONG_TITLES, everything),
        ]
        if conn.execute(sql.has_history_index).fetchone() is not None:
            checks.append((sql.index_wrong_history, WRONG_HISTORY, everything))
        return [problem for statement, what, parameters in checks
                for problem in index_problem(what, conn.execute(statement, parameters))]

    def reindex(self) -> int:
        # What is not indexed yet is not damage: indexed first, and not counted.
        self.update_search_index()
        repaired = 0
        # In batches, each a write transaction of its own: SQLite's one writer
        # at a time means a batch sees every other write whole, and the
        # triggers keep right what is written between batches.
        def batch(part: str) -> Callable[[int, int], None]:
            def run(after: int, upto: int) -> None:
                nonlocal repaired
                repaired += self._db.write(self._repair, part, after, upto)
            return run

        parts = [("items", INDEX_ITEMS), ("titles", INDEX_TITLES)]
        if self._db.fetchone(self._sql.has_history_index, ()) is not None:
            parts.append(("history", INDEX_HISTORY))
        for part, step in parts:
            low, high, stored_low, stored_high = self._db.fetchone(self._sql.index_ranges[part])
            lows = [n for n in (low, stored_low) if n is not None]
            highs = [n for n in (high, stored_high) if n is not None]
            if lows:
                in_batches(step, min(lows), max(highs), batch(part),
                           self._nth_item_after if part == "items" else None)
        if repaired:  # what was rewritten or deleted leaves the index, as a delete does
            self._db.write(self._erase_from_index)
            self._db.empty_wal()
        return repaired

    def _repair(self, conn: sqlite3.Connection, part: str, after: int, upto: int) -> int:
        bounds = {"after": after, "upto": upto}
        ids = [row[0] for row in conn.execute(self._sql.index_differs[part], bounds)]
        if ids:
            listed = {**bounds, "ids": json.dumps(ids)}
            for statement in self._sql.index_rewrite[part]:
                conn.execute(statement, listed)
        if part == "items":  # every item up to here is indexed now (batches go up)
            conn.execute(self._sql.move_search_mark, bounds)
        return len(ids)

    def pending_migrations(self) -> list[str]:
        return self._db.read(pending_steps)

    def backup(self, target: str) -> None:
        if is_database_file(target, self._real):
            raise ValueError(
                f"backup target {target!r} is the database itself or one of its "
                "-wal/-shm/-journal files; choose another name"
            )
        if os.path.lexists(target):
            raise ValueError(f"backup target {target!r} already exists; choose a new name")
        with temporary_beside(target, ".sessions-backup-") as temporary:
            copy = sqlite3.connect(temporary)
            try:
                self._db.read(_backup_into, copy)
            finally:
                copy.close()
            publish(temporary, target, overwrite=False)

    def vacuum(self) -> int:
        # VACUUM rewrites the file without its free pages (what deletes,
        # prunes and compactions left), in one transaction of its own: the
        # lock is held, writers wait. The WAL holds the new pages until a
        # checkpoint: emptied, the file is its new size.
        path = self._real
        before = _size(path)
        self._db.read(_vacuum)
        self._db.empty_wal()
        return max(before - _size(path), 0)

    def export(self, work: Callable[[Any], _T]) -> _T:
        return self._db.snapshot(
            lambda conn, verify: work(_Exporter(conn, self._sql, verify)))

    def import_records(self, work: Callable[[Any], _T]) -> _T:
        importer: _Importer | None = None

        def run(conn: sqlite3.Connection) -> _T:
            nonlocal importer
            importer = _Importer(conn, self._sql, self._scrub_index)
            result = work(importer)
            if importer.replaced_indexed:
                self._erase_from_index(conn)  # once, for every session replaced
            return result

        result = self._db.write(run)
        if importer is not None and importer.replaced:
            self._db.empty_wal()
        return result


class _Exporter(SharedExporter):
    """Reads of one snapshot, page by page (the ``Exporter`` of ``sessions_dal._store``)."""

    _first_session = ("", 0)
    _session_row = staticmethod(_owned)
    _user_time = staticmethod(_user_time)

    def __init__(self, conn: sqlite3.Connection, sql: SQL, verify: Callable[[], None]) -> None:
        self._conn, self._sql, self.verify = conn, sql, verify

    def _page(self, statement: str, parameters: Sequence[object]) -> list[Any]:
        return self._conn.execute(statement, parameters).fetchall()

    def unowned(self) -> Iterator[tuple[str, object, object]]:
        # rowid order: an import re-creates the order unowned sessions list in.
        for _, session_id, created, updated in paged(
                lambda after, size: self._page(self._sql.export_unowned, (*after, size)),
                (0,), lambda row: (row[0],)):
            yield session_id, created, updated

    def items(self, session_id: str) -> Iterator[tuple[int, str]]:
        yield from paged(
            lambda after, size: self._page(self._sql.export_items, (session_id, *after, size)),
            (0,), lambda row: (row[0],))

    def history(self, session_id: str) -> Iterator[tuple[int, bool, str]]:
        for layer, replaced, text, _ in paged(
                lambda after, size: self._page(self._sql.export_history,
                                               (session_id, *after, size)),
                (0, 0), lambda row: (row[0], row[3])):
            yield layer, bool(replaced), text


class _Importer:
    """The writes of one import, inside its transaction (``sessions_dal._store.Importer``)."""

    def __init__(self, conn: sqlite3.Connection, sql: SQL,
                 scrub_index: Callable[[sqlite3.Connection, str,
                                        Sequence[object] | Mapping[str, object]], bool]
                 ) -> None:
        self._conn, self._sql, self._scrub_index = conn, sql, scrub_index
        self.replaced = False
        """A session was replaced: its texts erased, the WAL to empty after COMMIT."""
        self.replaced_indexed = False
        """... and the search index's rows of it overwritten: the index to merge."""

    def add_user(self, user_id: str, created_at: datetime) -> None:
        self._conn.execute(self._sql.insert_user, (user_id, _text(created_at)))

    def add_session(self, row: SessionRow, replace: bool,
                    agents_times: tuple[object, object]) -> None:
        conn, sql, session_id = self._conn, self._sql, row.session_id
        # Check, then insert: nobody writes in between, under BEGIN IMMEDIATE.
        if conn.execute(sql.exists, (session_id, session_id)).fetchone() is not None:
            if not replace:
                raise IdTaken(session_id)
            # Erased as delete_session erases (whoever owned it): texts
            # overwritten first; the index merged once, at the end.
            conn.execute(sql.scrub_items, (session_id,))
            conn.execute(sql.scrub_owned_anyones, (session_id,))
            if self._scrub_index(conn, sql.indexed_of_session, {"session": session_id}):
                self.replaced_indexed = True
            self.replaced = True
            for statement in sql.delete_anywhere:
                conn.execute(statement, (session_id,))
        if row.user_id is None:
            conn.execute(sql.insert_unowned, (session_id, *agents_times))
            return
        created, updated = _text(row.created_at), _text(row.updated_at)
        conn.execute(sql.insert_user, (row.user_id, created))
        conn.execute(sql.insert_agent_session_plain, (session_id,))
        conn.execute(sql.insert_owned, (session_id, row.user_id, row.metadata, created, updated))

    def add_items(self, session_id: str, texts: Sequence[str]) -> None:
        self._conn.executemany(self._sql.insert_item, zip(repeat(session_id), texts))

    def add_history(self, session_id: str, rows: Sequence[tuple[int, bool, str]]) -> None:
        # Ids only order a layer's items: numbered from the session's last.
        last = self._conn.execute(self._sql.last_history_id, (session_id,)).fetchone()[0]
        self._conn.executemany(self._sql.insert_history, [
            (session_id, last + n, layer, replaced, text)
            for n, (layer, replaced, text) in enumerate(rows, start=1)])

    def mark_replacements(self, session_id: str, marks: Sequence[tuple[int, int]]) -> None:
        ids = [row[0] for row in self._conn.execute(self._sql.item_ids, (session_id,))]
        self._conn.executemany(self._sql.mark_replacement,
                               [(ids[n], session_id, layer) for n, layer in marks])


# -- rows and times ----------------------------------------------------------------


def _text(moment: datetime) -> str:
    """A time as stored: ISO 8601, UTC, microseconds, fixed width, so text order is time order.

    The public layer hands over UTC times (``sessions_dal._time.now``); any
    other offset is converted.
    """
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="microseconds")


def _nth_item_after(conn: sqlite3.Connection, sql: SQL, after: int, count: int) -> int | None:
    """The id of the ``count``-th item after id ``after`` (``None``: fewer are left)."""
    row = conn.execute(sql.nth_item_after, {"after": after, "count": count}).fetchone()
    return None if row is None else int(row[0])


def _match(user_id: str, session_id: str | None, terms: tuple[Term, ...]) -> str:
    """An FTS5 query: the owner's tokens, then the terms (only letters and digits:
    nothing of the user's query can be FTS5 syntax)."""
    owner = f'owner:"u{user_id.encode().hex()}"'
    if session_id is not None:
        owner += f' AND owner:"s{session_id.encode().hex()}"'
    return f"{owner} AND words:({_words(terms)})"


def _words(terms: tuple[Term, ...]) -> str:
    """The terms as an FTS5 query: every one, each a phrase (or a phrase's prefix)."""
    return " AND ".join(
        '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "") for term in terms)


_fromisoformat = datetime.fromisoformat


def _parse(text: object) -> datetime:
    value = datetime.fromisoformat(text)  # type: ignore[arg-type]
    # sessions_dal writes UTC with an offset; a bare time was edited in by hand.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _session_time(session_id: str, column: str, text: object) -> datetime:
    return _stored_time(text, CorruptSessionError,
                        f"session {session_id!r} (its agent_user_sessions row)", column)



def _stored_time(text: object, error: type[CorruptDataError], row: str, column: str
                 ) -> datetime:
    """A time sessions_dal stored, or ``error`` naming the row that holds something else."""
    try:
        return _parse(text)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{row} has a {column} that is not a timestamp ({text!r}); repair or delete "
            "that row with any SQLite tool"
        ) from exc


_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _agents_time(text: str | None) -> datetime:
    """Read an openai-agents ``CURRENT_TIMESTAMP`` ('YYYY-MM-DD HH:MM:SS', UTC).

    A missing or unreadable value (the column is nullable) reads as the epoch,
    so such a session sorts as the oldest rather than failing a listing.
    """
    try:
        return _parse(text)
    except (TypeError, ValueError):
        return _UNKNOWN_TIME


def _is_wal_file(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(20)[18:20] == b"\x02\x02"
    except OSError:
        return False


def _check(conn: sqlite3.Connection) -> list[str]:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems == ["ok"]:
        problems = []
    problems += [
        f"foreign key: {table} row {rowid} refers to a missing {parent} row"
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
    ]
    return problems


def _vacuum(conn: sqlite3.Connection) -> None:
    conn.execute("VACUUM")


def _size(path: str) -> int:
    """The file's size with its WAL's, in bytes (0 for a database in memory)."""
    total = 0
    for name in (path, f"{path}-wal"):
        with suppress(OSError, ValueError):  # no WAL (or in memory): nothing there
            total += os.path.getsize(name)
    return total


def _backup_into(conn: sqlite3.Connection, copy: sqlite3.Connection) -> None:
    conn.backup(copy)
