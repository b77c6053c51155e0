"""Every SQL statement of the PostgreSQL store, built once from the database's names.

Every table is named with its schema (``"tenant"."agent_users"``): the
connections' ``search_path`` is ``pg_catalog, pg_temp``, so that no name,
function or operator of ours resolves to an object someone else created in a
schema they may write to (PostgreSQL's advice for untrusted schemas), and a
tenant's repository never reaches another schema's tables. Names are checked
by the public layer (tables) or at open (the schema) and quoted here with
``psycopg.sql.Identifier``; values are always ``%s`` parameters, bound by the
server. Items are ordered as openai-agents' ``SQLAlchemySession`` orders them,
by ``(created_at, id)``, so both libraries see one history in one order.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from psycopg import sql as pg

__all__ = ["OWN_TABLES", "SQL", "quote"]

_FIRST_ID = -(2 ** 63)  # before every bigint id

OWN_TABLES = ("agent_users", "agent_user_sessions", "sessions_dal_search",
              "sessions_dal_search_queue", "sessions_dal_history", "sessions_dal_replacements",
              "sessions_dal_migrations")
"""sessions_dal's own tables, written by these names in the statements and in schema.sql."""

# In schema.sql: the tables (configured names for openai-agents' two), and our
# functions where they are called or created (followed by "("; a trigger has
# its function's name but is never qualified), an index read as a regclass.
_DEFAULT_NAMES = re.compile(
    r"\b(agent_sessions|agent_messages|agent_users|agent_user_sessions|sessions_dal_search_queue"
    r"|sessions_dal_search|sessions_dal_history|sessions_dal_replacements"
    r"|sessions_dal_migrations)\b(?!\()|\b(sessions_dal_\w+)(?=\()|'(idx_\w+)'::regclass"
    r"|\b(idx_agent_messages_session_created_id)\b"
)

WORDS_OF = "ts_filter({0}, '{{a,b,c,d}}')"
"""An index row's words: its lexemes with positions (schema.sql, version 3)."""
OWNER_OF = "ts_delete({0}, tsvector_to_array(ts_filter({0}, '{{a,b,c,d}}')))"
"""An index row's owner lexemes: those without a position (``sessions_dal_owner``'s)."""


def quote(name: str, schema: str | None = None) -> str:
    """``name`` as an SQL identifier, with its schema if one is given."""
    return (pg.Identifier(name) if schema is None else pg.Identifier(schema, name)).as_string()


class SQL:
    """The statements for one schema and one pair of openai-agents table names.

    ``temporary``: tables a read-only repository stands in for with empty
    temporary ones, as the database lacks them.
    """

    def __init__(self, schema: str, sessions_table: str, messages_table: str,
                 temporary: Collection[str] = ()) -> None:
        self.schema = schema
        self.sessions_table = sessions_table
        self.messages_table = messages_table
        self.temporary = frozenset(temporary)
        self.collation = '"default"'
        """The collation schema.sql's folding uses (see _schema.py); set by the runner."""
        self.index = f"idx_{messages_table}_session_created_id"
        if len(self.index.encode()) > 63:
            raise ValueError(
                f"messages_table {messages_table!r} is too long for PostgreSQL: the index "
                f"name {self.index!r} would pass 63 bytes; use a name of at most "
                f"{63 - len('idx__session_created_id')} characters"
            )
        self.names = {"agent_sessions": sessions_table, "agent_messages": messages_table}
        """The actual name of each table, by its default name."""
        users, owners, search_table, queue = (self.table(name) for name in OWN_TABLES[:4])
        owner_fn, words_fn, title_words_fn = (quote(f"sessions_dal_{name}", schema) for name in (
            "owner", "words", "title_words"))
        s, m = self.table("agent_sessions"), self.table("agent_messages")
        # A time that is not finite ('infinity', written by hand) reads as NULL,
        # for the store to name the row it is in, as a damaged one.
        finite = "CASE WHEN isfinite({0}) THEN {0} END"
        columns = (f"session_id, user_id, metadata, {finite.format('created_at')}, "
                   f"{finite.format('updated_at')}, seq")
        user_created = finite.format("created_at")
        # As on SQLite: newest first, ties by insertion order; by activity,
        # ties fall back to that order. Each is a range scan of an index.
        orders = {"created": ("created_at", "seq"), "updated": ("updated_at", "created_at", "seq")}
        # openai-agents' naive timestamps hold local times of the zone its
        # connections run in, where SQLAlchemySession's defaults write them
        # (CURRENT_TIMESTAMP). Ours run in the zone they start in (the server's,
        # database's or role's TimeZone, or the URL's) and convert with plain
        # casts, as SQLAlchemySession's writes do: the two libraries' items
        # interleave by their real times, and read back as the right instants,
        # whatever the zone (also 'CET', which AT TIME ZONE would read as a
        # fixed abbreviation, without summer time). One that is not finite
        # reads as the epoch, as an unreadable one does on SQLite.
        agents_time = (
            "coalesce(CASE WHEN isfinite(a.{0}) THEN a.{0}::timestamptz END, 'epoch')"
        )
        agents_now = "(now()::timestamp)"
        unowned = (
            f"FROM {s} a WHERE NOT EXISTS "
            f"(SELECT 1 FROM {owners} o WHERE o.session_id = a.session_id)"
        )
        agents_times = f"{agents_time.format('created_at')}, {agents_time.format('updated_at')}"
        unowned_columns = f"a.session_id, {agents_times}"

        # -- users and their sessions ---------------------------------------------
        # DO UPDATE, not DO NOTHING: it locks the user's row, so a delete_user
        # running meanwhile finishes first and the user is created anew.
        self.upsert_user = (
            f"INSERT INTO {users} (user_id, created_at) VALUES (%s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id"
        )
        # DO NOTHING on a taken id: no row back means "exists" (and waits for
        # a concurrent insert of the same id to commit or roll back first).
        self.insert_owned = (
            f"INSERT INTO {owners} "
            "(session_id, user_id, metadata, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session_id) DO NOTHING RETURNING seq"
        )
        # A new session in one statement, the locks in the store's order: the
        # user's row, the ownership row, openai-agents' row. 0: the id is taken
        # (ours, or openai-agents'), and the transaction is rolled back.
        self.create_owned = (
            f"WITH person AS (INSERT INTO {users} (user_id, created_at) "
            "VALUES (%(user)s, %(now)s) "
            "ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING user_id), "
            f"owned AS (INSERT INTO {owners} "
            "(session_id, user_id, metadata, created_at, updated_at) "
            "SELECT %(session)s, user_id, %(metadata)s, %(now)s, %(now)s FROM person "
            "ON CONFLICT (session_id) DO NOTHING RETURNING session_id), "
            f"agents AS (INSERT INTO {s} (session_id, created_at, updated_at) "
            f"SELECT session_id, {agents_now}, {agents_now} FROM owned "
            "ON CONFLICT (session_id) DO NOTHING RETURNING 1) "
            "SELECT count(*) FROM agents"
        )
        self.insert_agent_session = (
            f"INSERT INTO {s} (session_id, created_at, updated_at) "
            f"VALUES (%s, {agents_now}, {agents_now}) ON CONFLICT (session_id) DO NOTHING"
        )
        self.select_one = (
            f"SELECT {columns} FROM {owners} WHERE session_id = %s AND user_id = %s"
        )
        self.lock_metadata = (
            f"SELECT metadata FROM {owners} WHERE session_id = %s AND user_id = %s "
            "FOR UPDATE"
        )
        self.select_page: dict[str, str] = {}
        self.select_first: dict[str, str] = {}
        self.select_after: dict[str, str] = {}
        """By order: the next page after a keyset, the row value of the order's columns."""
        for name, keys in orders.items():
            order = "ORDER BY " + ", ".join(f"{key} DESC" for key in keys)
            select = f"SELECT {columns} FROM {owners} WHERE user_id = %s"
            self.select_page[name] = f"{select} {order} LIMIT %s OFFSET %s"
            self.select_first[name] = f"{select} {order} LIMIT %s"
            self.select_after[name] = (
                f"{select} AND ({', '.join(keys)}) < ({', '.join(['%s'] * len(keys))}) "
                f"{order} LIMIT %s"
            )
        self.count_sessions = f"SELECT count(*) FROM {owners} WHERE user_id = %s"
        # The index's rows with the owner's lexeme (schema.sql, version 3) and
        # the words; ownership checked again from the table itself. Best first
        # (ts_rank, by the log of their length, as bm25 favours the shorter),
        # ties newest first: view items, then the compacted history's (version
        # 9: the latest compaction's first), then titles (a title's row is
        # minus its seq). A row: (id, text, the session's columns, layer
        # (NULL but for history), kind (2 view item, 1 history item, 0 title)).
        owned_columns = (f"o.session_id, o.user_id, o.metadata, {finite.format('o.created_at')}, "
                         f"{finite.format('o.updated_at')}, o.seq")
        history = self.table("sessions_dal_history")

        def search(source: str, kept: bool) -> str:
            items = (
                f"SELECT h.item_id, m.message_data, {owned_columns}, NULL::integer AS layer, "
                "CASE WHEN h.item_id > 0 THEN 2 ELSE 0 END AS kind, h.score, "
                "NULL::timestamp AS at, abs(h.item_id) AS position FROM hits h "
                f"JOIN {owners} o ON o.session_id = h.session_id AND o.user_id = %(user)s "
                f"LEFT JOIN {m} m ON h.item_id > 0 AND m.id = h.item_id "
                "AND m.session_id = h.session_id "
                # An index row of an item that is gone (a damaged index: check()
                # reports it) is no hit, as on SQLite; a title's row has no item.
                "WHERE h.item_id < 0 OR m.id IS NOT NULL"
            )
            hits = (
                "WITH hits AS (SELECT s.item_id, s.session_id, ts_rank(s.words, q, 1) AS score "
                f"FROM to_tsquery('simple', %(query)s) AS q, {source} s "
                "WHERE s.words @@ q ORDER BY score DESC, s.item_id > 0 DESC, abs(s.item_id) DESC "
                "LIMIT %(limit)s)"
            )
            if not kept:
                return f"{hits} {items} ORDER BY score DESC, kind DESC, position DESC"
            return (
                f"{hits}, kept AS (SELECT k.id, k.session_id, k.layer, k.created_at, "
                "k.message_data, ts_rank(k.words, q, 1) AS score "
                f"FROM to_tsquery('simple', %(query)s) AS q, {history} k WHERE k.words @@ q "
                "ORDER BY score DESC, k.layer DESC, k.created_at DESC, k.id DESC "
                f"LIMIT %(limit)s) {items} UNION ALL "
                f"SELECT k.id, k.message_data, {owned_columns}, k.layer, 1, k.score, "
                f"k.created_at, k.id FROM kept k JOIN {owners} o "
                "ON o.session_id = k.session_id AND o.user_id = %(user)s "
                "ORDER BY score DESC, kind DESC, layer DESC, at DESC, position DESC "
                "LIMIT %(limit)s"
            )

        self.search = {kept: search(search_table, kept) for kept in (False, True)}
        # Whether the search index, and the history's words (version 9), exist.
        self.search_tables = (
            "SELECT to_regclass(%s) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = 'words' AND NOT attisdropped)"
        )
        # The items of the queue's ranges (schema.sql, version 6): not indexed
        # yet, or indexed and queued again by an overlapping range.
        queued = (f"SELECT DISTINCT m.id FROM {queue} q JOIN {m} m "
                  "ON m.id BETWEEN q.first_id AND q.last_id AND m.id > 0 WHERE NOT q.deleted")
        # A read-only repository cannot index them: it computes the words of
        # the user's queued items as it searches, in place of their rows (once
        # each: OFFSET 0, see fresh_items).
        with_queued = (
            f"(SELECT item_id, session_id, words FROM {search_table} i WHERE NOT EXISTS "
            "(SELECT 1 FROM queued WHERE queued.id = i.item_id) "
            "UNION ALL SELECT * FROM (SELECT m.id, m.session_id, "
            f"{words_fn}(m.message_data) || {owner_fn}(o.user_id, m.session_id) "
            f"FROM queued JOIN {m} m ON m.id = queued.id JOIN {owners} o "
            "ON o.session_id = m.session_id AND o.user_id = %(user)s OFFSET 0) AS fresh)"
        )
        self.search_with_queued = {
            kept: "WITH queued AS MATERIALIZED (" + queued + "), "
                  + search(with_queued, kept)[len("WITH "):]
            for kept in (False, True)}
        self.queue_table = queue
        self.queue_last = f"SELECT max(id), count(*) FROM {queue}"
        # A batch of the queue: its oldest rows up to the last one when the
        # search began, locked (a compaction skips them), then deleted, or
        # shrunk to what is left of a wide range; their items indexed at once.
        self.queue_oldest = (
            f"SELECT id, first_id, last_id, deleted FROM {queue} WHERE id <= %s "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        self.queue_shrink = f"UPDATE {queue} SET first_id = %s WHERE id = %s"
        self.queue_delete = f"DELETE FROM {queue} WHERE id = ANY(%s)"
        # The index rows of items gone from the given id ranges (queued by a
        # delete at REPEATABLE READ or SERIALIZABLE, see schema.sql version 6).
        self.erase_ranges = (
            f"DELETE FROM {search_table} s USING unnest(%s::bigint[], %s::bigint[]) "
            "AS r(first_id, last_id) WHERE s.item_id BETWEEN r.first_id AND r.last_id "
            f"AND s.item_id > 0 AND NOT EXISTS (SELECT 1 FROM {m} m WHERE m.id = s.item_id)"
        )
        # The items of the given id ranges, indexed; how many got a row. A
        # range may hold items indexed already (another writer's ids, or a
        # compacted range): their rows are rewritten only if they differ.
        # OFFSET 0: see fresh_items.
        self.index_ranges = (
            f"WITH items AS MATERIALIZED (SELECT DISTINCT m.id FROM unnest("
            f"%(firsts)s::bigint[], %(lasts)s::bigint[]) AS r(first_id, last_id) JOIN {m} m "
            "ON m.id BETWEEN r.first_id AND r.last_id AND m.id > 0), "
            "fresh AS (SELECT m.id AS item_id, m.session_id, "
            f"m.w || {owner_fn}(o.user_id, m.session_id) AS words "
            f"FROM (SELECT m.id, m.session_id, {words_fn}(m.message_data) AS w "
            f"FROM items JOIN {m} m ON m.id = items.id OFFSET 0) m "
            f"LEFT JOIN {owners} o ON o.session_id = m.session_id "
            "WHERE m.w <> ''::tsvector), "
            f"put AS (INSERT INTO {search_table} AS s (item_id, session_id, words) "
            "SELECT item_id, session_id, words FROM fresh ON CONFLICT (item_id) DO UPDATE "
            "SET session_id = EXCLUDED.session_id, words = EXCLUDED.words "
            "WHERE (s.session_id, s.words) IS DISTINCT FROM (EXCLUDED.session_id, EXCLUDED.words) "
            "RETURNING 1) "
            "SELECT count(*) FROM fresh"
        )
        self.table_exists = "SELECT to_regclass(%s) IS NOT NULL"
        self.search_table = search_table
        self.update_metadata = (
            f"UPDATE {owners} SET metadata = %s WHERE session_id = %s AND user_id = %s "
            f"RETURNING {columns}"
        )
        self.delete_owned = (
            f"DELETE FROM {owners} WHERE session_id = %s AND user_id = %s"
        )
        self.delete_items = f"DELETE FROM {m} WHERE session_id = %s"
        self.delete_agent_session = f"DELETE FROM {s} WHERE session_id = %s"
        self.lock_user = f"SELECT 1 FROM {users} WHERE user_id = %s FOR UPDATE"
        self.delete_user_owned = (
            f"DELETE FROM {owners} WHERE user_id = %s RETURNING session_id"
        )
        # In one order (by id), so two deletes of overlapping sets never deadlock.
        self.lock_agent_sessions = (
            f"SELECT 1 FROM {s} WHERE session_id = ANY(%s) ORDER BY session_id FOR UPDATE"
        )
        self.delete_sessions_items = f"DELETE FROM {m} WHERE session_id = ANY(%s)"
        self.delete_agent_sessions = f"DELETE FROM {s} WHERE session_id = ANY(%s)"
        self.delete_user = f"DELETE FROM {users} WHERE user_id = %s"
        self.select_by_id = f"SELECT {columns} FROM {owners} WHERE session_id = %s"
        self.select_users = (
            f"SELECT user_id, {user_created}, (SELECT count(*) FROM {owners} s "
            f"WHERE s.user_id = u.user_id) FROM {users} u ORDER BY user_id LIMIT %s OFFSET %s"
        )
        self.select_owner = f"SELECT user_id FROM {owners} WHERE session_id = %s"

        # -- sessions openai-agents wrote ------------------------------------------
        self.select_unowned = (
            f"SELECT {unowned_columns} {unowned} "
            'ORDER BY a.created_at DESC, a.session_id COLLATE "C" DESC LIMIT %s OFFSET %s'
        )
        self.select_unowned_one = f"SELECT {unowned_columns} {unowned} AND a.session_id = %s"
        self.count_unowned = f"SELECT count(*) {unowned}"
        # The row SQLAlchemySession locks before it changes a session's items:
        # locking it too keeps the two libraries' writers one at a time.
        # -- prune: the sessions to delete, then each if it is still as found ------
        # As on SQLite; a time that is not finite marks a damaged row: left alone.
        rank = ("row_number() OVER (PARTITION BY user_id "
                "ORDER BY updated_at DESC, created_at DESC, seq DESC)")
        self.prune_candidates: dict[bool, str] = {}
        for by_user in (False, True):
            where = "AND user_id = %s" if by_user else ""
            # With openai-agents' own stamp (text: exact), which SQLAlchemySession
            # moves when it appends: its trigger may not reach a row a prune holds.
            self.prune_candidates[by_user] = (
                f"SELECT o.session_id, o.user_id, o.updated_at, a.updated_at::text "
                f"FROM (SELECT session_id, user_id, updated_at, {rank} AS r "
                f"FROM {owners} WHERE isfinite(updated_at) {where}) o "
                f"LEFT JOIN {s} a ON a.session_id = o.session_id "
                "WHERE o.r > %s OR o.updated_at < %s ORDER BY o.user_id, o.updated_at"
            )
        self.prune_unowned_candidates = (
            f"SELECT a.session_id, a.updated_at {unowned} AND isfinite(a.updated_at) "
            "AND a.updated_at < %s::timestamptz::timestamp ORDER BY a.updated_at"
        )
        # Ownership rows locked in one order (of session_id), then agent_sessions'.
        self.lock_owned_as_found = (
            f"SELECT seq, session_id FROM {owners} "
            "WHERE (session_id, user_id, updated_at) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])) "
            "ORDER BY session_id FOR UPDATE"
        )
        self.lock_agent_stamps = (
            f"SELECT session_id, updated_at::text FROM {s} WHERE session_id = ANY(%s) "
            "ORDER BY session_id FOR UPDATE"
        )
        self.delete_owned_seqs = (
            f"DELETE FROM {owners} WHERE seq = ANY(%s) RETURNING session_id"
        )
        self.lock_unowned_as_found = (
            f"SELECT a.session_id {unowned} AND (a.session_id, a.updated_at) IN "
            "(SELECT * FROM unnest(%s::text[], %s::timestamp[])) ORDER BY a.session_id "
            "FOR UPDATE OF a"
        )
        self.count_items_of = f"SELECT count(*) FROM {m} WHERE session_id = ANY(%s)"
        self.lock_agent_session = f"SELECT 1 FROM {s} WHERE session_id = %s FOR UPDATE"
        # fork_session: the original is held FOR SHARE (its ownership row, then
        # its agent_sessions row, which SQLAlchemySession locks to append), so
        # no append, pop or delete lands between counting and copying.
        self.share_owned = (
            f"SELECT 1 FROM {owners} WHERE session_id = %s AND user_id = %s FOR SHARE"
        )
        self.share_agent_session = f"SELECT 1 FROM {s} WHERE session_id = %s FOR SHARE"
        self.count_items = f"SELECT count(*) FROM {m} WHERE session_id = %s"
        # Ids come from the sequence in the order the sorted SELECT yields rows,
        # and each copy keeps its time: the copy orders as the original does.
        self.copy_items = (
            f"INSERT INTO {m} (session_id, message_data, created_at) "
            f"SELECT %s, message_data, created_at FROM {m} WHERE session_id = %s "
            "ORDER BY created_at, id LIMIT %s"
        )
        self.is_owned = f"SELECT 1 FROM {owners} WHERE session_id = %s"
        # A claimed session keeps its age: openai-agents' times, as instants.
        self.claim = (
            f"INSERT INTO {owners} "
            "(session_id, user_id, metadata, created_at, updated_at) "
            f"SELECT a.session_id, %s, %s, {agents_times} FROM {s} a "
            f"WHERE a.session_id = %s ON CONFLICT (session_id) DO NOTHING RETURNING {columns}"
        )
        # A claim's trigger (schema.sql, version 3) gives the owner's lexemes to
        # the index rows of the items, and of the history (version 9), committed
        # before the claim's insert, which comes after the claim holds
        # agent_sessions' row: until it commits, no item comes in (its foreign
        # key waits for that row) and no compaction runs. This catches what the
        # trigger's statement could not see (an index batch committing meanwhile
        # indexed an item as nobody's; batches never write the history). Rows
        # already right are left alone: the lexemes without a position are the
        # owner's (words always have one).
        self.own_index_rows = (
            f"UPDATE {search_table} SET words = {WORDS_OF.format('words')} "
            f"|| {owner_fn}(%s, session_id) "
            "WHERE session_id = %s AND item_id > 0 "
            f"AND {OWNER_OF.format('words')} <> {owner_fn}(%s, session_id)"
        )

        # -- items, as a session's owner sees them -----------------------------------
        owned_key = (
            f"(SELECT session_id FROM {owners} WHERE session_id = %s AND user_id = %s)"
        )
        unowned_key = (
            "(SELECT %s::varchar WHERE NOT EXISTS "
            f"(SELECT 1 FROM {owners} WHERE session_id = %s))"
        )
        history, marks = self.table("sessions_dal_history"), self.table("sessions_dal_replacements")
        self.items = {True: _ItemSQL(m, owned_key, history, marks),
                      False: _ItemSQL(m, unowned_key, history, marks)}
        """As on SQLite: by whether the handle has an owner; the key's parameters
        are (session_id, user_id), or (session_id, session_id) for nobody's."""
        # created_at: one time for every item of a call, read once the
        # session's row is locked (see append_owned), so that the items of
        # a call stay together: another writer (SQLAlchemySession, whose items
        # carry its transaction's start) sorts before or after the whole call.
        # Not the transaction's start (the column default), which precedes the
        # wait for the lock: a call that began first but appended second would
        # sort first.
        self.insert_item = (
            f"INSERT INTO {m} (session_id, message_data, created_at) VALUES (%s, %s, %s)"
        )
        locked_now = "clock_timestamp()::timestamp"
        self.local_now = f"SELECT {locked_now}"
        # Inserts the session's row if openai-agents' clear_session() removed it,
        # else locks it (and moves its updated_at, as SQLAlchemySession does).
        self.upsert_agent_session = (
            f"INSERT INTO {s} (session_id, created_at, updated_at) "
            f"VALUES (%s, {agents_now}, {agents_now}) "
            f"ON CONFLICT (session_id) DO UPDATE SET updated_at = {agents_now} "
            f"RETURNING {locked_now}"
        )
        # An owned session's append in one statement, the locks in the store's
        # order: the ownership row (moving its updated_at), openai-agents' row
        # (upserted), then the items, numbered in the order given (the
        # sequence is read as the sorted rows are inserted). No row of the
        # ownership: nothing inserted, the count is 0. The items' texts come as
        # one JSON array of strings (the store's json.dumps of them, decoded
        # back exactly): psycopg builds a text[] parameter element by element,
        # which made an append of 10,000 items 1.7x slower.
        self.append_owned = (
            f"WITH owned AS (UPDATE {owners} SET updated_at = %(now)s "
            "WHERE session_id = %(session)s AND user_id = %(user)s RETURNING session_id), "
            f"locked AS (INSERT INTO {s} (session_id, created_at, updated_at) "
            f"SELECT session_id, {agents_now}, {agents_now} FROM owned "
            f"ON CONFLICT (session_id) DO UPDATE SET updated_at = {agents_now} "
            f"RETURNING session_id, {locked_now} AS stamp), "
            f"added AS (INSERT INTO {m} (session_id, message_data, created_at) "
            "SELECT locked.session_id, item.text, locked.stamp FROM locked, "
            "json_array_elements_text(%(texts)s::json) WITH ORDINALITY AS item(text, n) "
            "ORDER BY item.n RETURNING 1) "
            "SELECT count(*) FROM added"
        )
        self.touch = (
            f"UPDATE {owners} SET updated_at = %s WHERE session_id = %s AND user_id = %s"
        )
        self.lock_owned = (
            f"SELECT 1 FROM {owners} WHERE session_id = %s AND user_id = %s FOR UPDATE"
        )

        # -- compaction (schema.sql, version 8), as on SQLite ---------------------------
        history, marks = self.table("sessions_dal_history"), self.table("sessions_dal_replacements")
        self.view_rows = (
            f"SELECT m.id, m.created_at, r.layer FROM {m} m "
            f"LEFT JOIN {marks} r ON r.id = m.id "
            "WHERE m.session_id = %s ORDER BY m.created_at, m.id"
        )
        # Layers count compactions: of the history's rows and the replacements'
        # (one that moved nothing has only the latter).
        self.next_layer = (
            f"SELECT coalesce(max(layer), 0) + 1 FROM (SELECT layer FROM {history} "
            f"WHERE session_id = %(session)s UNION ALL SELECT layer FROM {marks} "
            "WHERE session_id = %(session)s) AS layers"
        )
        # With their search words (schema.sql, version 9): those the items' index
        # has for them, else computed; none for a replacement compacted in turn.
        def session_owner(session: str) -> str:
            return (f"{owner_fn}((SELECT o.user_id FROM {owners} o "
                    f"WHERE o.session_id = {session}), {session})")

        self.to_history = (
            f"INSERT INTO {history} "
            "(session_id, id, layer, replaced, message_data, created_at, words) "
            "SELECT m.session_id, m.id, %(layer)s, r.id IS NOT NULL, m.message_data, "
            f"m.created_at, CASE WHEN r.id IS NULL THEN coalesce({WORDS_OF.format('s.words')}, "
            f"nullif({words_fn}(m.message_data), ''::tsvector)) "
            f"|| {session_owner('m.session_id')} END "
            f"FROM {m} m LEFT JOIN {marks} r ON r.id = m.id "
            f"LEFT JOIN {search_table} s ON s.item_id = m.id AND m.id > 0 "
            "AND s.session_id = m.session_id WHERE m.id = ANY(%(ids)s)"
        )
        # The replacement, then the items kept, in order: ids from the sequence
        # in the order the rows are inserted; each new id returned in that order.
        self.insert_in_order = (
            f"INSERT INTO {m} (session_id, message_data, created_at) "
            "SELECT %(session)s, text, at FROM unnest(%(texts)s::text[], %(times)s::timestamp[]) "
            "WITH ORDINALITY AS t (text, at, n) ORDER BY n RETURNING id"
        )
        self.copy_rows = (
            f"SELECT message_data, created_at FROM {m} WHERE id = ANY(%s) ORDER BY created_at, id"
        )
        self.delete_rows = f"DELETE FROM {m} WHERE id = ANY(%s)"
        self.delete_marks = f"DELETE FROM {marks} WHERE id = ANY(%s)"
        self.mark_replacement = f"INSERT INTO {marks} (id, session_id, layer) VALUES (%s, %s, %s)"
        self.copy_history = (
            f"INSERT INTO {history} "
            "(session_id, id, layer, replaced, message_data, created_at, words) "
            "SELECT %(new)s, id, layer, replaced, message_data, created_at, "
            f"{WORDS_OF.format('words')} || {session_owner('%(new)s')} "
            f"FROM {history} WHERE session_id = %(session)s"
        )
        self.has_marks = f"SELECT 1 FROM {marks} WHERE session_id = %s LIMIT 1"
        self.first_rows = (
            f"SELECT m.id, r.layer FROM {m} m LEFT JOIN {marks} r ON r.id = m.id "
            "WHERE m.session_id = %s ORDER BY m.created_at, m.id LIMIT %s"
        )
        self.item_ids = f"SELECT id FROM {m} WHERE session_id = %s ORDER BY created_at, id"
        # Sizes, as on SQLite.
        users_sessions = f"SELECT session_id FROM {owners} WHERE user_id = %(user)s"
        size_of = "coalesce(sum(octet_length(message_data)), 0)"
        self.user_size = (
            f"SELECT (SELECT count(*) FROM {m} WHERE session_id IN ({users_sessions})), "
            f"(SELECT {size_of} FROM {m} WHERE session_id IN ({users_sessions})), "
            f"(SELECT count(*) FROM {history} WHERE session_id IN ({users_sessions})), "
            f"(SELECT {size_of} FROM {history} WHERE session_id IN ({users_sessions}))"
        )
        per_session = (
            f"WITH v AS (SELECT session_id, count(*) AS n, {size_of} AS b FROM {m} "
            "GROUP BY session_id), "
            f"h AS (SELECT session_id, count(*) AS n, {size_of} AS b FROM {history} "
            "GROUP BY session_id), "
            "s AS (SELECT o.session_id, o.user_id, coalesce(v.n, 0) AS n, coalesce(v.b, 0) AS b, "
            f"coalesce(h.n, 0) AS hn, coalesce(h.b, 0) AS hb FROM {owners} o "
            "LEFT JOIN v ON v.session_id = o.session_id "
            "LEFT JOIN h ON h.session_id = o.session_id) "
        )
        self.largest_sessions = (
            f"{per_session}SELECT session_id, user_id, n, b, hn, hb FROM s "
            "ORDER BY b + hb DESC, session_id LIMIT %s"
        )
        self.largest_users = (
            f"{per_session}SELECT user_id, count(*), sum(n), sum(b), sum(hn), sum(hb) FROM s "
            "GROUP BY user_id ORDER BY sum(b) + sum(hb) DESC, user_id LIMIT %s"
        )
        self.count_history = f"SELECT count(*) FROM {history}"
        # Export and import of the history (transfer's format 3); a time as text,
        # as in the item pages.
        self.export_history = (
            f"SELECT layer, replaced, message_data, created_at::text AS at, id FROM {history} "
            "WHERE session_id = %s AND (layer, created_at, id) > (%s, %s::timestamp, %s) "
            "ORDER BY layer, created_at, id LIMIT %s"
        )
        self.export_marks = f"SELECT id, layer FROM {marks} WHERE session_id = %s"
        self.last_history_id = f"SELECT coalesce(max(id), 0) FROM {history} WHERE session_id = %s"
        self.insert_history = (
            f"INSERT INTO {history} "
            "(session_id, id, layer, replaced, message_data, created_at, words) "
            "SELECT %(session)s, %(id)s, %(layer)s, %(replaced)s, %(text)s, "
            f"{locked_now}, CASE WHEN NOT %(replaced)s THEN "
            f"nullif({words_fn}(%(text)s), ''::tsvector) "
            f"|| {session_owner('%(session)s')} END"
        )
        self.clear_history = (f"DELETE FROM {history} WHERE session_id = %s",
                              f"DELETE FROM {marks} WHERE session_id = %s")

        # -- the whole database: counts, export, import --------------------------------
        self.count_all = (
            f"SELECT (SELECT count(*) FROM {users}), "
            f"(SELECT count(*) FROM {owners}), "
            f"(SELECT count(*) {unowned}), (SELECT count(*) FROM {m})"
        )
        self.export_users = (
            f"SELECT user_id, {user_created} FROM {users} WHERE user_id > %s "
            "ORDER BY user_id LIMIT %s"
        )
        self.export_user = f"SELECT user_id, {user_created} FROM {users} WHERE user_id = %s"
        self.export_sessions = (
            f"SELECT {columns} FROM {owners} WHERE user_id = %s "
            "AND (created_at, seq) > (%s::timestamptz, %s) ORDER BY created_at, seq LIMIT %s"
        )
        # Oldest first. The stored value, as text (it may be 'infinity'), is the
        # page key; the instant is the output.
        self.export_unowned = (
            f"SELECT {unowned_columns}, a.created_at::text {unowned} "
            "AND (a.created_at, a.session_id COLLATE \"C\") > (%s::timestamp, %s) "
            'ORDER BY a.created_at, a.session_id COLLATE "C" LIMIT %s'
        )
        self.export_items = (
            f"SELECT id, message_data, created_at::text AS at FROM {m} WHERE session_id = %s "
            "AND (created_at, id) > (%s::timestamp, %s) ORDER BY created_at, id LIMIT %s"
        )
        given = f"coalesce(%s::timestamptz::timestamp, {agents_now})"
        self.insert_unowned = (
            f"INSERT INTO {s} (session_id, created_at, updated_at) "
            f"VALUES (%s, {given}, {given}) ON CONFLICT (session_id) DO NOTHING"
        )
        # In the store's lock order (see store.py).
        self.delete_anywhere = (
            f"DELETE FROM {owners} WHERE session_id = %s",
            f"SELECT 1 FROM {s} WHERE session_id = %s FOR UPDATE",
            f"DELETE FROM {m} WHERE session_id = %s",
            f"DELETE FROM {s} WHERE session_id = %s",
        )

        # -- the search index against what it is derived from: check, reindex ---------
        # check: what is cheap to compare on a big database (no item's words are
        # computed but those of items without a row, and none queued: the next
        # search indexes those); reindex computes it all.
        owner = f"{owner_fn}(o.user_id, m.session_id)"
        # MATERIALIZED: else the planner computes every item's words before the
        # anti-join (6 s instead of 0.1 s for 100,000 items).
        def missing(queued: bool) -> str:
            return (
                f"WITH unindexed AS MATERIALIZED (SELECT m.id, m.message_data FROM {m} m "
                f"WHERE m.id > 0 AND NOT EXISTS "
                f"(SELECT 1 FROM {search_table} s WHERE s.item_id = m.id) "
                + (f"AND NOT EXISTS (SELECT 1 FROM {queue} q "
                   "WHERE m.id BETWEEN q.first_id AND q.last_id AND NOT q.deleted)"
                   if queued else "")
                + f") SELECT id FROM unindexed WHERE {words_fn}(message_data) <> ''::tsvector "
                "ORDER BY id"
            )

        self.index_missing = missing(queued=True)
        self.index_missing_unqueued = missing(queued=False)
        """For a database of version 5 or older (read-only), which has no queue."""
        self.index_extra = (
            f"SELECT s.item_id FROM {search_table} s WHERE s.item_id > 0 AND NOT EXISTS "
            f"(SELECT 1 FROM {m} m WHERE m.id = s.item_id) ORDER BY s.item_id"
        )
        # Rows whose owner lexemes (or session) differ, confirmed against the row
        # as reindex would write it: a word equal to an owner lexeme merges with it.
        self.index_wrong_owner = (
            f"SELECT m.id FROM {search_table} s JOIN {m} m ON m.id = s.item_id AND m.id > 0 "
            f"LEFT JOIN {owners} o ON o.session_id = m.session_id "
            f"WHERE (s.session_id <> m.session_id OR {OWNER_OF.format('s.words')} <> {owner}) "
            f"AND (s.session_id <> m.session_id "
            f"OR s.words <> {words_fn}(m.message_data) || {owner}) ORDER BY m.id"
        )
        # Index rows as reindex writes them, from items (:after, :upto] or from
        # sessions whose seq is in that range; each batch compared with what is
        # stored and only the rows that differ written.
        # OFFSET 0 keeps the words' subquery whole: flattened, the planner
        # computes each item's words twice, for the filter and for the row.
        fresh_items = (
            f"SELECT m.id AS item_id, m.session_id, m.w || {owner} AS words "
            f"FROM (SELECT id, session_id, {words_fn}(message_data) AS w "
            f"FROM {m} WHERE id > %(after)s AND id <= %(upto)s AND id > 0 OFFSET 0) m "
            f"LEFT JOIN {owners} o ON o.session_id = m.session_id "
            "WHERE m.w <> ''::tsvector"
        )
        fresh_titles = (
            f"SELECT -seq AS item_id, session_id, w || {owner_fn}(user_id, session_id) "
            f"AS words FROM (SELECT seq, session_id, user_id, {title_words_fn}(metadata) "
            f"AS w FROM {owners} WHERE seq > %(after)s AND seq <= %(upto)s OFFSET 0) t "
            "WHERE w <> ''::tsvector"
        )
        self.index_wrong_titles = (
            f"SELECT coalesce(f.session_id, s.session_id) FROM ({fresh_titles}) f "
            f"FULL JOIN (SELECT item_id, session_id, words FROM {search_table} "
            "WHERE item_id <= 0) s ON s.item_id = f.item_id "
            "WHERE (f.session_id, f.words) IS DISTINCT FROM (s.session_id, s.words) "
            "ORDER BY 1"
        )
        # The compacted history's words (schema.sql, version 9) as its trigger
        # writes them; check and reindex compare every row's.
        fresh_words = (
            f"CASE WHEN h.replaced THEN NULL ELSE nullif({words_fn}(h.message_data), "
            f"''::tsvector) || {owner_fn}((SELECT o.user_id FROM {owners} o "
            "WHERE o.session_id = h.session_id), h.session_id) END"
        )
        fresh_history = (
            f"SELECT h.session_id, h.layer, h.created_at, h.id, {fresh_words} AS words "
            f"FROM {history} h OFFSET 0"
        )
        self.index_wrong_history = (
            f"SELECT DISTINCT f.session_id FROM ({fresh_history}) f JOIN {history} h "
            "ON (h.session_id, h.layer, h.created_at, h.id) "
            "= (f.session_id, f.layer, f.created_at, f.id) "
            "WHERE h.words IS DISTINCT FROM f.words ORDER BY 1"
        )
        self.reindex_history = (
            f"WITH fixed AS (UPDATE {history} h SET words = f.words FROM ({fresh_history}) f "
            "WHERE (h.session_id, h.layer, h.created_at, h.id) "
            "= (f.session_id, f.layer, f.created_at, f.id) "
            "AND h.words IS DISTINCT FROM f.words RETURNING 1) SELECT count(*) FROM fixed"
        )

        def repair(fresh: str, stored: str) -> str:
            return (
                f"WITH fresh AS MATERIALIZED ({fresh}), "
                f"gone AS (DELETE FROM {search_table} s "
                f"WHERE {stored} AND NOT EXISTS "
                "(SELECT 1 FROM fresh f WHERE f.item_id = s.item_id) RETURNING 1), "
                f"put AS (INSERT INTO {search_table} (item_id, session_id, words) "
                "SELECT item_id, session_id, words FROM fresh ON CONFLICT (item_id) DO UPDATE "
                "SET session_id = EXCLUDED.session_id, words = EXCLUDED.words "
                f"WHERE ({search_table}.session_id, {search_table}.words) "
                "IS DISTINCT FROM (EXCLUDED.session_id, EXCLUDED.words) RETURNING 1) "
                "SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM put)"
            )

        self.reindex_items = repair(
            fresh_items, "s.item_id > %(after)s AND s.item_id <= %(upto)s AND s.item_id > 0")
        self.reindex_titles = repair(
            fresh_titles, "s.item_id >= -%(upto)s AND s.item_id < -%(after)s")
        # The ranges to cover: what is stored, and what it is derived from.
        self.item_range = (
            f"SELECT least((SELECT min(id) FROM {m} WHERE id > 0), "
            f"(SELECT min(item_id) FROM {search_table} WHERE item_id > 0)), "
            f"greatest((SELECT max(id) FROM {m}), (SELECT max(item_id) FROM {search_table}))"
        )
        # The id of the count-th item (seq of the count-th session) after one:
        # reindex's batches follow the rows, not the ids (as SQLite's), so one
        # item at id 2**62 is not 2**62 / 20,000 batches; the index's own rows
        # are covered by the same contiguous ranges.
        self.nth_item_after = (
            f"SELECT id FROM {m} WHERE id > %(after)s ORDER BY id OFFSET %(count)s - 1 LIMIT 1"
        )
        self.nth_title_after = (
            f"SELECT seq FROM {owners} WHERE seq > %(after)s ORDER BY seq "
            "OFFSET %(count)s - 1 LIMIT 1"
        )
        self.title_range = (
            f"SELECT least((SELECT min(seq) FROM {owners}), "
            f"(SELECT min(-item_id) FROM {search_table} WHERE item_id <= 0)), "
            f"greatest((SELECT max(seq) FROM {owners}), "
            f"(SELECT -min(item_id) FROM {search_table}))"
        )
        # Writers change the index only through the triggers, which take this
        # table's ROW EXCLUSIVE lock before they read anything: a reindex batch
        # holding SHARE ROW EXCLUSIVE sees every writer before it whole (it
        # waits for those that began), and those after it see its rows.
        self.lock_index = f"LOCK TABLE {search_table} IN SHARE ROW EXCLUSIVE MODE"
        # schema.sql declares sessions_dal_words and sessions_dal_title_words
        # PARALLEL SAFE, but their EXCEPTION blocks are subtransactions, which a
        # parallel worker refuses: a scan of every item big enough for a
        # parallel plan would fail. The statements that call them over many
        # rows run with this in their transaction.
        self.no_parallel = "SET LOCAL max_parallel_workers_per_gather = 0"

    def table(self, name: str) -> str:
        """A table by its default name, qualified: the actual name, in our schema or
        (a read-only repository's stand-in) in this connection's temporary one."""
        actual = self.names.get(name, name)
        return quote(actual, "pg_temp" if name in self.temporary else self.schema)

    def ddl(self, statement: str) -> str:
        """A statement of this backend's schema.sql (default names) for this schema and names."""
        def qualified(match: re.Match[str]) -> str:
            table, function, index, created_index = match.groups()
            if created_index is not None:  # CREATE INDEX: it goes in its table's schema
                return quote(self.index)
            if table is not None:
                return quote(self.names.get(table, table), self.schema)
            if function is not None:
                return quote(function, self.schema)
            return "'" + quote(index, self.schema).replace("'", "''") + "'::regclass"

        return _DEFAULT_NAMES.sub(qualified, statement).replace('"sessions_dal_ctype"',
                                                                self.collation)


class _ItemSQL:
    """The item statements of a handle, given the key expression that guards them."""

    __slots__ = ("all", "clear", "count", "history_from", "history_part", "history_start",
                 "latest", "latest_before", "layer", "page", "pop", "size", "view_part",
                 "view_start")

    def __init__(self, messages: str, key: str, history: str, marks: str) -> None:
        self.all = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY created_at, id"
        )
        self.latest = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY created_at DESC, id DESC LIMIT %s"
        )
        # Scrolling back: the index walks back past the newest ``offset`` items
        # (LIMIT NULL is no limit), so the cost is what is skipped plus what is read.
        self.latest_before = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
        )
        # The position's time travels as text: exact, and 'infinity' (which
        # psycopg cannot load as a datetime) compares like any other. Named
        # ``at``: under its own name, ORDER BY created_at would sort by the text
        # (an output column wins over the table's), every remaining row a page.
        select = (
            f"SELECT id, message_data, created_at::text AS at FROM {messages} "
            f"WHERE session_id = {key}"
        )
        self.page = {
            # (newest_first, from the start): keyset pages of iter_items, by
            # the row value (created_at, id) the index is ordered by
            (False, True): f"{select} ORDER BY created_at, id LIMIT %s",
            (False, False): f"{select} AND (created_at, id) > (%s::timestamp, %s) "
                            "ORDER BY created_at, id LIMIT %s",
            (True, True): f"{select} ORDER BY created_at DESC, id DESC LIMIT %s",
            (True, False): f"{select} AND (created_at, id) < (%s::timestamp, %s) "
                           "ORDER BY created_at DESC, id DESC LIMIT %s",
        }
        self.pop = (
            f"DELETE FROM {messages} WHERE id = (SELECT id FROM {messages} "
            f"WHERE session_id = {key} ORDER BY created_at DESC, id DESC LIMIT 1) "
            "RETURNING id, message_data"
        )
        self.clear = f"DELETE FROM {messages} WHERE session_id = {key}"
        self.count = f"SELECT count(*) FROM {messages} WHERE session_id = {key}"
        # The transcript (schema.sql, version 8), as on SQLite: the compacted
        # items (part 0) layer by layer, then the view's that are not a
        # replacement (part 1), each in (created_at, id) order; a page reads one
        # part in index order after a position (the time as text, as in
        # ``page``), or both after an offset; every row says the latest layer.
        # Each max() by its own index (a max over a UNION would read every row).
        self.layer = (
            f"SELECT greatest(coalesce((SELECT max(layer) FROM {history} "
            f"WHERE session_id = {key}), 0), coalesce((SELECT max(layer) FROM {marks} "
            f"WHERE session_id = {key}), 0))"
        )
        self.history_part = (
            f"SELECT ({self.layer}), layer, created_at::text AS at, id, message_data "
            f"FROM {history} WHERE session_id = {key} AND NOT replaced "
            "AND (layer, created_at, id) > (%s, %s::timestamp, %s) "
            "ORDER BY layer, created_at, id LIMIT %s"
        )
        self.history_start = (0, "-infinity", _FIRST_ID)
        self.view_part = (
            f"SELECT ({self.layer}), created_at::text AS at, id, message_data FROM {messages} m "
            f"WHERE session_id = {key} AND (created_at, id) > (%s::timestamp, %s) "
            f"AND NOT EXISTS (SELECT 1 FROM {marks} r WHERE r.id = m.id) "
            "ORDER BY created_at, id LIMIT %s"
        )
        self.view_start = ("-infinity", _FIRST_ID)
        transcript = (
            f"SELECT 0 AS part, layer, created_at, id, message_data FROM {history} "
            f"WHERE session_id = {key} AND NOT replaced "
            f"UNION ALL SELECT 1, 0, created_at, id, message_data FROM {messages} m "
            f"WHERE session_id = {key} "
            f"AND NOT EXISTS (SELECT 1 FROM {marks} r WHERE r.id = m.id)"
        )
        self.history_from = (
            f"SELECT ({self.layer}), part, layer, created_at::text AS at, id, message_data "
            f"FROM ({transcript}) t ORDER BY part, layer, created_at, id LIMIT %s OFFSET %s"
        )
        # How big: the view's items and bytes (their JSON text's), the history's.
        self.size = (
            f"SELECT (SELECT count(*) FROM {messages} WHERE session_id = {key}), "
            f"(SELECT coalesce(sum(octet_length(message_data)), 0) FROM {messages} "
            f"WHERE session_id = {key}), "
            f"(SELECT count(*) FROM {history} WHERE session_id = {key}), "
            f"(SELECT coalesce(sum(octet_length(message_data)), 0) FROM {history} "
            f"WHERE session_id = {key})"
        )
