"""Every SQL statement of the SQLite store, built once from the database's table names.

openai-agents lets ``SQLiteSession`` name its two tables; a store is built for
one pair of names, checked by the public layer and quoted here, once. No
statement is rewritten while the store runs. Values are always ``?`` bound
parameters.
"""

from __future__ import annotations

import functools
import re

from ..._search import MAX_TERMS

__all__ = ["SQL", "quote"]


def quote(name: str) -> str:
    """``name`` as an SQL identifier. Names are checked before (letters, digits, ``_``)."""
    return f'"{name}"'


# The names schema.sql is written with; rewritten in its DDL for other names.
_DEFAULT_NAMES = re.compile(r"\b(agent_sessions|agent_messages|idx_agent_messages_session_id)\b")


_MARK = "coalesce((SELECT upto FROM sessions_dal_search_state), 0)"
_FIRST_ID = -(2 ** 63)  # before every rowid
_BYTES = "length(CAST(message_data AS BLOB))"  # a stored text's size
"""The last item id the search index has looked at (schema.sql, version 5)."""


class SQL:
    """The statements for one pair of openai-agents table names."""

    def __init__(self, sessions_table: str, messages_table: str) -> None:
        self.sessions_table = sessions_table
        self.messages_table = messages_table
        self.index = f"idx_{messages_table}_session_id"
        """The items index, named as openai-agents names it."""
        s, m = quote(sessions_table), quote(messages_table)
        columns = "session_id, user_id, metadata, created_at, updated_at"
        # Newest first, ties by insertion order (later first): a total order,
        # so offset pages never skip or repeat while nothing is inserted. By
        # activity, ties fall back to that order. Each is a range scan of an
        # index on (user_id, <the order's columns>), whatever the user's count.
        orders = {"created": ("created_at", "seq"), "updated": ("updated_at", "created_at", "seq")}
        owned_ids = "SELECT session_id FROM agent_user_sessions WHERE user_id = ?"
        # Sessions openai-agents wrote that nobody has claimed: an anti-join,
        # so the cost grows with the sessions table; for adoption, not hot paths.
        unowned = (
            f"FROM {s} a WHERE NOT EXISTS "
            "(SELECT 1 FROM agent_user_sessions o WHERE o.session_id = a.session_id)"
        )

        # -- users and their sessions ------------------------------------------
        self.insert_user = (
            "INSERT INTO agent_users (user_id, created_at) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO NOTHING"
        )
        # DO NOTHING on a taken id: no row changed means "exists"; any other
        # constraint failure stays an error of its own.
        self.insert_agent_session = (
            f"INSERT INTO {s} (session_id) VALUES (?) ON CONFLICT (session_id) DO NOTHING"
        )
        # A new session: refused (no row inserted) if the id is taken, by us or
        # by openai-agents (whose row of a session comes with its first items).
        self.insert_new_owned = (
            f"INSERT INTO agent_user_sessions ({columns}) "
            "SELECT :session, :user, :metadata, :now, :now "
            f"WHERE NOT EXISTS (SELECT 1 FROM {s} WHERE session_id = :session) "
            "ON CONFLICT (session_id) DO NOTHING"
        )
        self.insert_owned = (
            f"INSERT INTO agent_user_sessions ({columns}) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id) DO NOTHING"
        )
        self.select_one = (
            f"SELECT {columns}, seq FROM agent_user_sessions WHERE session_id = ? AND user_id = ?"
        )
        self.select_page: dict[str, str] = {}
        self.select_first: dict[str, str] = {}
        self.select_after: dict[str, str] = {}
        """By order: the next page after a keyset, the row value of the order's columns."""
        for name, keys in orders.items():
            order = "ORDER BY " + ", ".join(f"{key} DESC" for key in keys)
            select = f"SELECT {columns}, seq FROM agent_user_sessions WHERE user_id = ?"
            self.select_page[name] = f"{select} {order} LIMIT ? OFFSET ?"
            self.select_first[name] = f"{select} {order} LIMIT ?"
            self.select_after[name] = (
                f"{select} AND ({', '.join(keys)}) < ({', '.join('?' * len(keys))}) "
                f"{order} LIMIT ?"
            )
        self.count_sessions = "SELECT count(*) FROM agent_user_sessions WHERE user_id = ?"
        self._owned_columns = ", ".join("o." + c for c in columns.split(", "))
        self.optimize_search_index = (
            "INSERT INTO sessions_dal_search (sessions_dal_search) VALUES ('optimize')"
        )
        # The compacted history's index (schema.sql, version 9), merged as the
        # items' is by every erasing call (a no-op when nothing changed).
        self.optimize_history_index = (
            "INSERT INTO sessions_dal_search_history (sessions_dal_search_history) "
            "VALUES ('optimize')"
        )
        self.has_history_index = (
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
            "AND name = 'sessions_dal_search_history'"
        )
        self.has_search_index = (
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
            "AND name = 'sessions_dal_search'"
        )
        self.update_metadata = (
            "UPDATE agent_user_sessions SET metadata = ? WHERE session_id = ? AND user_id = ? "
            f"RETURNING {columns}, seq"
        )
        self.delete_owned = "DELETE FROM agent_user_sessions WHERE session_id = ? AND user_id = ?"
        self.delete_items = f"DELETE FROM {m} WHERE session_id = ?"
        self.delete_agent_session = f"DELETE FROM {s} WHERE session_id = ?"
        # Erasing: before a delete, each text is overwritten in place with as
        # many '0's as it has bytes (same size, so SQLite rewrites the cell where
        # it is). Deleting alone is not enough even with secure_delete: when a
        # delete rebalances the tree, cells still to be deleted are copied and
        # stale copies stay in the pages' free space.
        def scrub(column: str) -> str:
            size = f"length(CAST({column} AS BLOB))"
            return f"{column} = substr(hex(zeroblob({size})), 1, {size})"

        self.scrub_items = f"UPDATE {m} SET {scrub('message_data')} WHERE session_id = ?"
        self.scrub_user_items = (
            f"UPDATE {m} SET {scrub('message_data')} WHERE session_id IN ({owned_ids})"
        )
        self.scrub_owned = (
            f"UPDATE agent_user_sessions SET {scrub('metadata')} "
            "WHERE session_id = ? AND user_id = ?"
        )
        self.scrub_owned_anyones = (
            f"UPDATE agent_user_sessions SET {scrub('metadata')} WHERE session_id = ?"
        )
        self.scrub_user_owned = (
            f"UPDATE agent_user_sessions SET {scrub('metadata')} WHERE user_id = ?"
        )
        # The search index's rows of those items and titles too (its stored
        # text, and the owner's tokens): an update of an FTS5 row re-indexes
        # it, so the index stays consistent, and the content is overwritten.
        search_scrub = f"UPDATE sessions_dal_search SET {scrub('words')}, {scrub('owner')}"
        # Found first, then overwritten row by row: given `rowid IN (subquery)`,
        # an FTS5 table costs about ten times as much per row (measured). The
        # items up to the index's mark (the others, and those with ids of 0 or
        # less, have no row) and the titles.
        self.scrub_search_row = f"{search_scrub} WHERE rowid = ?"
        self.delete_search_row = "DELETE FROM sessions_dal_search WHERE rowid = ?"
        self.indexed_of_session = (
            f"SELECT id FROM {m} WHERE session_id = :session AND id > 0 AND id <= {_MARK} "
            "UNION ALL SELECT -seq FROM agent_user_sessions WHERE session_id = :session"
        )
        self.indexed_of_user = (
            f"SELECT id FROM {m} WHERE session_id IN (SELECT session_id FROM "
            f"agent_user_sessions WHERE user_id = :user) AND id > 0 AND id <= {_MARK} "
            "UNION ALL SELECT -seq FROM agent_user_sessions WHERE user_id = :user"
        )
        self.delete_user_items = f"DELETE FROM {m} WHERE session_id IN ({owned_ids})"
        self.delete_user_agent_sessions = f"DELETE FROM {s} WHERE session_id IN ({owned_ids})"
        self.delete_user_owned = "DELETE FROM agent_user_sessions WHERE user_id = ?"
        self.delete_user = "DELETE FROM agent_users WHERE user_id = ?"
        self.select_by_id = f"SELECT {columns}, seq FROM agent_user_sessions WHERE session_id = ?"
        self.select_users = (
            "SELECT user_id, created_at, (SELECT count(*) FROM agent_user_sessions s "
            "WHERE s.user_id = u.user_id) FROM agent_users u ORDER BY user_id LIMIT ? OFFSET ?"
        )
        self.select_owner = "SELECT user_id FROM agent_user_sessions WHERE session_id = ?"

        # -- prune: the sessions to delete, then each if it is still as found ------
        # A window over each user's sessions in the activity order ranks them;
        # NULL for keep_last or the cutoff leaves that test out. By one user,
        # a range of the activity index; for all, one pass over the table. A
        # time that is not ours (edited by hand) marks a damaged row: left alone,
        # as on PostgreSQL, and counted by neither rule.
        rank = ("row_number() OVER (PARTITION BY user_id "
                "ORDER BY updated_at DESC, created_at DESC, seq DESC)")
        ours = "updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*'"
        self.prune_candidates: dict[bool, str] = {}
        for by_user in (False, True):
            where = f"WHERE {ours} AND user_id = ?" if by_user else f"WHERE {ours}"
            self.prune_candidates[by_user] = (
                f"SELECT session_id, user_id, updated_at FROM (SELECT session_id, user_id, "
                f"updated_at, {rank} AS r FROM agent_user_sessions {where}) "
                "WHERE r > ? OR updated_at < ? ORDER BY user_id, updated_at"
            )
        self.prune_unowned_candidates = (
            f"SELECT a.session_id, a.updated_at {unowned} AND a.updated_at < ? "
            "ORDER BY a.updated_at"
        )
        self.scrub_owned_as_found = (
            f"UPDATE agent_user_sessions SET {scrub('metadata')} "
            "WHERE session_id = ? AND user_id = ? AND updated_at = ?"
        )
        self.unowned_as_found = (
            f"SELECT 1 {unowned} AND a.session_id = ? AND a.updated_at = ?"
        )
        self.count_items_of = f"SELECT count(*) FROM {m} WHERE session_id = ?"

        # -- sessions openai-agents wrote ----------------------------------------
        self.select_unowned = (
            f"SELECT session_id, created_at, updated_at {unowned} "
            "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        )
        self.select_unowned_one = (
            f"SELECT session_id, created_at, updated_at {unowned} AND session_id = ?"
        )
        self.count_unowned = f"SELECT count(*) {unowned}"
        self.select_agent_times = f"SELECT created_at, updated_at FROM {s} WHERE session_id = ?"
        self.delete_unowned = (
            f"DELETE FROM {s} WHERE session_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM agent_user_sessions WHERE session_id = ?)"
        )
        self.delete_unowned_items = (
            f"DELETE FROM {m} WHERE session_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM agent_user_sessions WHERE session_id = ?)"
        )

        # -- items, as a session's owner sees them --------------------------------
        # Every item statement looks items up by a key that is the session id
        # while the session is still the handle's owner's, and NULL (matching
        # nothing) once it is not: one lookup of the unique session_id index
        # per statement, not a test per item (an EXISTS term was measured at
        # ~150 instructions per row counted).
        owned_key = (
            "(SELECT session_id FROM agent_user_sessions WHERE session_id = ? AND user_id = ?)"
        )
        unowned_key = (
            "(SELECT ? WHERE NOT EXISTS "
            "(SELECT 1 FROM agent_user_sessions WHERE session_id = ?))"
        )
        self.items = {True: _ItemSQL(m, owned_key, scrub("message_data")),
                      False: _ItemSQL(m, unowned_key, scrub("message_data"))}
        """By whether the handle has an owner; the key's parameters are
        (session_id, user_id), or (session_id, session_id) for nobody's."""
        self.insert_item = f"INSERT INTO {m} (session_id, message_data) VALUES (?, ?)"
        # fork_session: rowids are given in the order the SELECT yields rows,
        # so the copy keeps the original's order; each item keeps its time.
        self.is_owned = "SELECT 1 FROM agent_user_sessions WHERE session_id = ? AND user_id = ?"
        self.count_items = f"SELECT count(*) FROM {m} WHERE session_id = ?"
        self.copy_items = (
            f"INSERT INTO {m} (session_id, message_data, created_at) "
            f"SELECT ?, message_data, created_at FROM {m} WHERE session_id = ? "
            "ORDER BY id LIMIT ?"
        )
        # SQLiteSession.clear_session() deletes this row, so re-create it when
        # missing (the items have a foreign key to it); like SQLiteSession,
        # bump updated_at. Its time has whole seconds: within the same second
        # the row is left as it is, which spares the page write and the
        # activity trigger (the session's own stamp follows, see touch).
        self.upsert_agent_session = (
            f"INSERT INTO {s} (session_id) VALUES (?) "
            "ON CONFLICT (session_id) DO UPDATE SET updated_at = CURRENT_TIMESTAMP "
            "WHERE updated_at IS NOT CURRENT_TIMESTAMP"
        )
        self.touch = (
            "UPDATE agent_user_sessions SET updated_at = ? WHERE session_id = ? AND user_id = ?"
        )

        # -- compaction (schema.sql, version 8) -------------------------------------
        # The view's items, to choose the first ``upto``; the next layer's number.
        self.view_rows = f"SELECT id, created_at FROM {m} WHERE session_id = ? ORDER BY id"
        # Layers count compactions: of the history's rows and the replacements'
        # (one that moved nothing has only the latter).
        self.next_layer = (
            "SELECT coalesce(max(layer), 0) + 1 FROM (SELECT layer FROM sessions_dal_history "
            "WHERE session_id = :session UNION ALL SELECT layer FROM sessions_dal_replacements "
            "WHERE session_id = :session)"
        )
        # The items leaving the view, into the history (a replacement stays one).
        self.to_history = (
            "INSERT INTO sessions_dal_history "
            "(session_id, id, layer, replaced, message_data, created_at) "
            "SELECT m.session_id, m.id, :layer, r.id IS NOT NULL, m.message_data, m.created_at "
            f"FROM {m} m LEFT JOIN sessions_dal_replacements r ON r.id = m.id "
            "WHERE m.session_id = :session AND m.id <= :last"
        )
        self.insert_item_at = (
            f"INSERT INTO {m} (session_id, message_data, created_at) "
            "VALUES (?, ?, coalesce(?, CURRENT_TIMESTAMP))"
        )
        # The items staying, copied after the replacement (new ids, same order
        # and times); then the ids the new rows got, and the old rows deleted.
        self.copy_kept = (
            f"INSERT INTO {m} (session_id, message_data, created_at) "
            f"SELECT session_id, message_data, created_at FROM {m} "
            "WHERE session_id = :session AND id > :last AND id <= :old ORDER BY id"
        )
        self.kept_layers = (
            f"SELECT r.layer FROM {m} m LEFT JOIN sessions_dal_replacements r ON r.id = m.id "
            "WHERE m.session_id = :session AND m.id > :last AND m.id <= :old ORDER BY m.id"
        )
        self.new_ids = f"SELECT id FROM {m} WHERE session_id = ? AND id > ? ORDER BY id"
        # Overwritten before deleted, as erasing calls do: the copies (history,
        # new rows) are what stays, and erasing those later must leave no
        # stale cell of these behind (see scrub_items).
        self.indexed_old = (
            f"SELECT id FROM {m} WHERE session_id = :session AND id > 0 AND id <= :old "
            f"AND id <= {_MARK}"
        )
        self.delete_old = (
            f"UPDATE {m} SET {scrub('message_data')} WHERE session_id = ? AND id <= ?",
            f"DELETE FROM {m} WHERE session_id = ? AND id <= ?",
        )
        self.delete_old_marks = (
            "DELETE FROM sessions_dal_replacements WHERE session_id = ? AND id <= ?"
        )
        self.mark_replacement = (
            "INSERT INTO sessions_dal_replacements (id, session_id, layer) VALUES (?, ?, ?)"
        )
        # A fork: the original's history whole, and the marks of the items it
        # copies (the copies' ids, in order, matched with the originals').
        self.copy_history = (
            "INSERT INTO sessions_dal_history "
            "(session_id, id, layer, replaced, message_data, created_at) "
            "SELECT ?, id, layer, replaced, message_data, created_at "
            "FROM sessions_dal_history WHERE session_id = ?"
        )
        self.has_marks = "SELECT 1 FROM sessions_dal_replacements WHERE session_id = ? LIMIT 1"
        self.first_layers = (
            f"SELECT r.layer FROM {m} m LEFT JOIN sessions_dal_replacements r ON r.id = m.id "
            "WHERE m.session_id = ? ORDER BY m.id LIMIT ?"
        )
        self.item_ids = f"SELECT id FROM {m} WHERE session_id = ? ORDER BY id"
        # Sizes: a user's sessions all together; the largest users and sessions
        # (the owned ones), items and history apart. Each reads every item's size.
        users_sessions = "SELECT session_id FROM agent_user_sessions WHERE user_id = :user"
        self.user_size = (
            f"SELECT (SELECT count(*) FROM {m} WHERE session_id IN ({users_sessions})), "
            f"(SELECT coalesce(sum({_BYTES}), 0) FROM {m} "
            f"WHERE session_id IN ({users_sessions})), "
            "(SELECT count(*) FROM sessions_dal_history "
            f"WHERE session_id IN ({users_sessions})), "
            f"(SELECT coalesce(sum({_BYTES}), 0) FROM sessions_dal_history "
            f"WHERE session_id IN ({users_sessions}))"
        )
        per_session = (
            f"WITH v AS (SELECT session_id, count(*) AS n, sum({_BYTES}) AS b FROM {m} "
            "GROUP BY session_id), "
            f"h AS (SELECT session_id, count(*) AS n, sum({_BYTES}) AS b "
            "FROM sessions_dal_history GROUP BY session_id), "
            "s AS (SELECT o.session_id, o.user_id, coalesce(v.n, 0) AS n, coalesce(v.b, 0) AS b, "
            "coalesce(h.n, 0) AS hn, coalesce(h.b, 0) AS hb FROM agent_user_sessions o "
            "LEFT JOIN v ON v.session_id = o.session_id "
            "LEFT JOIN h ON h.session_id = o.session_id) "
        )
        self.largest_sessions = (
            f"{per_session}SELECT session_id, user_id, n, b, hn, hb FROM s "
            "ORDER BY b + hb DESC, session_id LIMIT ?"
        )
        self.largest_users = (
            f"{per_session}SELECT user_id, count(*), sum(n), sum(b), sum(hn), sum(hb) FROM s "
            "GROUP BY user_id ORDER BY sum(b) + sum(hb) DESC, user_id LIMIT ?"
        )
        self.count_history = "SELECT count(*) FROM sessions_dal_history"
        # Export and import of the history (transfer's format 3).
        self.export_history = (
            "SELECT layer, replaced, message_data, id FROM sessions_dal_history "
            "WHERE session_id = ? AND (layer, id) > (?, ?) ORDER BY layer, id LIMIT ?"
        )
        self.export_marks = "SELECT id, layer FROM sessions_dal_replacements WHERE session_id = ?"
        self.last_history_id = (
            "SELECT coalesce(max(id), 0) FROM sessions_dal_history WHERE session_id = ?"
        )
        self.insert_history = (
            "INSERT INTO sessions_dal_history (session_id, id, layer, replaced, message_data) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        # Clearing a session erases its history too (overwritten, then deleted).
        self.scrub_history = (
            f"UPDATE sessions_dal_history SET {scrub('message_data')} WHERE session_id = ?"
        )
        self.clear_history = (
            "DELETE FROM sessions_dal_history WHERE session_id = ?",
            "DELETE FROM sessions_dal_replacements WHERE session_id = ?",
        )

        # -- the whole database: counts, export, import ----------------------------
        self.count_all = (
            "SELECT (SELECT count(*) FROM agent_users), "
            "(SELECT count(*) FROM agent_user_sessions), "
            f"(SELECT count(*) {unowned}), (SELECT count(*) FROM {m})"
        )
        self.export_users = (
            "SELECT user_id, created_at FROM agent_users WHERE user_id > ? "
            "ORDER BY user_id LIMIT ?"
        )
        self.export_user = "SELECT user_id, created_at FROM agent_users WHERE user_id = ?"
        self.export_sessions = (
            f"SELECT {columns}, seq FROM agent_user_sessions "
            "WHERE user_id = ? AND (created_at, seq) > (?, ?) ORDER BY created_at, seq LIMIT ?"
        )
        # In rowid order, so that an import re-creates the order unowned
        # sessions list in (created_at, then rowid).
        self.export_unowned = (
            f"SELECT rowid, session_id, created_at, updated_at FROM {s} a WHERE rowid > ? "
            "AND NOT EXISTS (SELECT 1 FROM agent_user_sessions o "
            "WHERE o.session_id = a.session_id) ORDER BY rowid LIMIT ?"
        )
        self.export_items = (
            f"SELECT id, message_data FROM {m} WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?"
        )
        self.exists = (
            f"SELECT 1 FROM {s} WHERE session_id = ? "
            "UNION ALL SELECT 1 FROM agent_user_sessions WHERE session_id = ?"
        )
        self.insert_unowned = (
            f"INSERT INTO {s} (session_id, created_at, updated_at) VALUES (?, ?, ?)"
        )
        self.insert_agent_session_plain = f"INSERT INTO {s} (session_id) VALUES (?)"
        self.delete_anywhere = (
            f"DELETE FROM {m} WHERE session_id = ?",
            f"DELETE FROM {s} WHERE session_id = ?",
            "DELETE FROM agent_user_sessions WHERE session_id = ?",
        )

        # -- the search index against what it is derived from: check, reindex -------
        # An item's words and owner tokens as the triggers of schema.sql
        # (version 3) index them; NULL words: no row.
        words = (
            "(SELECT group_concat(value, ' ') FROM json_tree("
            r"replace(replace(m.message_data, '\\', '\u005c'), '\u0000', '\u0020')) "
            "WHERE type = 'text' AND (key IS NULL OR key NOT IN ("
            "'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status', "
            "'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data')))"
        )
        # Nobody's: '' as the triggers write it; the version 3 backfill wrote
        # 'u s' (hex(NULL) is ''), which matches no user either: the same.
        owner = "CASE WHEN o.user_id IS NULL THEN '' ELSE 'u' || hex(o.user_id) || ' s' || " \
                "hex(o.session_id) END"
        stored_owner = "CASE s.owner WHEN 'u s' THEN '' ELSE s.owner END"
        # check: what is cheap to compare on a big database (no item's words are
        # computed but those of items without a row); reindex compares it all.
        # Items up to the mark (a file of version 4, kept by triggers, has none:
        # every item), by whether the file has it.
        missing = (
            f"SELECT m.id FROM {m} m WHERE m.id > 0 AND m.id <= {{mark}} "
            "AND json_valid(m.message_data) AND NOT EXISTS "
            "(SELECT 1 FROM sessions_dal_search s WHERE s.rowid = m.id) "
            f"AND {words} IS NOT NULL ORDER BY m.id"
        )
        self.index_missing = {True: missing.replace("{mark}", _MARK),
                              False: missing.replace("{mark}", str(2 ** 63 - 1))}
        self.index_extra = (
            "SELECT s.rowid FROM sessions_dal_search s WHERE s.rowid > 0 AND NOT EXISTS "
            f"(SELECT 1 FROM {m} m WHERE m.id = s.rowid) ORDER BY s.rowid"
        )
        self.index_wrong_owner = (
            f"SELECT m.id FROM {m} m JOIN sessions_dal_search s ON s.rowid = m.id "
            "LEFT JOIN agent_user_sessions o ON o.session_id = m.session_id "
            f"WHERE m.id > 0 AND {stored_owner} IS NOT {owner} ORDER BY m.id"
        )
        # The rows as the triggers write them: of the items (:after, :upto], and
        # of the titles of the sessions whose seq is in that range.
        fresh_items = (
            f"SELECT m.id, {words} AS words, {owner} AS owner FROM {m} m "
            "LEFT JOIN agent_user_sessions o ON o.session_id = m.session_id "
            "WHERE json_valid(m.message_data) AND m.id > max(:after, 0) AND m.id <= :upto"
        )
        # A title's words: schema.sql's view (version 7), which its triggers read too.
        fresh_titles = (
            "SELECT -seq AS id, words, owner FROM sessions_dal_title_words "
            "WHERE seq > :after AND seq <= :upto"
        )

        # A compacted history item's: schema.sql's view (version 9), as for titles.
        fresh_history = (
            "SELECT n AS id, words, owner FROM sessions_dal_search_history_words "
            "WHERE n > :after AND n <= :upto"
        )

        def differing(fresh: str, stored: str, index: str = "sessions_dal_search") -> str:
            """The row ids where what is stored is not what ``fresh`` says (either way)."""
            return (
                f"SELECT f.id FROM ({fresh}) f LEFT JOIN {index} s "
                "ON s.rowid = f.id WHERE f.words IS NOT NULL AND (s.rowid IS NULL "
                f"OR s.words IS NOT f.words OR {stored_owner} IS NOT f.owner) "
                f"UNION SELECT s.rowid FROM {index} s WHERE {stored} "
                f"AND s.rowid NOT IN (SELECT id FROM ({fresh}) WHERE words IS NOT NULL)"
            )

        self.index_differs = {
            "items": differing(fresh_items, "s.rowid > max(:after, 0) AND s.rowid <= :upto"),
            "titles": differing(fresh_titles, "s.rowid >= -:upto AND s.rowid < -:after"),
            "history": differing(fresh_history, "s.rowid > :after AND s.rowid <= :upto",
                                 "sessions_dal_search_history"),
        }
        self.index_wrong_history = (
            "SELECT DISTINCT coalesce(h.session_id, 'row ' || d.id) FROM ("
            f"{self.index_differs['history']}) d LEFT JOIN sessions_dal_history h "
            "ON h.n = d.id ORDER BY 1"
        )
        self.index_wrong_titles = (
            "SELECT coalesce(o.session_id, 'row ' || d.id) FROM ("
            f"{self.index_differs['titles']}) d LEFT JOIN agent_user_sessions o "
            "ON o.seq = -d.id ORDER BY 1"
        )
        # Items join the index when it is searched (schema.sql, version 5): the
        # mark, and the ids to index after it; then each range (:after, :upto]
        # of them, and the mark moved past it, in one transaction.
        self.search_mark = (
            f"SELECT {_MARK}, (SELECT max(id) FROM {m})"
        )
        self.index_new = (
            "INSERT OR REPLACE INTO sessions_dal_search (rowid, words, owner) "
            f"SELECT id, words, owner FROM ({fresh_items}) WHERE words IS NOT NULL"
        )
        # Never past the last item: a later item's id must stay after the mark
        # (a reindex's range may end at a row of an item that does not exist).
        last_item = f"min(:upto, coalesce((SELECT max(id) FROM {m}), 0))"
        # An upsert: a mark deleted by hand is made again (its items indexed again).
        self.move_search_mark = (
            f"INSERT INTO sessions_dal_search_state (id, upto) VALUES (1, {last_item}) "
            "ON CONFLICT (id) DO UPDATE SET upto = excluded.upto WHERE upto < excluded.upto"
        )
        self.has_search_state = (
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
            "AND name = 'sessions_dal_search_state'"
        )
        # The id of the :count-th item after :after (batches of items, not ids).
        self.nth_item_after = (
            f"SELECT max(id) FROM (SELECT id FROM {m} WHERE id > :after ORDER BY id "
            "LIMIT :count) HAVING count(*) = :count"
        )
        self.any_item_indexed = "SELECT 1 FROM sessions_dal_search WHERE rowid > 0 LIMIT 1"
        # A read-only connection cannot move the mark: it indexes the items
        # after it in a temporary index of its own, searched beside the file's.
        self.tail_table = "temp.sessions_dal_search_tail"
        self.tail_create = (
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.tail_table} USING fts5("
            "words, tokenize = 'unicode61 remove_diacritics 2')"
        )
        self.tail_empty = f"DELETE FROM {self.tail_table}"
        self.tail_fill = (
            f"INSERT INTO {self.tail_table} (rowid, words) "
            f"SELECT id, words FROM ({fresh_items}) WHERE words IS NOT NULL"
        )
        # Rewriting the rows ``:ids`` (a JSON array): overwritten, deleted (as a
        # delete erases), then inserted again as the triggers would.
        listed = "rowid IN (SELECT value FROM json_each(:ids))"
        self.index_rewrite = {
            name: (
                f"{search_scrub} WHERE {listed}",
                f"DELETE FROM sessions_dal_search WHERE {listed}",
                "INSERT INTO sessions_dal_search (rowid, words, owner) SELECT id, words, owner "
                f"FROM ({fresh}) "
                "WHERE words IS NOT NULL AND id IN (SELECT value FROM json_each(:ids))",
            ) for name, fresh in (("items", fresh_items), ("titles", fresh_titles))
        }
        history_scrub = (f"UPDATE sessions_dal_search_history SET {scrub('words')}, "
                         f"{scrub('owner')}")
        self.index_rewrite["history"] = (
            f"{history_scrub} WHERE {listed}",
            f"DELETE FROM sessions_dal_search_history WHERE {listed}",
            "INSERT INTO sessions_dal_search_history (rowid, words, owner) "
            f"SELECT id, words, owner FROM ({fresh_history}) "
            "WHERE words IS NOT NULL AND id IN (SELECT value FROM json_each(:ids))",
        )
        # The ranges to cover: (least, greatest) of what it is derived from,
        # then of what is stored.
        self.index_ranges = {
            "items": (
                f"SELECT (SELECT min(id) FROM {m} WHERE id > 0), "
                f"(SELECT max(id) FROM {m} WHERE id > 0), "
                "(SELECT min(rowid) FROM sessions_dal_search WHERE rowid > 0), "
                "(SELECT max(rowid) FROM sessions_dal_search WHERE rowid > 0)"
            ),
            "titles": (
                "SELECT (SELECT min(seq) FROM agent_user_sessions), "
                "(SELECT max(seq) FROM agent_user_sessions), "
                "(SELECT -max(rowid) FROM sessions_dal_search WHERE rowid <= 0), "
                "(SELECT -min(rowid) FROM sessions_dal_search WHERE rowid <= 0)"
            ),
            "history": (
                "SELECT (SELECT min(n) FROM sessions_dal_history), "
                "(SELECT max(n) FROM sessions_dal_history), "
                "(SELECT min(rowid) FROM sessions_dal_search_history), "
                "(SELECT max(rowid) FROM sessions_dal_search_history)"
            ),
        }

    @functools.lru_cache(maxsize=2 * MAX_TERMS)  # noqa: B019 (one SQL per store, few sizes)
    def search(self, terms: int, history: bool) -> str:
        """The search for a query of ``terms`` terms (and in the compacted history's
        index too, if ``history``: a file of version 9 or later, see schema.sql).

        Named parameters: ``match`` the FTS5 query, ``upto`` the last item id to
        find (titles, at minus their seq, always; the history's rows, always),
        ``limit``, ``user``, ``session`` (or NULL), and ``t0``, ``t1``, ... each
        term's text, lower case. A row is ``(id, message_data, the session's
        columns, seq, layer, kind, position, score)``: ``layer`` NULL but for a
        history item; ``kind`` 2 for an item of the view, 1 of the history, 0
        a title; so that the hits of several indexes (a read-only search's, see
        :meth:`search_tail`) merge in order. The index answers for the owner's
        tokens (see schema.sql, version 3); the joins check ownership again,
        from the tables themselves. Best first: each term's count in the row's
        text, saturating, over the row's length (BM25's term-frequency part;
        not its corpus statistics, which FTS5's bm25() gathers from every
        user's rows, so that a search costs what the user's matches cost
        whatever the database's size); ties newest first, view items, then
        history items (the latest compaction's first), then titles.
        """
        items = (
            f"SELECT f.id AS id, m.message_data, {self._owned_columns}, o.seq, NULL AS layer, "
            "CASE WHEN f.id > 0 THEN 2 ELSE 0 END AS kind, abs(f.id) AS position, f.score "
            f"FROM ({_scored(terms, 'sessions_dal_search', ':match')} "
            "ORDER BY score DESC, id > 0 DESC, abs(id) DESC LIMIT :limit) AS f "
            f"LEFT JOIN {quote(self.messages_table)} m ON f.id > 0 AND m.id = f.id "
            "LEFT JOIN agent_user_sessions t ON f.id < 0 AND t.seq = -f.id "
            "JOIN agent_user_sessions o ON o.session_id = coalesce(m.session_id, t.session_id) "
            "WHERE o.user_id = :user AND (:session IS NULL OR o.session_id = :session)"
        )
        if not history:
            return f"{items} ORDER BY f.score DESC, f.id > 0 DESC, abs(f.id) DESC"
        kept = (
            f"SELECT h.id, h.message_data, {self._owned_columns}, o.seq, h.layer, 1, h.n, "
            f"f.score FROM ({_scored(terms, 'sessions_dal_search_history', ':match', None)} "
            "ORDER BY score DESC, id DESC LIMIT :limit) AS f "
            "JOIN sessions_dal_history h ON h.n = f.id "
            "JOIN agent_user_sessions o ON o.session_id = h.session_id "
            "WHERE o.user_id = :user AND (:session IS NULL OR o.session_id = :session)"
        )
        return (f"SELECT * FROM ({items}) UNION ALL SELECT * FROM ({kept}) "
                "ORDER BY score DESC, kind DESC, position DESC LIMIT :limit")

    @functools.lru_cache(maxsize=MAX_TERMS)  # noqa: B019 (one SQL per store, few sizes)
    def search_tail(self, terms: int) -> str:
        """:meth:`search` in a read-only search's temporary index of the items after
        the mark (``tail_table``), matching ``words`` (the terms only), in rows
        of the same shape.

        That index holds words, not owners, which a claim or a delete would
        leave stale: the owner and the item's existence come from the tables,
        and the limit applies after them.
        """
        return (
            f"SELECT f.id, m.message_data, {self._owned_columns}, o.seq, NULL, 2, f.id, "
            f"f.score FROM ({_scored(terms, self.tail_table, ':words')}) AS f "
            f"JOIN {quote(self.messages_table)} m ON m.id = f.id "
            "JOIN agent_user_sessions o ON o.session_id = m.session_id "
            "WHERE o.user_id = :user AND (:session IS NULL OR o.session_id = :session) "
            "ORDER BY f.score DESC, f.id DESC LIMIT :limit"
        )

    def ddl(self, statement: str) -> str:
        """A statement of ``schema.sql`` (written with the default names) for these names."""
        names = {
            "agent_sessions": self.sessions_table,
            "agent_messages": self.messages_table,
            "idx_agent_messages_session_id": self.index,
        }
        if names["agent_sessions"] == "agent_sessions" and names["agent_messages"] == (
            "agent_messages"
        ):
            return statement
        return _DEFAULT_NAMES.sub(lambda m: quote(names[m.group(1)]), statement)


class _ItemSQL:
    """The item statements of a handle, given the key expression that guards them."""

    __slots__ = (
        "all",
        "clear",
        "count",
        "delete_one",
        "history_from",
        "history_part",
        "history_start",
        "indexed_all",
        "indexed_one",
        "latest",
        "latest_before",
        "layer",
        "mine",
        "page",
        "pop",
        "scrub_all",
        "scrub_one",
        "size",
        "view_part",
        "view_start",
    )

    def __init__(self, messages: str, key: str, scrub: str) -> None:
        self.all = f"SELECT id, message_data FROM {messages} WHERE session_id = {key} ORDER BY id"
        self.latest = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY id DESC LIMIT ?"
        )
        # Scrolling back: the index walks back past the newest ``offset`` items
        # (LIMIT -1 is no limit), so the cost is what is skipped plus what is read.
        self.latest_before = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY id DESC LIMIT ? OFFSET ?"
        )
        select = f"SELECT id, message_data FROM {messages} WHERE session_id = {key}"
        self.page = {
            # (newest_first, from the start): keyset pages of iter_items
            (False, True): f"{select} ORDER BY id LIMIT ?",
            (False, False): f"{select} AND id > ? ORDER BY id LIMIT ?",
            (True, True): f"{select} ORDER BY id DESC LIMIT ?",
            (True, False): f"{select} AND id < ? ORDER BY id DESC LIMIT ?",
        }
        self.pop = (
            f"SELECT id, message_data FROM {messages} WHERE session_id = {key} "
            "ORDER BY id DESC LIMIT 1"
        )
        self.clear = f"DELETE FROM {messages} WHERE session_id = {key}"
        self.count = f"SELECT count(*) FROM {messages} WHERE session_id = {key}"
        self.mine = f"SELECT {key} IS NOT NULL"
        # Erasing (see SQL.scrub_items): a clear overwrites every text of the
        # session, and its index rows, before deleting; a pop the one item.
        self.scrub_all = f"UPDATE {messages} SET {scrub} WHERE session_id = {key}"
        self.indexed_all = (
            f"SELECT id FROM {messages} WHERE session_id = {key} AND id > 0 AND id <= {_MARK}"
        )
        self.scrub_one = f"UPDATE {messages} SET {scrub} WHERE id = ?"
        self.indexed_one = f"SELECT id FROM {messages} WHERE id = ? AND id > 0 AND id <= {_MARK}"
        self.delete_one = f"DELETE FROM {messages} WHERE id = ?"
        # The transcript (schema.sql, version 8): the compacted items (part 0),
        # layer by layer, then the view's items that are not a replacement
        # (part 1). A page reads one part after a position (its order columns:
        # index order, so a page costs the same however far into the walk),
        # or both after an offset; every row also says the number of the latest
        # compaction, which moves items from part 1 to part 0.
        # Each max() by its own index (a max over a UNION would read every row).
        self.layer = (
            "SELECT max(coalesce((SELECT max(layer) FROM sessions_dal_history "
            f"WHERE session_id = {key}), 0), coalesce((SELECT max(layer) "
            f"FROM sessions_dal_replacements WHERE session_id = {key}), 0))"
        )
        self.history_part = (
            f"SELECT ({self.layer}), layer, id, message_data FROM sessions_dal_history "
            f"WHERE session_id = {key} AND replaced = 0 AND (layer, id) > (?, ?) "
            "ORDER BY layer, id LIMIT ?"
        )
        self.history_start = (0, _FIRST_ID)
        self.view_part = (
            f"SELECT ({self.layer}), id, message_data FROM {messages} m "
            f"WHERE session_id = {key} AND id > ? "
            "AND NOT EXISTS (SELECT 1 FROM sessions_dal_replacements r WHERE r.id = m.id) "
            "ORDER BY id LIMIT ?"
        )
        self.view_start = (_FIRST_ID,)
        transcript = (
            f"SELECT 0 AS part, layer, id, message_data FROM sessions_dal_history "
            f"WHERE session_id = {key} AND replaced = 0 "
            f"UNION ALL SELECT 1, 0, id, message_data FROM {messages} m "
            f"WHERE session_id = {key} "
            "AND NOT EXISTS (SELECT 1 FROM sessions_dal_replacements r WHERE r.id = m.id)"
        )
        self.history_from = (
            f"SELECT ({self.layer}), part, layer, id, message_data FROM ({transcript}) "
            "ORDER BY part, layer, id LIMIT ? OFFSET ?"
        )
        # How big: the view's items and bytes (their JSON text's), the history's.
        self.size = (
            f"SELECT (SELECT count(*) FROM {messages} WHERE session_id = {key}), "
            f"(SELECT coalesce(sum({_BYTES}), 0) FROM {messages} WHERE session_id = {key}), "
            f"(SELECT count(*) FROM sessions_dal_history WHERE session_id = {key}), "
            f"(SELECT coalesce(sum({_BYTES}), 0) FROM sessions_dal_history "
            f"WHERE session_id = {key})"
        )

def _scored(terms: int, index: str, match: str, upto: str | None = ":upto") -> str:
    """The rows of ``index`` that ``match`` (a parameter) finds, up to ``upto`` (a
    parameter; ``None``: all), with their scores (see :meth:`SQL.search`)."""
    counts = ", ".join(
        f"(length(lw) - length(replace(lw, :t{n}, ''))) / (length(:t{n}) + 0.0) AS c{n}"
        for n in range(terms))
    score = " + ".join(
        f"c{n} / (c{n} + 1.2 * (0.25 + 0.75 * size / 300.0))" for n in range(terms))
    bound = "" if upto is None else f" AND rowid <= {upto}"
    return (
        f"SELECT id, {score} AS score FROM (SELECT id, size, {counts} FROM ("
        "SELECT rowid AS id, lower(words) AS lw, length(words) AS size "
        f"FROM {index} WHERE {index.rpartition('.')[2]} MATCH {match}{bound}) "
        "LIMIT -1)"
    )
