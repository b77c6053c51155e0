"""PostgresStore: the store of one PostgreSQL database (schema) behind ``SessionRepository``.

Each public method is one transaction (:meth:`Database.write`) or one
statement. Under READ COMMITTED nothing is serial for free, as it is under
SQLite's single writer lock: each read-then-write takes the row locks that
make it atomic, always in one order, so two calls never wait on each other
in a cycle:

    the user's row -> the ownership row -> openai-agents' session row -> items

``agent_sessions``' row is the one openai-agents' ``SQLAlchemySession`` locks
before it appends, pops or clears, so its writers and ours take turns too.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeVar, cast

import psycopg

from ..._search import Term, fold, split_words
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
    DatabaseError,
    DatabaseLockedError,
    ReadOnlyDatabaseError,
    SearchUnavailableError,
)
from .._index import (
    EXTRA,
    INDEX_ITEMS,
    INDEX_NEW,
    INDEX_TITLES,
    MISSING,
    WRONG_HISTORY,
    WRONG_OWNER,
    WRONG_TITLES,
    index_problem,
)
from .._migrations import PROGRESS, in_batches
from .._shared import SharedExporter, SharedStore, key, paged, plan_compaction
from ._grants import grant_statements
from ._opening import describe
from ._runner import Database
from ._schema import (
    SCHEMA_VERSION,
    apply_migrations,
    check_owners,
    check_server,
    create_stand_ins,
    first_schema,
    inspect,
    missing_tables,
    owner_to_act_as,
    pending_steps,
    schema_version,
)
from ._sql import SQL, quote

__all__ = ["MAX_TEXT_LENGTH", "SCHEMA_VERSION", "PostgresStore"]

_T = TypeVar("_T")
_Conn = psycopg.Connection[Any]
MAX_TEXT_LENGTH = 1_000_000_000
"""Under PostgreSQL's 1 GB limit on one field and on one protocol message."""


DRAIN_BATCH = 2_000
"""Item ids a search indexes from the queue per transaction. Each batch holds
the index's lock, which deletes, claims and title changes wait for: small
batches (about 0.2 s here) keep that wait short under load."""


def _owned(row: Any) -> SessionRow:
    session_id, user_id, metadata, created, updated, seq = row
    if created is None or updated is None:
        column = "created_at" if created is None else "updated_at"
        raise CorruptSessionError(
            f"session {session_id!r} (its agent_user_sessions row) has a {column} that is "
            "not a finite timestamp; repair or delete that row with psql"
        )
    return SessionRow(session_id, user_id, metadata, _utc(created), _utc(updated),
                      (created, updated, seq))


def _unowned(session_id: str, created: datetime, updated: datetime) -> SessionRow:
    return SessionRow(session_id, None, "{}", _utc(created), _utc(updated))


def _user_time(user_id: str, created: datetime | None) -> datetime:
    if created is None:
        raise CorruptDataError(
            f"user {user_id!r} (its agent_users row) has a created_at that is not a finite "
            "timestamp; repair or delete that row with psql"
        )
    return _utc(created)


class PostgresStore(SharedStore):
    """Users, sessions and items in one PostgreSQL database, beside SQLAlchemySession's tables.

    Opening connects (``CONNECT_TIMEOUT``), checks the tables and applies
    pending migrations (unless ``read_only``, which never writes).
    """

    backend = "postgresql"
    max_text_length = MAX_TEXT_LENGTH

    _db: Database  # this backend's runner, with more than SharedStore needs
    lacks: Mapping[str, str] = MappingProxyType({
        "backup": "backup() copies SQLite files; for PostgreSQL use pg_dump, or export_to() "
                  "for a JSON Lines copy any backend can import",
        "vacuum": "vacuum() gives an SQLite file's free pages back; PostgreSQL's autovacuum "
                  "makes deleted rows' room reusable by itself, and the tables' owner can "
                  "run VACUUM FULL to give it back to the file system (it locks the tables "
                  "while it runs)"})

    # How this driver's rows become the contract's (SharedStore reads through these).
    _session_row = staticmethod(_owned)
    _unowned_row = staticmethod(_unowned)
    _user_time = staticmethod(_user_time)
    _no_limit = None  # LIMIT NULL is LIMIT ALL

    def __init__(self, url: str, *, busy_timeout: float, pool_size: int,
                 sessions_table: str, messages_table: str, read_only: bool) -> None:
        self.read_only = read_only
        self.messages_table = messages_table
        path = describe(url)
        # A stand-in until the probe connection says which schema: the names
        # are checked here, before connecting.
        self._sql = SQL("public", sessions_table, messages_table)

        stand_ins: list[Sequence[str]] = []  # a read-only repository's, found once

        acting: list[str] = []  # the owner a superuser acts as (see owner_to_act_as)

        def first(conn: _Conn) -> None:
            check_server(conn, path)
            schema, exists = first_schema(conn)
            self._sql = SQL(schema, sessions_table, messages_table)
            if not exists:
                stand_ins.append(("agent_sessions", "agent_messages", "agent_users",
                                  "agent_user_sessions"))
            else:
                # As this role first: a superuser must never take on, by acting
                # as their owner, objects that another role made to spy.
                check_owners(conn, path, self._sql)
                acting.extend(filter(None, [owner_to_act_as(conn, self._sql)]))

        def configure(conn: _Conn) -> None:
            if acting:
                conn.execute("SELECT set_config('role', %s, false)", acting)
            if not read_only:
                return
            if not stand_ins:  # the first connection's, once its settings are pinned
                stand_ins.append(missing_tables(conn, path, self._sql))
            if stand_ins[0] and not self._sql.temporary:
                self._sql = SQL(self._sql.schema, sessions_table, messages_table, stand_ins[0])
            create_stand_ins(conn, self._sql)

        self._db = Database(url, busy_timeout=busy_timeout, pool_size=pool_size,
                            read_only=read_only, configure=configure, first=first)
        self.description = self._db.path
        self.schema = self._sql.schema
        """The schema of every table this repository uses."""
        if not read_only:
            try:
                self._db.read(apply_migrations, self._db.path, self._sql)
            except BaseException:
                self._db.close()
                raise

    def close(self) -> None:
        """Close the pool; later calls raise ``RepositoryClosedError``."""
        self._db.close()

    # -- a user's sessions --------------------------------------------------------

    def create_session(self, user_id: str, session_id: str, metadata: str, now: datetime
                       ) -> None:
        self._db.write(_created, session_id, first=(self._sql.create_owned, {
            "user": user_id, "session": session_id, "metadata": metadata, "now": now}))

    def _update_metadata(self, conn: _Conn, user_id: str, session_id: str,
                         change: Callable[[str], str]) -> SessionRow | None:
        # FOR UPDATE: a merge running meanwhile waits, then reads this one's result.
        row = conn.execute(self._sql.lock_metadata, (session_id, user_id)).fetchone()
        if row is None:
            return None
        new = conn.execute(self._sql.update_metadata,
                           (change(row[0]), session_id, user_id)).fetchone()
        return _owned(new)

    def fork(self, user_id: str, session_id: str, new_id: str, upto: int | None,
             metadata: Callable[[int], str], now: datetime) -> None:
        self._db.write(self._fork, user_id, session_id, new_id, upto, metadata, now)

    def _fork(self, conn: _Conn, user_id: str, session_id: str, new_id: str,
              upto: int | None, metadata: Callable[[int], str], now: datetime) -> None:
        sql = self._sql
        # The store's lock order: the user's row, ownership rows, agent_sessions rows.
        conn.execute(sql.upsert_user, (user_id, now))
        if conn.execute(sql.share_owned, (session_id, user_id)).fetchone() is None:
            raise NotOwned(session_id)
        conn.execute(sql.share_agent_session, (session_id,))
        (count,) = cast("tuple[int]", conn.execute(sql.count_items, (session_id,)).fetchone())
        copied = count if upto is None else min(count, upto)
        if (conn.execute(sql.insert_owned, (new_id, user_id, metadata(copied), now, now)
                         ).fetchone() is None
                or conn.execute(sql.insert_agent_session, (new_id,)).rowcount == 0):
            raise IdTaken(new_id)
        # Which copied items are a compaction's replacement (a session that never
        # compacted has no marks: no item's is looked up).
        originals = (conn.execute(sql.first_rows, (session_id, copied)).fetchall()
                     if conn.execute(sql.has_marks, (session_id,)).fetchone() else [])
        conn.execute(sql.copy_items, (new_id, session_id, copied))
        conn.execute(sql.copy_history, {"new": new_id, "session": session_id})
        if any(layer is not None for _, layer in originals):
            copies = [row[0] for row in conn.execute(sql.item_ids, (new_id,))]
            with conn.cursor() as cursor:
                cursor.executemany(sql.mark_replacement, [
                    (item_id, new_id, layer) for item_id, (_, layer)
                    in zip(copies, originals, strict=True) if layer is not None])

    def delete_session(self, user_id: str, session_id: str) -> bool:
        return self._db.write(self._delete_session, user_id, session_id)

    def _delete_session(self, conn: _Conn, user_id: str, session_id: str) -> bool:
        sql = self._sql
        if conn.execute(sql.delete_owned, (session_id, user_id)).rowcount == 0:
            return False
        # The agent_sessions row before the items, as SQLAlchemySession's pop
        # and clear lock it: either order alone would deadlock with them.
        conn.execute(sql.lock_agent_session, (session_id,))
        conn.execute(sql.delete_items, (session_id,))
        conn.execute(sql.delete_agent_session, (session_id,))
        return True

    def delete_user(self, user_id: str) -> tuple[bool, int, int]:
        return self._db.write(self._delete_user, user_id)

    def _delete_user(self, conn: _Conn, user_id: str) -> tuple[bool, int, int]:
        sql = self._sql
        # The user's row first: a create_session for this user waits, and then
        # creates the user anew.
        if conn.execute(sql.lock_user, (user_id,)).fetchone() is None:
            return False, 0, 0
        ids = [row[0] for row in conn.execute(sql.delete_user_owned, (user_id,))]
        conn.execute(sql.lock_agent_sessions, (ids,))
        items = conn.execute(sql.delete_sessions_items, (ids,)).rowcount
        conn.execute(sql.delete_agent_sessions, (ids,))
        conn.execute(sql.delete_user, (user_id,))
        return True, len(ids), items

    def prune_candidates(self, user_id: str | None, cutoff: datetime | None,
                         keep_last: int | None, unowned: bool
                         ) -> list[tuple[str, str | None, object]]:
        sql = self._sql
        if unowned and cutoff is not None:
            return [(session_id, None, stamp) for session_id, stamp in self._db.fetchall(
                sql.prune_unowned_candidates, (cutoff,))]
        by_user = () if user_id is None else (user_id,)
        return [(session_id, owner, (updated, agents_updated))
                for session_id, owner, updated, agents_updated in self._db.fetchall(
                    sql.prune_candidates[user_id is not None], (*by_user, keep_last, cutoff))]

    def count_items_of(self, session_ids: Sequence[str]) -> int:
        count: int = self._db.fetchone(self._sql.count_items_of, (list(session_ids),))[0]
        return count

    def prune(self, rows: Sequence[tuple[str, str | None, object]], last: bool
              ) -> tuple[int, int]:
        return self._db.write(self._prune, rows)

    def _prune(self, conn: _Conn, rows: Sequence[tuple[str, str | None, object]]
               ) -> tuple[int, int]:
        sql = self._sql
        owned = [(session_id, user_id, cast("tuple[datetime, str | None]", stamp))
                 for session_id, user_id, stamp in rows if user_id is not None]
        nobodys = [row for row in rows if row[1] is None]
        # As found, or not at all: written since (or claimed), a session stays.
        # The ownership rows first: our writers wait for those.
        locked = conn.execute(sql.lock_owned_as_found, (
            [r[0] for r in owned], [r[1] for r in owned], [r[2][0] for r in owned])).fetchall()
        # Then the agent_sessions rows, which SQLAlchemySession locks to append:
        # an append that committed meanwhile (its trigger skipped our locked row)
        # shows in its own stamp, and that session stays.
        found = {session_id: stamp[1] for session_id, _, stamp in owned}
        ours = [session_id for _, session_id in locked]
        now = dict(conn.execute(sql.lock_agent_stamps, (ours,)).fetchall())
        keep = {session_id for session_id in ours if now.get(session_id) != found[session_id]}
        gone = [session_id for (session_id,) in conn.execute(
            sql.delete_owned_seqs, ([seq for seq, session_id in locked
                                     if session_id not in keep],)).fetchall()]
        gone += [session_id for (session_id,) in conn.execute(sql.lock_unowned_as_found, (
            [r[0] for r in nobodys], [r[2] for r in nobodys])).fetchall()]
        if not gone:
            return 0, 0
        # The agent_sessions rows before the items, as in _delete_session.
        conn.execute(sql.lock_agent_sessions, (gone,))
        items = conn.execute(sql.delete_sessions_items, (gone,)).rowcount
        conn.execute(sql.delete_agent_sessions, (gone,))
        return len(gone), items

    def search(self, user_id: str, terms: tuple[Term, ...], session_id: str | None,
               limit: int | None) -> list[SearchRow]:
        sql = self._sql
        indexed, kept = self._db.fetchone(sql.search_tables, (
            sql.search_table, sql.table("sessions_dal_history")))
        if not indexed:
            raise self._no_search()
        query = _tsquery(user_id, session_id, terms)
        if query is None:
            return []
        parameters = {"query": query, "limit": limit, "user": user_id}
        if not self._db.read_only:
            # A delete may hold the index past busy_timeout, or this role may
            # not take rows out of the queue (granted before version 6): then
            # searched as a read-only repository searches.
            with contextlib.suppress(DatabaseLockedError, ReadOnlyDatabaseError):
                self._index_queued()
        # The queue's items, indexed or not, are searched with their words
        # computed as the search reads (usually none: a read-write search has
        # just indexed them): what a compaction copied since, or another
        # transaction holds, or what a read-only repository cannot index.
        statements = self._sql.search_with_queued
        if self._db.read_only and not self._db.fetchone(
                self._sql.table_exists, (self._sql.queue_table,))[0]:
            statements = self._sql.search  # version 5 or older: triggers kept it whole
        rows = self._db.fetchall(statements[kept], parameters)
        # (id, text, the session's columns, layer, kind, ...): see SQL.search
        return [SearchRow(_owned(row[2:8]), row[0] if row[9] else None, row[1], row[8])
                for row in rows]

    def _index_queued(self) -> int:
        """Index the items of the queue's rows committed before this call began,
        in batches; return how many got index rows (those with words). Rows
        another transaction holds (a queue compaction, schema.sql version 6) are
        not waited for: a search computes their items' words as it reads."""
        last, rows = self._db.fetchone(self._sql.queue_last)
        if last is None:
            return 0  # the common case: one read
        report, taken, indexed = PROGRESS.get(), 0, 0
        while True:
            done, found = self._db.write(self._index_queue_batch, last)
            if done is None:
                return indexed
            taken, indexed = taken + done, indexed + found
            if report is not None and done:
                report(INDEX_NEW, min(taken / rows, 1.0))

    def _index_queue_batch(self, conn: _Conn, last: int) -> tuple[int | None, int]:
        """One batch: how many queue rows were done (None: none was free), and
        how many items got index rows."""
        sql = self._sql
        conn.execute(sql.lock_index)
        conn.execute(sql.no_parallel)
        rows = conn.execute(sql.queue_oldest, (last, DRAIN_BATCH)).fetchall()
        if not rows:
            return None, 0
        done: list[int] = []
        firsts: list[int] = []
        lasts: list[int] = []
        gone: tuple[list[int], list[int]] = ([], [])
        width = 0
        for row_id, first, upto, deleted in rows:
            if deleted:  # ids a delete at REPEATABLE READ or SERIALIZABLE took
                done.append(row_id)
                gone[0].append(first)
                gone[1].append(upto)
                continue
            if firsts and width + upto - first + 1 > DRAIN_BATCH:
                break  # whole rows while they span DRAIN_BATCH ids
            done.append(row_id)
            firsts.append(first)
            lasts.append(upto)
            width += upto - first + 1
            if width > DRAIN_BATCH:
                # One wide range (a compacted queue, or far-apart ids): its
                # first DRAIN_BATCH items, the rest left in the row.
                cut = conn.execute(sql.nth_item_after,
                                   {"after": first - 1, "count": DRAIN_BATCH}).fetchone()
                if cut is not None and cut[0] < upto:
                    lasts[-1] = cut[0]
                    conn.execute(sql.queue_shrink, (cut[0] + 1, row_id))
                    done.pop()
                break
        if done:
            conn.execute(sql.queue_delete, (done,))
        if gone[0]:
            conn.execute(sql.erase_ranges, gone)
        found = conn.execute(sql.index_ranges, {"firsts": firsts, "lasts": lasts}).fetchone()
        return len(done), int(found[0])  # type: ignore[index]

    # -- sessions openai-agents wrote ----------------------------------------------

    def delete_unowned(self, session_id: str) -> bool:
        return self._db.write(self._delete_unowned, session_id)

    def _delete_unowned(self, conn: _Conn, session_id: str) -> bool:
        sql = self._sql
        # Lock, then check the owner in a statement of its own: a claim that
        # committed while this waited is seen.
        if (conn.execute(sql.lock_agent_session, (session_id,)).fetchone() is None
                or conn.execute(sql.is_owned, (session_id,)).fetchone() is not None):
            return False
        conn.execute(sql.delete_items, (session_id,))
        conn.execute(sql.delete_agent_session, (session_id,))
        return True

    def claim(self, user_id: str, session_ids: Sequence[str], metadata: str | None,
              now: datetime) -> list[SessionRow]:
        return self._db.write(self._claim_all, user_id, session_ids, metadata, now)

    def _claim_all(self, conn: _Conn, user_id: str, session_ids: Sequence[str],
                   metadata: str | None, now: datetime) -> list[SessionRow]:
        conn.execute(self._sql.upsert_user, (user_id, now))
        return [self._claim(conn, user_id, session_id, metadata or "{}")
                for session_id in session_ids]

    def _claim(self, conn: _Conn, user_id: str, session_id: str, metadata: str) -> SessionRow:
        sql = self._sql
        # agent_sessions' row first: whoever holds it (a compaction, a pop or a
        # delete_unowned of the session, SQLAlchemySession appending) commits
        # before the ownership row and its trigger's index rows are touched.
        # Taken after them, a compaction deleting those index rows meanwhile
        # waited for the claim, which waited for it: a deadlock. Then the
        # ownership row decides: of two claimers, the second inserts nothing.
        row = None
        if conn.execute(sql.lock_agent_session, (session_id,)).fetchone() is not None:
            row = conn.execute(sql.claim, (user_id, metadata, session_id)).fetchone()
        if row is not None:
            # Now ours: a delete_unowned waiting on the row sees the owner.
            conn.execute(sql.own_index_rows, (user_id, session_id, user_id))
            return _owned(row)
        owner = conn.execute(sql.select_owner, (session_id,)).fetchone()
        if owner is None:
            raise NotFound(session_id)
        if owner[0] != user_id:
            raise OwnedByOther(session_id)
        return _owned(conn.execute(sql.select_one, (session_id, user_id)).fetchone())

    # -- the items of one session, as its owner sees them ---------------------------

    def items_page(self, owner: Owner, position: object, limit: int, newest_first: bool
                   ) -> tuple[list[tuple[int, str]], object]:
        statement = self._sql.items[owner.user_id is not None].page[newest_first,
                                                                      position is None]
        after = () if position is None else cast("tuple[str, int]", position)
        rows = self._db.fetchall(statement, (*key(owner), *after, limit))
        if not rows:
            return [], position
        row_id, _, created = rows[-1]
        return [(row[0], row[1]) for row in rows], (created, row_id)

    def add_items(self, owner: Owner, texts: Sequence[str], now: datetime) -> None:
        if owner.user_id is not None:  # the hot path: one statement
            self._db.write(_appended, owner.session_id, first=(self._sql.append_owned, {
                "now": now, "session": owner.session_id, "user": owner.user_id,
                "texts": json.dumps(list(texts))}))
            return
        self._db.write(self._add_unowned, owner.session_id, texts)

    def _add_unowned(self, conn: _Conn, session_id: str, texts: Sequence[str]) -> None:
        sql = self._sql
        locked = conn.execute(sql.upsert_agent_session, (session_id,)).fetchone()
        self._require_unowned(conn, session_id)
        _insert_items(conn, sql, session_id, texts, locked[0])  # type: ignore[index]

    def pop_item(self, owner: Owner, now: datetime, decode: Callable[[int, str], _T]
                 ) -> tuple[bool, _T | None]:
        return self._db.write(self._pop_item, owner, now, decode)

    def _pop_item(self, conn: _Conn, owner: Owner, now: datetime,
                  decode: Callable[[int, str], _T]) -> tuple[bool, _T | None]:
        # Locked first, then the latest item found: a pop running meanwhile
        # waits, then finds the item before this one (never "none" too early).
        self._lock(conn, owner)
        row = conn.execute(self._sql.items[owner.user_id is not None].pop,
                           key(owner)).fetchone()
        if row is None:
            return False, None
        item = decode(*row)  # a corrupt row raises here, and stays
        if owner.user_id is not None:
            conn.execute(self._sql.touch, (now, *owner))
        return True, item

    def clear_items(self, owner: Owner, now: datetime) -> bool:
        return self._db.write(self._clear_items, owner, now)

    def _clear_items(self, conn: _Conn, owner: Owner, now: datetime) -> bool:
        self._lock(conn, owner)
        # The items and the history: a whole conversation goes.
        cleared = conn.execute(self._sql.items[owner.user_id is not None].clear,
                               key(owner)).rowcount
        erased = conn.execute(self._sql.clear_history[0], (owner.session_id,)).rowcount
        conn.execute(self._sql.clear_history[1], (owner.session_id,))
        if not (cleared or erased):
            return False
        if owner.user_id is not None:
            conn.execute(self._sql.touch, (now, *owner))
        return True

    def compact(self, owner: Owner, texts: Sequence[str], upto: int | None, now: datetime
                ) -> tuple[int, int]:
        return self._db.write(self._compact, owner, texts, upto, now)

    def _compact(self, conn: _Conn, owner: Owner, texts: Sequence[str], upto: int | None,
                 now: datetime) -> tuple[int, int]:
        sql, session_id = self._sql, owner.session_id
        # Locked as a pop locks: no append, pop or compaction of this session
        # (ours or SQLAlchemySession's) lands between reading the view and
        # rewriting it.
        self._lock(conn, owner)
        plan = plan_compaction(conn, sql, session_id, texts, upto)
        if plan is None:
            return 0, 0
        rows, moved, layer = plan
        if moved:
            conn.execute(sql.to_history, {"layer": layer, "ids": [row[0] for row in rows[:moved]]})
        kept = rows[moved:]
        copies = conn.execute(sql.copy_rows, ([row[0] for row in kept],)).fetchall()
        if rows:
            conn.execute(sql.delete_marks, ([row[0] for row in rows],))
            conn.execute(sql.delete_rows, ([row[0] for row in rows],))
        # The replacement, then the items kept (their times): (created_at, id)
        # order is the view's, the replacement at the time of its first item.
        stamp = rows[0][1] if rows else conn.execute(sql.upsert_agent_session,
                                                     (session_id,)).fetchone()[0]  # type: ignore[index]
        new_ids = [row[0] for row in conn.execute(sql.insert_in_order, {
            "session": session_id, "texts": [*texts, *(text for text, _ in copies)],
            "times": [stamp] * len(texts) + [at for _, at in copies]})]
        marks = [(item_id, session_id, layer) for item_id in new_ids[:len(texts)]]
        marks += [(item_id, session_id, row[2]) for item_id, row
                  in zip(new_ids[len(texts):], kept, strict=True) if row[2] is not None]
        if marks:
            with conn.cursor() as cursor:
                cursor.executemany(sql.mark_replacement, marks)
        if owner.user_id is not None:
            conn.execute(sql.touch, (now, *owner))
        return layer, moved

    def _lock(self, conn: _Conn, owner: Owner) -> None:
        """Lock the session for a pop or clear, in the store's lock order; check its owner."""
        sql = self._sql
        if owner.user_id is not None:
            if conn.execute(sql.lock_owned, owner).fetchone() is None:
                raise NotOwned(owner.session_id)
            conn.execute(sql.lock_agent_session, (owner.session_id,))
        else:
            conn.execute(sql.lock_agent_session, (owner.session_id,))
            self._require_unowned(conn, owner.session_id)

    def _require_unowned(self, conn: _Conn, session_id: str) -> None:
        # A statement of its own, after the lock: it sees a claim that
        # committed while this call waited.
        if conn.execute(self._sql.is_owned, (session_id,)).fetchone() is not None:
            raise NotOwned(session_id)

    # -- the whole database --------------------------------------------------------

    def _info(self, conn: _Conn) -> StoreInfo:
        users, owned, unowned, items = conn.execute(self._sql.count_all).fetchone()  # type: ignore[misc]
        return StoreInfo(schema_version(conn, self._sql), bool(pending_steps(conn, self._sql)),
                         users, owned, unowned, items,
                         conn.execute(self._sql.count_history).fetchone()[0],  # type: ignore[index]
                         {"server_version": _server_version(conn)})

    def _check(self, conn: _Conn) -> list[str]:
        inspect(conn, self.description, self._sql)
        problems = [f"migration pending: {step}" for step in pending_steps(conn, self._sql)]
        for index in (self._sql.index, "idx_agent_user_sessions_user"):
            if conn.execute("SELECT to_regclass(%s)",
                            [quote(index, self._sql.schema)]).fetchone()[0] is None:  # type: ignore[index]
                problems.append(
                    f"index {index} is missing: queries stay correct but slow; recreate it "
                    "from sessions_dal's schema.sql"
                )
        if conn.execute(self._sql.table_exists, (self._sql.search_table,)).fetchone()[0]:  # type: ignore[index]
            problems += self._index_problems(conn)
        return problems

    def _index_problems(self, conn: _Conn) -> list[str]:
        sql, everything = self._sql, {"after": -1, "upto": 2 ** 63 - 1}  # every title
        queued = conn.execute(sql.table_exists, (sql.queue_table,)).fetchone()
        with conn.transaction():  # for SET LOCAL; each statement still reads on its own
            conn.execute(sql.no_parallel)
            return [problem for statement, what, parameters in (
                # A database of version 5 or older (read-only) has no queue.
                (sql.index_missing if queued and queued[0] else sql.index_missing_unqueued,
                 MISSING, None),
                (sql.index_extra, EXTRA, None),
                (sql.index_wrong_owner, WRONG_OWNER, None),
                (sql.index_wrong_titles, WRONG_TITLES, everything),
                *([(sql.index_wrong_history, WRONG_HISTORY, None)]
                  if self._history_indexed(conn) else []),
            ) for problem in index_problem(what, conn.execute(statement, parameters))]

    def _history_indexed(self, conn: _Conn) -> bool:
        """Whether the compacted history has its words (schema version 9)."""
        row = conn.execute(self._sql.search_tables, (
            self._sql.search_table, self._sql.table("sessions_dal_history"))).fetchone()
        return bool(row and row[1])

    def update_search_index(self) -> int:
        if not self._db.fetchone(self._sql.table_exists, (self._sql.search_table,))[0]:
            raise self._no_search()
        return self._index_queued()

    def reindex(self) -> int:
        if not self._db.fetchone(self._sql.table_exists, (self._sql.search_table,))[0]:
            raise self._no_search()
        self._index_queued()  # indexing what is new is no repair
        sql, repaired = self._sql, 0
        # In batches, each a transaction of its own that holds the index's lock
        # (see _sql.SQL.lock_index): writers wait for one batch at most, and
        # each batch sees a state in which every writer is whole.
        def batch(statement: str) -> Callable[[int, int], None]:
            def run(after: int, upto: int) -> None:
                nonlocal repaired
                repaired += self._db.write(self._repair, statement, after, upto)
            return run

        def nth_after(statement: str) -> Callable[[int, int], int | None]:
            def nth(after: int, count: int) -> int | None:
                row = self._db.fetchone(statement, {"after": after, "count": count})
                return None if row is None else int(row[0])
            return nth

        for step, span, statement, nth in (
                (INDEX_ITEMS, sql.item_range, sql.reindex_items, sql.nth_item_after),
                (INDEX_TITLES, sql.title_range, sql.reindex_titles, sql.nth_title_after)):
            first, last = self._db.fetchone(span)
            in_batches(step, first, last, batch(statement), nth_after(nth))
        if self._db.read(self._history_indexed):
            repaired += self._db.write(self._repair_history)
        return repaired

    def _repair_history(self, conn: _Conn) -> int:
        # Written as the history's trigger writes it: whoever writes a row
        # meanwhile waits for this one's lock, then writes what is right.
        conn.execute(self._sql.no_parallel)
        row = conn.execute(self._sql.reindex_history).fetchone()
        return int(row[0])  # type: ignore[index]

    def _repair(self, conn: _Conn, statement: str, after: int, upto: int) -> int:
        conn.execute(self._sql.lock_index)
        conn.execute(self._sql.no_parallel)
        row = conn.execute(statement, {"after": after, "upto": upto}).fetchone()
        return int(row[0])  # type: ignore[index]

    def _no_search(self) -> SearchUnavailableError:
        return SearchUnavailableError(
            f"database {self.description} has no search index yet: open it read-write "
            "once, or run 'sessions-dal migrate'"
        )

    def pending_migrations(self) -> list[str]:
        return self._db.read(pending_steps, self._sql)

    def grant(self, role: str, read_only: bool, dry_run: bool) -> list[str]:
        if dry_run:
            return self._db.read(self._grants, role, read_only, False)
        return self._db.write(self._grants, role, read_only, True)

    def _grants(self, conn: _Conn, role: str, read_only: bool, apply: bool) -> list[str]:
        statements = grant_statements(conn, self.description, self._sql, role,
                                      read_only=read_only)
        # A role that holds a right without its grant option only gets a
        # warning ("no privileges were granted"), not an error: caught here.
        refused: list[str] = []

        def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
            if diagnostic.sqlstate == "01007":  # privilege_not_granted
                refused.append(diagnostic.message_primary or "not granted")

        conn.add_notice_handler(notice)
        try:
            for statement in statements if apply else ():
                try:
                    conn.execute(statement)
                except psycopg.errors.UndefinedObject as exc:
                    raise DatabaseError(
                        f"database {self.description}: {exc.diag.message_primary or exc}; "
                        "create the role first (CREATE ROLE name LOGIN PASSWORD '...'); nothing "
                        "was granted"
                    ) from exc
                except psycopg.errors.InsufficientPrivilege as exc:
                    refused.append(exc.diag.message_primary or str(exc))
                if refused:
                    raise ReadOnlyDatabaseError(
                        f"database {self.description}: role {conn.info.user!r} may not grant "
                        f"rights on these tables ({refused[0]}): run this as their owner; "
                        "nothing was granted"
                    )
        finally:
            conn.remove_notice_handler(notice)
        return [statement.as_string(conn) for statement in statements]

    # An export's output and an import's input are the caller's code: a
    # signal there is answered at once; our statements in between wait for it.

    def export(self, work: Callable[[Any], _T]) -> _T:
        def run(conn: _Conn, verify: Callable[[], None]) -> _T:
            with self._db.running(callers_code=True):
                return work(_Exporter(conn, self._sql, verify, self._db.running))

        return self._db.snapshot(run)

    def import_records(self, work: Callable[[Any], _T]) -> _T:
        def run(conn: _Conn) -> _T:
            with self._db.running(callers_code=True):
                return work(_Importer(conn, self._sql, self._db.running))

        return self._db.write(run)


_Running = Callable[[bool], AbstractContextManager[None]]


class _Exporter(SharedExporter):
    """Reads of one snapshot, page by page (the ``Exporter`` of ``sessions_dal._store``)."""

    _first_session = ("-infinity", 0)
    _session_row = staticmethod(_owned)
    _user_time = staticmethod(_user_time)

    def __init__(self, conn: _Conn, sql: SQL, verify: Callable[[], None], running: _Running
                 ) -> None:
        self._conn, self._sql, self.verify, self._running = conn, sql, verify, running

    def _page(self, statement: str, parameters: Sequence[object]) -> list[Any]:
        with self._running(False):
            return self._conn.execute(statement, parameters).fetchall()

    def unowned(self) -> Iterator[tuple[str, object, object]]:
        for session_id, created, updated, _ in paged(
                lambda after, size: self._page(self._sql.export_unowned, (*after, size)),
                ("-infinity", ""), lambda row: (row[3], row[0])):
            # As SQLiteSession writes them: UTC, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
            yield session_id, _agents_text(created), _agents_text(updated)

    def items(self, session_id: str) -> Iterator[tuple[int, str]]:
        for item_id, text, _ in paged(
                lambda after, size: self._page(self._sql.export_items,
                                               (session_id, *after, size)),
                ("-infinity", 0), lambda row: (row[2], row[0])):
            yield item_id, text

    def history(self, session_id: str) -> Iterator[tuple[int, bool, str]]:
        for layer, replaced, text, _, _ in paged(
                lambda after, size: self._page(self._sql.export_history,
                                               (session_id, *after, size)),
                (0, "-infinity", 0), lambda row: (row[0], row[3], row[4])):
            yield layer, replaced, text


class _Importer:
    """The writes of one import, inside its transaction (``sessions_dal._store.Importer``)."""

    def __init__(self, conn: _Conn, sql: SQL, running: _Running) -> None:
        self._conn, self._sql, self._running = conn, sql, running

    def add_user(self, user_id: str, created_at: datetime) -> None:
        with self._running(False):
            self._conn.execute(self._sql.upsert_user, (user_id, created_at))

    def add_session(self, row: SessionRow, replace: bool,
                    agents_times: tuple[object, object]) -> None:
        with self._running(False):
            self._add_session(row, replace, agents_times)

    def _add_session(self, row: SessionRow, replace: bool,
                     agents_times: tuple[object, object]) -> None:
        conn, sql, session_id = self._conn, self._sql, row.session_id
        if replace:
            for statement in sql.delete_anywhere:
                conn.execute(statement, (session_id,))
        if row.user_id is None:
            created, updated = (_agents_instant(value) for value in agents_times)
            if (conn.execute(sql.is_owned, (session_id,)).fetchone() is not None
                    or conn.execute(sql.insert_unowned, (session_id, created, updated)
                                    ).rowcount == 0):
                raise IdTaken(session_id)
            return
        conn.execute(sql.upsert_user, (row.user_id, row.created_at))
        if (conn.execute(sql.insert_owned, (session_id, row.user_id, row.metadata,
                                            row.created_at, row.updated_at)).fetchone() is None
                or conn.execute(sql.insert_agent_session, (session_id,)).rowcount == 0):
            raise IdTaken(session_id)

    def add_items(self, session_id: str, texts: Sequence[str]) -> None:
        with self._running(False):
            stamp = self._conn.execute(self._sql.local_now).fetchone()[0]  # type: ignore[index]
            _insert_items(self._conn, self._sql, session_id, texts, stamp)

    def add_history(self, session_id: str, rows: Sequence[tuple[int, bool, str]]) -> None:
        sql = self._sql
        with self._running(False):
            # Ids only order a layer's items: numbered from the session's last.
            last = self._conn.execute(sql.last_history_id, (session_id,)).fetchone()[0]  # type: ignore[index]
            with self._conn.cursor() as cursor:
                cursor.executemany(sql.insert_history, [
                    {"session": session_id, "id": last + n, "layer": layer,
                     "replaced": replaced, "text": text}
                    for n, (layer, replaced, text) in enumerate(rows, start=1)])

    def mark_replacements(self, session_id: str, marks: Sequence[tuple[int, int]]) -> None:
        sql = self._sql
        with self._running(False):
            ids = [row[0] for row in self._conn.execute(sql.item_ids, (session_id,))]
            with self._conn.cursor() as cursor:
                cursor.executemany(sql.mark_replacement,
                                   [(ids[n], session_id, layer) for n, layer in marks])


# -- the results of one-statement writes ---------------------------------------------


def _created(conn: _Conn, cursor: psycopg.Cursor[Any], session_id: str) -> None:
    if cursor.fetchone()[0] == 0:  # type: ignore[index]
        raise IdTaken(session_id)


def _appended(conn: _Conn, cursor: psycopg.Cursor[Any], session_id: str) -> None:
    if cursor.fetchone()[0] == 0:  # type: ignore[index]
        raise NotOwned(session_id)


# -- rows and times ----------------------------------------------------------------


def _insert_items(conn: _Conn, sql: SQL, session_id: str, texts: Sequence[str],
                  stamp: datetime) -> None:
    """Append ``texts``, all stamped ``stamp`` (naive, in the zone openai-agents' times use)."""
    if len(texts) == 1:  # the common case, without executemany's pipeline set-up
        conn.execute(sql.insert_item, (session_id, texts[0], stamp))
        return
    with conn.cursor() as cursor:
        cursor.executemany(sql.insert_item, [(session_id, text, stamp) for text in texts])


def _utc(moment: datetime) -> datetime:
    """A ``timestamptz`` as psycopg returns it (in the connection's zone), in UTC."""
    return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)


def _tsquery(user_id: str, session_id: str | None, terms: tuple[Term, ...]) -> str | None:
    """A tsquery: the owner's (and session's) lexemes, weight A, then the terms'
    words, weight D, folded as the index is (letters and digits only: nothing
    of the user's query can be tsquery syntax). None: no words to look for."""
    parts = []
    for term in terms:
        words = [word for given in term.words for word in split_words(fold(given))]
        if words:
            lexemes = [f"'{word}':D" for word in words]
            if term.prefix:
                lexemes[-1] = f"'{words[-1]}':*D"
            parts.append("(" + " <-> ".join(lexemes) + ")")
    if not parts:
        return None
    owner = [f"'u{user_id.encode().hex()}':A"]
    if session_id is not None:
        owner.append(f"'s{session_id.encode().hex()}':A")
    return " & ".join(owner + parts)



def _agents_text(moment: datetime) -> str:
    return _utc(moment).replace(tzinfo=None).isoformat(sep=" ")


def _agents_instant(value: object) -> datetime | None:
    """An exported openai-agents time (UTC text), or ``None`` (now) if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _server_version(conn: _Conn) -> str:
    number = conn.info.server_version
    return f"{number // 10000}.{number % 10000}"
