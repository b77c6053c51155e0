-- sessions_dal schema: the one source of truth for the database layout.
--
-- Each block below is one migration. "-- version: N" starts block N, and the
-- comment line right after it says what the block does (sessions-dal migrate
-- prints it). Version N is applied in one transaction together with its row in
-- sessions_dal_migrations (which the migration runner creates and owns).
-- Never edit a released block's statements: append a new block.
--
-- Timestamps written by sessions_dal are ISO 8601 text in UTC with
-- microseconds ('2026-11-25T15:43:33.123456+00:00'): fixed width, so text order
-- is time order. The openai-agents columns keep their CURRENT_TIMESTAMP
-- defaults ('2026-11-25 15:43:33', also UTC).

-- version: 1
-- Users, ownership and metadata beside openai-agents' tables, and their indexes.

-- The tables of openai-agents' SQLiteSession, exactly as it creates them, so
-- that it keeps reading and writing this file. IF NOT EXISTS adopts a file it
-- wrote (user_version 0) in place. A repository opened with other
-- sessions_table/messages_table names gets these statements with those names.
CREATE TABLE IF NOT EXISTS agent_sessions (
    session_id TEXT PRIMARY KEY,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS agent_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    message_data TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id)
        ON DELETE CASCADE
);

-- Serves "the latest N items of a session" from the index alone. Rebuilt
-- rather than created IF NOT EXISTS: openai-agents before 0.6.6 gave the same
-- name to an index on (session_id, created_at), which cannot order by id.
DROP INDEX IF EXISTS idx_agent_messages_session_id;
CREATE INDEX idx_agent_messages_session_id
    ON agent_messages (session_id, id);

-- IF NOT EXISTS: a file may already hold these tables with exactly this
-- layout (sessions_dal checks that before migrating).
CREATE TABLE IF NOT EXISTS agent_users (
    user_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

-- Ownership, metadata and creation order of the sessions sessions_dal manages.
-- Kept apart from agent_sessions, and with no foreign key to it, because
-- SQLiteSession.clear_session() deletes the agent_sessions row (with foreign
-- keys off): a column there, or a cascade from it, would lose the owner.
-- seq is the insertion order: AUTOINCREMENT never reuses a value, so it breaks
-- created_at ties the same way for the life of the file.
CREATE TABLE IF NOT EXISTS agent_user_sessions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES agent_users (user_id),
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A page of a user's sessions, newest first, is a range scan of this index;
-- so is the keyset step (created_at, seq) < (?, ?).
CREATE INDEX IF NOT EXISTS idx_agent_user_sessions_user
    ON agent_user_sessions (user_id, created_at, seq);

-- version: 2
-- Sessions by last activity: an index, and triggers that carry openai-agents' writes to it.

-- A page of a user's sessions by activity (order="updated") is a range scan;
-- so is its keyset step (updated_at, created_at, seq) < (?, ?, ?).
CREATE INDEX IF NOT EXISTS idx_agent_user_sessions_activity
    ON agent_user_sessions (user_id, updated_at, created_at, seq);

-- openai-agents' SQLiteSession knows nothing of agent_user_sessions, so the
-- file moves a session's last activity itself when SQLiteSession adds items
-- (it then sets agent_sessions.updated_at), pops or clears them. sessions_dal's
-- own writes fire these too, then stamp the session last, with their clock.
-- 'now' has milliseconds; padded to our fixed-width text, so text order stays
-- time order, and a stamp never moves backwards.
CREATE TRIGGER IF NOT EXISTS sessions_dal_activity_on_update
AFTER UPDATE OF updated_at ON agent_sessions
BEGIN
    UPDATE agent_user_sessions
    SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')
    WHERE session_id = NEW.session_id
      AND updated_at < strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now');
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_activity_on_delete
AFTER DELETE ON agent_messages
BEGIN
    UPDATE agent_user_sessions
    SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')
    WHERE session_id = OLD.session_id
      AND updated_at < strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now');
END;

-- version: 3
-- Search: a full-text index of the words in items and session titles, kept by triggers.

-- One row per item (rowid: the item's id) and per titled session (rowid: minus
-- its seq). words: the item's string values, except those of the keys below,
-- which hold ids and fixed values ("message", "completed"), never anyone's words.
-- owner: a token for the owning user and one for the session (hex: any id is
-- one token), so that a search reads only that user's (or session's) entries.
-- Where this SQLite has no FTS5, this block is skipped (search then says so),
-- and done at a later read-write open by an SQLite that has it.
CREATE VIRTUAL TABLE IF NOT EXISTS sessions_dal_search USING fts5(
    words, owner, tokenize = 'unicode61 remove_diacritics 2'
);

-- Items that are not valid JSON (openai-agents writes whatever it is given)
-- are not indexed, and never make an insert fail.
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_insert
AFTER INSERT ON agent_messages WHEN json_valid(NEW.message_data)
BEGIN
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT NEW.id, words, coalesce(
        (SELECT 'u' || hex(user_id) || ' s' || hex(session_id)
         FROM agent_user_sessions WHERE session_id = NEW.session_id), '')
    FROM (SELECT group_concat(value, ' ') AS words FROM json_tree(NEW.message_data)
          WHERE type = 'text' AND (key IS NULL OR key NOT IN (
              'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
              'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data')))
    WHERE words IS NOT NULL;
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_delete
AFTER DELETE ON agent_messages
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = OLD.id;
END;

-- A session claimed, created or given up: its items' owner tokens follow,
-- and its title is indexed under the new owner.
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_own
AFTER INSERT ON agent_user_sessions
BEGIN
    UPDATE sessions_dal_search
    SET owner = 'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE rowid IN (SELECT id FROM agent_messages WHERE session_id = NEW.session_id);
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -NEW.seq, json_extract(NEW.metadata, '$.title'),
           'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE json_valid(NEW.metadata) AND json_type(NEW.metadata, '$.title') = 'text';
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_disown
AFTER DELETE ON agent_user_sessions
BEGIN
    UPDATE sessions_dal_search SET owner = ''
    WHERE rowid IN (SELECT id FROM agent_messages WHERE session_id = OLD.session_id);
    DELETE FROM sessions_dal_search WHERE rowid = -OLD.seq;
END;

-- Not for metadata that is not JSON: the zeros a delete first overwrites it
-- with (the session's index rows are overwritten too, then deleted).
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_title
AFTER UPDATE OF metadata, user_id, session_id ON agent_user_sessions
WHEN json_valid(NEW.metadata)
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = -OLD.seq;
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -NEW.seq, json_extract(NEW.metadata, '$.title'),
           'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE json_valid(NEW.metadata) AND json_type(NEW.metadata, '$.title') = 'text';
END;

-- The items already stored, in batches of ids (:after, :upto], so that
-- sessions-dal migrate can show its progress; all in this block's transaction.
-- OR REPLACE: a file whose version record was lost may have the index already.
INSERT OR REPLACE INTO sessions_dal_search (rowid, words, owner)
SELECT id, words, owner FROM (
    SELECT m.id,
           (SELECT group_concat(value, ' ') FROM json_tree(m.message_data)
            WHERE type = 'text' AND (key IS NULL OR key NOT IN (
                'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
                'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data'))) AS words,
           coalesce('u' || hex(o.user_id) || ' s' || hex(o.session_id), '') AS owner
    FROM agent_messages m
    LEFT JOIN agent_user_sessions o ON o.session_id = m.session_id
    WHERE m.id > :after AND m.id <= :upto AND json_valid(m.message_data))
WHERE words IS NOT NULL;

INSERT OR REPLACE INTO sessions_dal_search (rowid, words, owner)
SELECT -seq, json_extract(metadata, '$.title'),
       'u' || hex(user_id) || ' s' || hex(session_id)
FROM agent_user_sessions
WHERE json_valid(metadata) AND json_type(metadata, '$.title') = 'text';

-- version: 4
-- Production hardening: functions and triggers re-created safely, and the text rules fixed.

-- Text rules. A NUL inside a string, stored as the escape \u0000, separates
-- words as a space does: SQLite's JSON functions return text that ends at it,
-- so the words after it were never indexed. The item's JSON text is read with
-- each escaped backslash (\\) written \u005c first, so that every \u0000 left
-- is a NUL's escape, never a backslash followed by "u0000", and then with
-- \u0020 for each of those: still valid JSON, the same strings but for the
-- NULs. PostgreSQL's schema and sessions_dal/_search.py apply the same rule.
DROP TRIGGER IF EXISTS sessions_dal_search_on_insert;
CREATE TRIGGER sessions_dal_search_on_insert
AFTER INSERT ON agent_messages WHEN json_valid(NEW.message_data)
BEGIN
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT NEW.id, words, coalesce(
        (SELECT 'u' || hex(user_id) || ' s' || hex(session_id)
         FROM agent_user_sessions WHERE session_id = NEW.session_id), '')
    FROM (SELECT group_concat(value, ' ') AS words FROM json_tree(
              replace(replace(NEW.message_data, '\\', '\u005c'), '\u0000', '\u0020'))
          WHERE type = 'text' AND (key IS NULL OR key NOT IN (
              'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
              'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data')))
    WHERE words IS NOT NULL;
END;

DROP TRIGGER IF EXISTS sessions_dal_search_on_own;
CREATE TRIGGER sessions_dal_search_on_own
AFTER INSERT ON agent_user_sessions
BEGIN
    UPDATE sessions_dal_search
    SET owner = 'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE rowid IN (SELECT id FROM agent_messages WHERE session_id = NEW.session_id);
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -NEW.seq, json_extract(
               replace(replace(NEW.metadata, '\\', '\u005c'), '\u0000', '\u0020'), '$.title'),
           'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE json_valid(NEW.metadata) AND json_type(NEW.metadata, '$.title') = 'text';
END;

DROP TRIGGER IF EXISTS sessions_dal_search_on_title;
CREATE TRIGGER sessions_dal_search_on_title
AFTER UPDATE OF metadata, user_id, session_id ON agent_user_sessions
WHEN json_valid(NEW.metadata)
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = -OLD.seq;
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -NEW.seq, json_extract(
               replace(replace(NEW.metadata, '\\', '\u005c'), '\u0000', '\u0020'), '$.title'),
           'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE json_valid(NEW.metadata) AND json_type(NEW.metadata, '$.title') = 'text';
END;

-- The items and titles indexed by the old rule that it got wrong: those whose
-- text holds \u0000 (a few; the others are read, not rewritten), in batches
-- of ids as in version 3.
INSERT OR REPLACE INTO sessions_dal_search (rowid, words, owner)
SELECT id, words, owner FROM (
    SELECT m.id,
           (SELECT group_concat(value, ' ') FROM json_tree(
                replace(replace(m.message_data, '\\', '\u005c'), '\u0000', '\u0020'))
            WHERE type = 'text' AND (key IS NULL OR key NOT IN (
                'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
                'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data'))) AS words,
           coalesce('u' || hex(o.user_id) || ' s' || hex(o.session_id), '') AS owner
    FROM agent_messages m
    LEFT JOIN agent_user_sessions o ON o.session_id = m.session_id
    WHERE m.id > :after AND m.id <= :upto AND instr(m.message_data, '\u0000') > 0
      AND json_valid(m.message_data))
WHERE words IS NOT NULL;

INSERT OR REPLACE INTO sessions_dal_search (rowid, words, owner)
SELECT -seq, json_extract(
           replace(replace(metadata, '\\', '\u005c'), '\u0000', '\u0020'), '$.title'),
       'u' || hex(user_id) || ' s' || hex(session_id)
FROM agent_user_sessions
WHERE instr(metadata, '\u0000') > 0 AND json_valid(metadata)
  AND json_type(metadata, '$.title') = 'text';

-- version: 5
-- Search: SQLite indexes items when searched, not as they are appended (PostgreSQL's triggers index them as written).

-- Every item whose id is at most upto has been indexed (or has no words):
-- the items after it are indexed, in batches of items, by the next read-write
-- search (or repo.update_search_index()), whoever wrote them, sessions_dal or
-- openai-agents. Appends cost what they cost without search, and a file that
-- is never searched never indexes an item. Item ids only grow (AUTOINCREMENT
-- never reuses one; see the delete trigger for tables made without it), so
-- the items after the mark are exactly the new ones. Items with an id of 0 or
-- less (another program's) are never indexed: their rowid would be a title's.
CREATE TABLE IF NOT EXISTS sessions_dal_search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL
);

-- A file the triggers of versions 3 and 4 kept is indexed up to its last
-- indexed item; one whose index is set up now (its backfill left to the
-- first search, see _schema.py) is indexed up to nothing.
INSERT OR IGNORE INTO sessions_dal_search_state (id, upto)
SELECT 1, coalesce(max(rowid), 0) FROM sessions_dal_search WHERE rowid > 0;

DROP TRIGGER IF EXISTS sessions_dal_search_on_insert;

-- Only an item already indexed has a row to take with it. And the mark goes
-- back with the last item: a table made without AUTOINCREMENT (by hand)
-- gives a deleted last item's id to the next item, which must not count as
-- indexed. (A mark deleted by hand counts every item as indexed here; the
-- next search makes it again, at 0, and indexes every item again.)
DROP TRIGGER IF EXISTS sessions_dal_search_on_delete;
CREATE TRIGGER sessions_dal_search_on_delete
AFTER DELETE ON agent_messages
WHEN OLD.id > 0
     AND OLD.id <= coalesce((SELECT upto FROM sessions_dal_search_state), 9223372036854775807)
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = OLD.id;
    UPDATE sessions_dal_search_state
    SET upto = coalesce((SELECT max(id) FROM agent_messages), 0)
    WHERE upto > coalesce((SELECT max(id) FROM agent_messages), 0);
END;

-- A session claimed or created: the owner tokens of its items already
-- indexed follow (a new session has none: create_session skips this), and
-- its title is indexed under the owner.
DROP TRIGGER IF EXISTS sessions_dal_search_on_own;
CREATE TRIGGER sessions_dal_search_on_own
AFTER INSERT ON agent_user_sessions
WHEN (SELECT upto FROM sessions_dal_search_state) > 0
     AND EXISTS (SELECT 1 FROM agent_messages WHERE session_id = NEW.session_id
                 AND id <= (SELECT upto FROM sessions_dal_search_state))
BEGIN
    UPDATE sessions_dal_search
    SET owner = 'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE rowid IN (SELECT id FROM agent_messages
                    WHERE session_id = NEW.session_id AND id > 0);
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_own_title
AFTER INSERT ON agent_user_sessions
WHEN NEW.metadata <> '{}' AND json_valid(NEW.metadata)
     AND json_type(NEW.metadata, '$.title') = 'text'
BEGIN
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -NEW.seq, json_extract(
               replace(replace(NEW.metadata, '\\', '\u005c'), '\u0000', '\u0020'), '$.title'),
           'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id);
END;

-- A session deleted or given up: its title's row goes, and its indexed items
-- become nobody's. Every deleting call deletes the items first: then there
-- are none (and an FTS5 table given `rowid IN (subquery)` is slow even so).
DROP TRIGGER IF EXISTS sessions_dal_search_on_disown;
CREATE TRIGGER sessions_dal_search_on_disown
AFTER DELETE ON agent_user_sessions
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = -OLD.seq;
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_search_on_disown_items
AFTER DELETE ON agent_user_sessions
WHEN EXISTS (SELECT 1 FROM agent_messages WHERE session_id = OLD.session_id
             AND id <= (SELECT upto FROM sessions_dal_search_state))
BEGIN
    UPDATE sessions_dal_search SET owner = ''
    WHERE rowid IN (SELECT id FROM agent_messages
                    WHERE session_id = OLD.session_id AND id > 0);
END;

-- version: 6
-- Search: PostgreSQL indexes items when searched too, from a queue its inserts feed.

-- Nothing changes on SQLite, which has done so since version 5; the version
-- exists so that both backends keep the same numbers.
SELECT 1;

-- version: 7
-- Search: a session title's words are defined in one place (on SQLite, a view its triggers and reindex share).

-- A title as the index holds it: the metadata's "title" when it is a string,
-- read with \u0000 as a space (the text rule of version 4), under its owner's
-- tokens; rowid -seq in the index. sessions_dal's check and reindex compare
-- the index with this view, and the triggers below insert from it: one copy.
CREATE VIEW IF NOT EXISTS sessions_dal_title_words AS
SELECT seq, json_extract(
           replace(replace(metadata, '\\', '\u005c'), '\u0000', '\u0020'), '$.title') AS words,
       'u' || hex(user_id) || ' s' || hex(session_id) AS owner
FROM agent_user_sessions
WHERE json_valid(metadata) AND json_type(metadata, '$.title') = 'text';

DROP TRIGGER IF EXISTS sessions_dal_search_on_title;
CREATE TRIGGER sessions_dal_search_on_title
AFTER UPDATE OF metadata, user_id, session_id ON agent_user_sessions
WHEN json_valid(NEW.metadata)
BEGIN
    DELETE FROM sessions_dal_search WHERE rowid = -OLD.seq;
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -seq, words, owner FROM sessions_dal_title_words WHERE seq = NEW.seq;
END;

DROP TRIGGER IF EXISTS sessions_dal_search_on_own_title;
CREATE TRIGGER sessions_dal_search_on_own_title
AFTER INSERT ON agent_user_sessions
WHEN NEW.metadata <> '{}'
BEGIN
    INSERT INTO sessions_dal_search (rowid, words, owner)
    SELECT -seq, words, owner FROM sessions_dal_title_words WHERE seq = NEW.seq;
END;

-- version: 8
-- Compaction: the items a summary replaced, kept in order outside openai-agents' tables.

-- A compaction moves the first items of a session's view (agent_messages,
-- what openai-agents and get_items read) here, and puts its replacement in
-- their place, in one transaction. layer: which of the session's compactions
-- moved it (1, 2, ...); id: the item's id in agent_messages when it left (an
-- import numbers a layer's items 1, 2, ...): a layer's order; replaced: 1 for
-- an earlier layer's replacement compacted in turn (kept, but not part of the
-- history).
CREATE TABLE IF NOT EXISTS sessions_dal_history (
    session_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    replaced INTEGER NOT NULL DEFAULT 0,
    message_data TEXT NOT NULL,
    created_at TEXT,
    PRIMARY KEY (session_id, layer, id)
) WITHOUT ROWID;

-- The items of the view that are a compaction's replacement, by their id.
-- A row whose item openai-agents popped or cleared names an id no item has
-- any more (ids are never reused): harmless, and gone with the session.
CREATE TABLE IF NOT EXISTS sessions_dal_replacements (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    layer INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_dal_replacements_session
ON sessions_dal_replacements (session_id);

-- Whoever deletes a session (sessions_dal or openai-agents) deletes its
-- history: overwritten in place first, as every erasing call does.
CREATE TRIGGER IF NOT EXISTS sessions_dal_history_on_delete
AFTER DELETE ON agent_sessions
BEGIN
    UPDATE sessions_dal_history
    SET message_data = substr(hex(zeroblob(length(CAST(message_data AS BLOB)))), 1,
                              length(CAST(message_data AS BLOB)))
    WHERE session_id = OLD.session_id;
    DELETE FROM sessions_dal_history WHERE session_id = OLD.session_id;
    DELETE FROM sessions_dal_replacements WHERE session_id = OLD.session_id;
END;

-- version: 9
-- Search: the compacted history is searched too, from an index of its own that triggers keep.

-- The history's rows get a number of their own (n, the rowid), which keys
-- their rows in the index below: an item's id cannot, since a fork or an
-- import copies a layer under the ids it had. The table is made again with
-- it (rows copied in order), and the delete trigger of version 8 after it.
-- (Made again too, should this block run twice: what reads it.)
DROP VIEW IF EXISTS sessions_dal_search_history_words;

DROP TRIGGER IF EXISTS sessions_dal_search_history_on_own;

DROP TRIGGER IF EXISTS sessions_dal_search_history_on_disown;

DROP TRIGGER IF EXISTS sessions_dal_history_on_delete;

CREATE TABLE sessions_dal_history_9 (
    n INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    replaced INTEGER NOT NULL DEFAULT 0,
    message_data TEXT NOT NULL,
    created_at TEXT,
    UNIQUE (session_id, layer, id)
);

INSERT INTO sessions_dal_history_9 (session_id, id, layer, replaced, message_data, created_at)
SELECT session_id, id, layer, replaced, message_data, created_at
FROM sessions_dal_history ORDER BY session_id, layer, id;

DROP TABLE sessions_dal_history;

ALTER TABLE sessions_dal_history_9 RENAME TO sessions_dal_history;

CREATE TRIGGER sessions_dal_history_on_delete
AFTER DELETE ON agent_sessions
BEGIN
    UPDATE sessions_dal_history
    SET message_data = substr(hex(zeroblob(length(CAST(message_data AS BLOB)))), 1,
                              length(CAST(message_data AS BLOB)))
    WHERE session_id = OLD.session_id;
    DELETE FROM sessions_dal_history WHERE session_id = OLD.session_id;
    DELETE FROM sessions_dal_replacements WHERE session_id = OLD.session_id;
END;

-- One row per history item with words (rowid: its n), under its session's
-- owner tokens, as the items' index (version 3) has them. An earlier
-- replacement compacted in turn is not history, and has none. Unlike the
-- items' index, this one is written as the history is (by a compaction, a
-- fork or an import, all rarer than appends), so it is always whole.
CREATE VIRTUAL TABLE IF NOT EXISTS sessions_dal_search_history USING fts5(
    words, owner, tokenize = 'unicode61 remove_diacritics 2'
);

-- A history item's words and owner tokens: the items' rule (version 4; see
-- sessions_dal/_search.py). The triggers, check and reindex read this view.
CREATE VIEW IF NOT EXISTS sessions_dal_search_history_words AS
SELECT h.n, (SELECT group_concat(value, ' ') FROM json_tree(
                 replace(replace(h.message_data, '\\', '\u005c'), '\u0000', '\u0020'))
             WHERE type = 'text' AND (key IS NULL OR key NOT IN (
                 'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
                 'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data'))) AS words,
       CASE WHEN o.user_id IS NULL THEN ''
            ELSE 'u' || hex(o.user_id) || ' s' || hex(o.session_id) END AS owner
FROM sessions_dal_history h LEFT JOIN agent_user_sessions o ON o.session_id = h.session_id
WHERE h.replaced = 0 AND json_valid(h.message_data);

-- A compaction moves items the items' index may hold already (the item of
-- that id, still in the session's view while it is copied; an id of 0 or less
-- is never an item's row there, but a title's): their words are taken from
-- there, and computed only for the others (not indexed yet, or a fork's or an
-- import's). An item changed in place after it was indexed (openai-agents
-- never does) keeps its old words, in the view as in the history; reindex
-- computes them again.
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_history_on_insert
AFTER INSERT ON sessions_dal_history WHEN NEW.replaced = 0
BEGIN
    INSERT INTO sessions_dal_search_history (rowid, words, owner)
    SELECT NEW.n, words, coalesce(
        (SELECT 'u' || hex(user_id) || ' s' || hex(session_id) FROM agent_user_sessions
         WHERE session_id = NEW.session_id), '')
    FROM (SELECT coalesce(
              (SELECT s.words FROM agent_messages m JOIN sessions_dal_search s ON s.rowid = m.id
               WHERE m.id = NEW.id AND m.id > 0 AND m.session_id = NEW.session_id),
              (SELECT words FROM sessions_dal_search_history_words WHERE n = NEW.n)) AS words)
    WHERE words IS NOT NULL;
END;

-- Erased as the items' rows are: overwritten, then deleted (the calls that
-- erase merge the index afterwards, see the store's _erase_from_index).
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_history_on_delete
AFTER DELETE ON sessions_dal_history WHEN OLD.replaced = 0
BEGIN
    UPDATE sessions_dal_search_history
    SET words = substr(hex(zeroblob(length(CAST(words AS BLOB)))), 1,
                       length(CAST(words AS BLOB))),
        owner = substr(hex(zeroblob(length(CAST(owner AS BLOB)))), 1,
                       length(CAST(owner AS BLOB)))
    WHERE rowid = OLD.n;
    DELETE FROM sessions_dal_search_history WHERE rowid = OLD.n;
END;

-- A session claimed, created or given up: its history's rows follow, as its
-- items' do (version 5). A session without history pays one lookup.
CREATE TRIGGER IF NOT EXISTS sessions_dal_search_history_on_own
AFTER INSERT ON agent_user_sessions
WHEN EXISTS (SELECT 1 FROM sessions_dal_history WHERE session_id = NEW.session_id)
BEGIN
    UPDATE sessions_dal_search_history
    SET owner = 'u' || hex(NEW.user_id) || ' s' || hex(NEW.session_id)
    WHERE rowid IN (SELECT n FROM sessions_dal_history WHERE session_id = NEW.session_id);
END;

CREATE TRIGGER IF NOT EXISTS sessions_dal_search_history_on_disown
AFTER DELETE ON agent_user_sessions
WHEN EXISTS (SELECT 1 FROM sessions_dal_history WHERE session_id = OLD.session_id)
BEGIN
    UPDATE sessions_dal_search_history SET owner = ''
    WHERE rowid IN (SELECT n FROM sessions_dal_history WHERE session_id = OLD.session_id);
END;

-- The history already kept (version 8's compactions), under its new numbers.
DELETE FROM sessions_dal_search_history;

INSERT INTO sessions_dal_search_history (rowid, words, owner)
SELECT n, words, owner FROM sessions_dal_search_history_words WHERE words IS NOT NULL;
