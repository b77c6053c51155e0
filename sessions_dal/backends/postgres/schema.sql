-- sessions_dal schema for PostgreSQL: the same versions as the top-level
-- schema.sql (SQLite's), written for PostgreSQL. Each "-- version: N" block,
-- with the comment line after it saying what it does, is applied in one
-- transaction, after pg_advisory_xact_lock, together with its row in
-- sessions_dal_migrations (which the runner creates and owns). Never edit a
-- released block's statements: append a new block (to both files).

-- version: 1
-- Users, ownership and metadata beside openai-agents' tables, and their indexes.

-- The tables of openai-agents' SQLAlchemySession, as its create_all makes
-- them, so that it keeps working on this database (a database it made is
-- adopted in place). Its inserts leave id to the sequence, so a new table
-- gets a 64-bit one; a table it made keeps its 32-bit SERIAL.
CREATE TABLE IF NOT EXISTS agent_sessions (
    session_id varchar NOT NULL PRIMARY KEY,
    created_at timestamp without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS agent_messages (
    id bigserial PRIMARY KEY,
    session_id varchar NOT NULL REFERENCES agent_sessions (session_id) ON DELETE CASCADE,
    message_data text NOT NULL,
    created_at timestamp without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Items are ordered as SQLAlchemySession orders them, by (created_at, id):
-- this index serves "the latest N items of a session" alone.
CREATE INDEX IF NOT EXISTS idx_agent_messages_session_created_id
    ON agent_messages (session_id, created_at, id);

-- Ids compare as bytes (COLLATE "C"), so users list in the order SQLite gives.
CREATE TABLE IF NOT EXISTS agent_users (
    user_id text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL
);

-- Ownership, metadata (JSON as text: jsonb would reorder keys) and creation
-- order, with no foreign key to agent_sessions: SQLAlchemySession's
-- clear_session() deletes that row, and the owner must survive it.
CREATE TABLE IF NOT EXISTS agent_user_sessions (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text NOT NULL UNIQUE,
    user_id text COLLATE "C" NOT NULL REFERENCES agent_users (user_id),
    metadata text NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_agent_user_sessions_user
    ON agent_user_sessions (user_id, created_at, seq);

-- version: 2
-- Sessions by last activity: an index, and triggers that carry openai-agents' writes to it.

CREATE INDEX IF NOT EXISTS idx_agent_user_sessions_activity
    ON agent_user_sessions (user_id, updated_at, created_at, seq);

-- openai-agents' SQLAlchemySession knows nothing of agent_user_sessions, so the
-- database moves a session's last activity itself when SQLAlchemySession adds
-- items (it then sets agent_sessions.updated_at), pops or clears them. Rules:
-- a session this transaction has already stamped (xmin: sessions_dal's own
-- writes) keeps its stamp; one another transaction holds locked is skipped,
-- never waited for (SQLAlchemySession locks agent_sessions first, sessions_dal
-- the ownership row first: waiting could deadlock); a stamp never moves back.
-- Bodies are dollar-quoted (this file is split by _statements.py, a tokenizer
-- of PostgreSQL's own), and triggers CREATE OR REPLACE (PostgreSQL 14+).
-- SECURITY DEFINER, with the search_path fixed: an openai-agents app may
-- connect as a role with no rights on sessions_dal's tables; its writes must
-- not fail for that. Trigger functions need no EXECUTE right to fire, so a
-- database that revokes EXECUTE from PUBLIC by default still works.
CREATE OR REPLACE FUNCTION sessions_dal_activity_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id = NEW.session_id AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_activity_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id IN (SELECT session_id FROM gone)
          AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_activity_on_update
AFTER UPDATE OF updated_at ON agent_sessions
FOR EACH ROW EXECUTE FUNCTION sessions_dal_activity_on_update();

-- Once per statement, over the rows it deleted: clearing a long session is
-- one update, not one per item.
CREATE OR REPLACE TRIGGER sessions_dal_activity_on_delete
AFTER DELETE ON agent_messages REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_activity_on_delete();

-- version: 3
-- Search: a full-text index of the words in items and session titles, kept by triggers.

-- Text as search compares it: Latin accents removed (text that is all ASCII
-- has none: the common case skips that work), every character but letters
-- and digits a space (PostgreSQL's parser would keep "rome-train" or
-- "a@b.com" whole), lower case. IMMUTABLE: stored vectors depend on it.
CREATE OR REPLACE FUNCTION sessions_dal_fold(words text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(regexp_replace(
        CASE WHEN octet_length(words) = char_length(words) THEN words
             ELSE regexp_replace(normalize(words, NFKD), '[\u0300-\u036f]', '', 'g') END,
        '[^[:alnum:]]+', ' ', 'g'))$$;

-- The words of an item: its string values, except those of the keys below,
-- which hold ids and fixed values ("message", "completed"), never anyone's
-- words. An item that is not valid JSON (openai-agents stores whatever it is
-- given), or whose words overflow a tsvector, has none: an insert must never
-- fail for it. jsonb for its path queries (C, not recursive SQL); a "\u0000"
-- inside a string, which jsonb cannot hold, is dropped first.
CREATE OR REPLACE FUNCTION sessions_dal_words(item text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    doc jsonb;
    found text;
BEGIN
    doc := replace(item, '\u0000', '')::jsonb;
    SELECT string_agg(value #>> '{}', ' ') INTO found FROM (
        SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() == "object").keyvalue()
            ? (@.value.type() == "string" && @.key != "type" && @.key != "id"
               && @.key != "call_id" && @.key != "item_id" && @.key != "response_id"
               && @.key != "role" && @.key != "status" && @.key != "detail"
               && @.key != "encrypted_content" && @.key != "image_url"
               && @.key != "file_id" && @.key != "file_data").value') AS value
        UNION ALL
        SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() == "array")[*]
            ? (@.type() == "string")')
        UNION ALL
        SELECT doc WHERE jsonb_typeof(doc) = 'string'
    ) AS strings;
    RETURN to_tsvector('simple', sessions_dal_fold(coalesce(found, '')));
EXCEPTION WHEN others THEN
    RETURN ''::tsvector;
END$$;

-- The lexemes that say whose a row is: the owner's and the session's ids in
-- hex (any id is then one lexeme), weight A; words have weight D. A search
-- asks for the owner's lexeme too, so that the index intersects the user's
-- rows with the word's instead of reading every user's; and for words with
-- weight D only, so that no query word ever matches an owner lexeme.
CREATE OR REPLACE FUNCTION sessions_dal_owner(user_id text, session_id text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN user_id IS NULL THEN ''::tsvector ELSE setweight(array_to_tsvector(
        ARRAY['u' || encode(convert_to(user_id, 'UTF8'), 'hex'),
              's' || encode(convert_to(session_id, 'UTF8'), 'hex')]), 'A') END$$;

-- One row per item with words (item_id: the item's id), and per titled
-- session (minus its seq), with the owner's lexemes while it has one; no
-- foreign key, so that openai-agents' writes take no lock here beyond the
-- rows they add.
CREATE TABLE IF NOT EXISTS sessions_dal_search (
    item_id bigint PRIMARY KEY,
    session_id text NOT NULL,
    words tsvector NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_sessions_dal_search_words
    ON sessions_dal_search USING gin (words);

CREATE INDEX IF NOT EXISTS idx_sessions_dal_search_session
    ON sessions_dal_search (session_id);

-- Per row: a statement-level function over the transition table is planned
-- again at every call (the table is new each time), which cost more than the
-- per-row calls save. Deletes are per statement: a clear is one delete.
-- SECURITY DEFINER, as for the activity triggers: an openai-agents app's role
-- may have no rights on sessions_dal's tables.
CREATE OR REPLACE FUNCTION sessions_dal_search_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    found tsvector := sessions_dal_words(NEW.message_data);
BEGIN
    IF found <> '' THEN
        INSERT INTO sessions_dal_search (item_id, session_id, words)
        SELECT NEW.id, NEW.session_id, found || sessions_dal_owner(
            (SELECT user_id FROM agent_user_sessions WHERE session_id = NEW.session_id),
            NEW.session_id);
    END IF;
    RETURN NULL;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_search_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM sessions_dal_search WHERE item_id IN (SELECT id FROM gone);
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_search_on_insert
AFTER INSERT ON agent_messages
FOR EACH ROW EXECUTE FUNCTION sessions_dal_search_on_insert();

CREATE OR REPLACE TRIGGER sessions_dal_search_on_delete
AFTER DELETE ON agent_messages REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_search_on_delete();

-- A session's title: its words as an item's, and never an error (metadata
-- damaged by hand, or a key with "\u0000", which jsonb cannot hold, must not
-- stop our own writes).
CREATE OR REPLACE FUNCTION sessions_dal_title_words(metadata text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    title jsonb;
BEGIN
    title := replace(metadata, '\u0000', '')::jsonb -> 'title';
    IF jsonb_typeof(title) = 'string' THEN
        RETURN to_tsvector('simple', sessions_dal_fold(title #>> '{}'));
    END IF;
    RETURN ''::tsvector;
EXCEPTION WHEN others THEN
    RETURN ''::tsvector;
END$$;

-- A session claimed or created (ownership rows are sessions_dal's own): its
-- items take the owner's lexemes, and its title is indexed under them; the
-- same when its metadata changes. Given up, it loses its title row; its
-- items, which sessions_dal deletes in the same transaction, are left alone
-- (a search checks ownership again in the tables themselves).
CREATE OR REPLACE FUNCTION sessions_dal_search_on_own() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM sessions_dal_search WHERE item_id = -OLD.seq;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE sessions_dal_search
        SET words = ts_filter(words, '{b,c,d}')
                    || sessions_dal_owner(NEW.user_id, NEW.session_id)
        WHERE session_id = NEW.session_id AND item_id > 0;
    END IF;
    INSERT INTO sessions_dal_search (item_id, session_id, words)
    SELECT -NEW.seq, NEW.session_id, words || sessions_dal_owner(NEW.user_id, NEW.session_id)
    FROM (SELECT sessions_dal_title_words(NEW.metadata) AS words) AS title
    WHERE words <> ''::tsvector;
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_search_on_own
AFTER INSERT OR DELETE OR UPDATE OF metadata ON agent_user_sessions
FOR EACH ROW EXECUTE FUNCTION sessions_dal_search_on_own();

-- The items already stored, in batches of ids (:after, :upto], so that
-- sessions-dal migrate can show its progress; all in this block's transaction.
-- DO NOTHING: a database whose version record was lost may have the index.
INSERT INTO sessions_dal_search (item_id, session_id, words)
SELECT id, session_id, words || sessions_dal_owner(user_id, session_id) FROM (
    SELECT m.id, m.session_id, o.user_id, sessions_dal_words(m.message_data) AS words
    FROM agent_messages AS m LEFT JOIN agent_user_sessions AS o USING (session_id)
    WHERE m.id > :after AND m.id <= :upto
) AS indexed
WHERE words <> ''::tsvector
ON CONFLICT (item_id) DO NOTHING;

INSERT INTO sessions_dal_search (item_id, session_id, words)
SELECT -seq, session_id, words || sessions_dal_owner(user_id, session_id) FROM (
    SELECT seq, session_id, user_id, sessions_dal_title_words(metadata) AS words
    FROM agent_user_sessions
) AS titles
WHERE words <> ''::tsvector
ON CONFLICT (item_id) DO NOTHING;

-- What the backfill left in the GIN index's pending list (which every search
-- reads through until autovacuum merges it) goes into the index now, and the
-- planner learns the new table's statistics.
SELECT gin_clean_pending_list('idx_sessions_dal_search_words'::regclass);

ANALYZE sessions_dal_search;

-- version: 4
-- Production hardening: functions and triggers re-created safely, and the text rules fixed.

-- Every function is re-created with its search_path fixed to pg_catalog,
-- pg_temp (temporary schema last) and every name of ours written with its
-- schema (the runner qualifies them), as PostgreSQL's rules for SECURITY
-- DEFINER ask: versions 2 and 3 took the migrating connection's path, which
-- searched pg_temp first, so a role allowed to write openai-agents' tables
-- only could stand a temporary table of its own in for ours and have the
-- triggers, which run as their owner, read and change it. Arguments match
-- our functions' declared types exactly (session_id is varchar in
-- openai-agents' tables: cast), so no overload someone adds to a writable
-- schema can be a better match. The pure helpers (fold, words, owner,
-- title_words) read no table and stay callable by anyone; the trigger
-- functions are not callable directly (EXECUTE revoked from PUBLIC). words
-- and title_words become PARALLEL RESTRICTED: their EXCEPTION blocks are
-- subtransactions, which a parallel worker cannot start (a big check() or
-- reindex failed with "cannot start subtransactions during a parallel
-- operation"). Items whose id is 0 or less, which the sequence never gives
-- but a writer may choose, are not indexed: titles are indexed under minus
-- their session's seq, and such an item's row could take a title's key (its
-- insert failed every later titled create_session) or its delete a title's
-- row. A vector too near tsvector's limit to take the owner lexemes is none.

-- Folding with a Unicode collation ("sessions_dal_ctype": the runner puts in
-- ICU's und-x-icu, or C.utf8 where PostgreSQL was built without ICU), not the
-- database's: under an lc_ctype of C, lower() and [:alnum:] know ASCII only,
-- and words in Cyrillic or Greek were dropped or kept in upper case.
CREATE OR REPLACE FUNCTION sessions_dal_fold(words text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lower(regexp_replace(
        CASE WHEN octet_length(words) = char_length(words) THEN words
             ELSE regexp_replace(normalize(words, NFKD), '[\u0300-\u036f]', '', 'g') END
             COLLATE "sessions_dal_ctype",
        '[^[:alnum:]]+', ' ', 'g'))$$;

-- Text rules, the same on both backends (see SQLite's schema.sql and
-- sessions_dal/_search.py). jsonb refuses two escapes SQLite reads, which
-- left an item out of the index whole. A NUL inside a string (\u0000)
-- separates words, as a space does: the item's JSON text is read with each
-- escaped backslash (\\) written \u005c first, so that every \u0000 left is
-- a NUL's escape, never a backslash followed by "u0000" (which the old rule
-- broke), then with \u0020 for each. A lone surrogate's escape (\ud800
-- without its pair after it, or \udc00 without its pair before it: Python
-- writes one for such a str) is a separator too, as in SQLite and Python;
-- looked for only when jsonb refuses the text, as it is slow to look for.
-- A word longer than a query word may be (sessions_dal/_search.py's
-- MAX_WORD_LENGTH, 500 letters) keeps its first 501 (3 x 167: a regular
-- expression counts to 255 at most): PostgreSQL drops a word of 2,047 bytes
-- or more, and 501 letters are at most 2,004; SQLite keeps every word whole,
-- and a query word then finds the same items in both. chr(92) is the
-- backslash, and # stands for an escaped one in patterns: written so, these
-- bodies mean the same whatever standard_conforming_strings.
CREATE OR REPLACE FUNCTION sessions_dal_words(item text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc jsonb;
    strings_found text;
    result tsvector;
BEGIN
    item := replace(replace(item, chr(92) || chr(92), chr(92) || 'u005c'),
                    chr(92) || 'u0000', chr(92) || 'u0020');
    BEGIN
        doc := item::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        IF (strpos(item, chr(92) || 'ud') = 0 AND strpos(item, chr(92) || 'uD') = 0)
                OR strpos(item, chr(1)) > 0 THEN
            RETURN ''::tsvector;  -- not JSON
        END IF;
        -- Lone surrogates' escapes become spaces, pairs stay; without
        -- look-arounds, whose cost grew with the square of the text: pairs
        -- first lose their backslashes to chr(1), which JSON text never holds.
        doc := replace(regexp_replace(regexp_replace(item,
            replace('#(u[dD][89abAB][0-9a-fA-F]{2})#(u[dD][c-fC-F][0-9a-fA-F]{2})', '#',
                    chr(92) || chr(92)),
            chr(1) || chr(92) || '1' || chr(1) || chr(92) || '2', 'g'),
            replace('#u[dD][89a-fA-F][0-9a-fA-F]{2}', '#', chr(92) || chr(92)),
            chr(92) || 'u0020', 'g'), chr(1), chr(92))::jsonb;
    END;
    IF octet_length(item) <= 65536 THEN
        SELECT string_agg(value #>> '{}', ' ') INTO strings_found FROM (
            SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() == "object").keyvalue()
                ? (@.value.type() == "string" && @.key != "type" && @.key != "id"
                   && @.key != "call_id" && @.key != "item_id" && @.key != "response_id"
                   && @.key != "role" && @.key != "status" && @.key != "detail"
                   && @.key != "encrypted_content" && @.key != "image_url"
                   && @.key != "file_id" && @.key != "file_data").value') AS value
            UNION ALL
            SELECT jsonb_path_query(doc, 'strict $.** ? (@.type() == "array")[*]
                ? (@.type() == "string")')
            UNION ALL
            SELECT doc WHERE jsonb_typeof(doc) = 'string'
        ) AS strings;
    ELSE
        -- The same strings of a big document, walked with jsonb_each and
        -- jsonb_array_elements: jsonpath's .** and [*] cost the square of an
        -- array's length (a 2 MB array of short strings took 43 s). Each level
        -- copies what is below it: strings deeper than 100 levels (deeper than
        -- sessions_dal lets an item be) are not indexed in a big document.
        WITH RECURSIVE walk(key, value, depth) AS (
            SELECT NULL::text, doc, 0
            UNION ALL
            SELECT inner_value.key, inner_value.value, walk.depth + 1
            FROM walk CROSS JOIN LATERAL (
                SELECT member.key, member.value FROM jsonb_each(
                    CASE WHEN jsonb_typeof(walk.value) = 'object' THEN walk.value
                         ELSE '{}'::jsonb END) AS member
                UNION ALL
                SELECT NULL, element.value FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(walk.value) = 'array' THEN walk.value
                         ELSE '[]'::jsonb END) AS element
            ) AS inner_value
            WHERE walk.depth < 100
        )
        SELECT string_agg(value #>> '{}', ' ') INTO strings_found FROM walk
        WHERE jsonb_typeof(value) = 'string' AND (key IS NULL OR key NOT IN (
            'type', 'id', 'call_id', 'item_id', 'response_id', 'role', 'status',
            'detail', 'encrypted_content', 'image_url', 'file_id', 'file_data'));
    END IF;
    result := to_tsvector('simple', regexp_replace(
        sessions_dal_fold(coalesce(strings_found, '')),
        '((?:[^ ]{167}){3})[^ ]+', chr(92) || '1', 'g'));
    -- Room for the owner lexemes the triggers add (ids of 255 characters at
    -- most): a vector at tsvector's limit (1 MB) would make the write fail.
    IF pg_column_size(result) > 1048575 - 8192 THEN
        RETURN ''::tsvector;
    END IF;
    RETURN result;
EXCEPTION WHEN others THEN
    RETURN ''::tsvector;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_owner(user_id text, session_id text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN user_id IS NULL THEN ''::tsvector ELSE setweight(array_to_tsvector(
        ARRAY['u' || encode(convert_to(user_id, 'UTF8'), 'hex'),
              's' || encode(convert_to(session_id, 'UTF8'), 'hex')]), 'A') END$$;

CREATE OR REPLACE FUNCTION sessions_dal_title_words(metadata text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    title jsonb;
    result tsvector;
BEGIN
    metadata := replace(replace(metadata, chr(92) || chr(92), chr(92) || 'u005c'),
                        chr(92) || 'u0000', chr(92) || 'u0020');
    BEGIN
        title := metadata::jsonb -> 'title';
    EXCEPTION WHEN invalid_text_representation THEN
        IF (strpos(metadata, chr(92) || 'ud') = 0 AND strpos(metadata, chr(92) || 'uD') = 0)
                OR strpos(metadata, chr(1)) > 0 THEN
            RETURN ''::tsvector;  -- not JSON
        END IF;
        -- Lone surrogates' escapes become spaces, pairs stay; without
        -- look-arounds, whose cost grew with the square of the text: pairs
        -- first lose their backslashes to chr(1), which JSON text never holds.
        title := replace(regexp_replace(regexp_replace(metadata,
            replace('#(u[dD][89abAB][0-9a-fA-F]{2})#(u[dD][c-fC-F][0-9a-fA-F]{2})', '#',
                    chr(92) || chr(92)),
            chr(1) || chr(92) || '1' || chr(1) || chr(92) || '2', 'g'),
            replace('#u[dD][89a-fA-F][0-9a-fA-F]{2}', '#', chr(92) || chr(92)),
            chr(92) || 'u0020', 'g'), chr(1), chr(92))::jsonb -> 'title';
    END;
    IF jsonb_typeof(title) = 'string' THEN
        result := to_tsvector('simple', regexp_replace(sessions_dal_fold(title #>> '{}'),
            '((?:[^ ]{167}){3})[^ ]+', chr(92) || '1', 'g'));
        IF pg_column_size(result) <= 1048575 - 8192 THEN  -- room for the owner lexemes
            RETURN result;
        END IF;
    END IF;
    RETURN ''::tsvector;
EXCEPTION WHEN others THEN
    RETURN ''::tsvector;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_activity_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id = NEW.session_id::text AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_activity_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id IN (SELECT session_id::text FROM gone)
          AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_search_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item_words tsvector;
BEGIN
    IF NEW.id <= 0 THEN  -- not an id the sequence gives: never a title row's key
        RETURN NULL;
    END IF;
    item_words := sessions_dal_words(NEW.message_data::text);
    IF item_words <> '' THEN
        INSERT INTO sessions_dal_search (item_id, session_id, words)
        SELECT NEW.id, NEW.session_id, item_words || sessions_dal_owner(
            (SELECT user_id::text FROM agent_user_sessions
             WHERE session_id = NEW.session_id::text),
            NEW.session_id::text)
        ON CONFLICT (item_id) DO UPDATE
        SET session_id = EXCLUDED.session_id, words = EXCLUDED.words;
    ELSE
        DELETE FROM sessions_dal_search WHERE item_id = NEW.id;
    END IF;
    RETURN NULL;
END$$;

-- openai-agents never updates an item, but a role that may write its table
-- can: the index follows (an item moved to another session, or rewritten),
-- else the old words stay searchable, under the old owner. Also a stale row
-- left under an id the sequence gives later is replaced, never a failed write.
CREATE OR REPLACE FUNCTION sessions_dal_search_on_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item_words tsvector;
BEGIN
    IF OLD.id > 0 THEN
        DELETE FROM sessions_dal_search WHERE item_id = OLD.id;
    END IF;
    IF NEW.id <= 0 THEN
        RETURN NULL;
    END IF;
    item_words := sessions_dal_words(NEW.message_data::text);
    IF item_words <> '' THEN
        INSERT INTO sessions_dal_search (item_id, session_id, words)
        SELECT NEW.id, NEW.session_id, item_words || sessions_dal_owner(
            (SELECT user_id::text FROM agent_user_sessions
             WHERE session_id = NEW.session_id::text),
            NEW.session_id::text)
        ON CONFLICT (item_id) DO UPDATE
        SET session_id = EXCLUDED.session_id, words = EXCLUDED.words;
    END IF;
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_search_on_change
AFTER UPDATE OF id, session_id, message_data ON agent_messages
FOR EACH ROW EXECUTE FUNCTION sessions_dal_search_on_change();

CREATE OR REPLACE FUNCTION sessions_dal_search_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM sessions_dal_search WHERE item_id IN (SELECT id FROM gone WHERE id > 0);
    RETURN NULL;
END$$;

CREATE OR REPLACE FUNCTION sessions_dal_search_on_own() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM sessions_dal_search WHERE item_id = -OLD.seq;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE sessions_dal_search
        SET words = ts_filter(words, '{b,c,d}')
                    || sessions_dal_owner(NEW.user_id::text, NEW.session_id)
        WHERE session_id = NEW.session_id AND item_id > 0;
    END IF;
    INSERT INTO sessions_dal_search (item_id, session_id, words)
    SELECT -NEW.seq, NEW.session_id, words
        || sessions_dal_owner(NEW.user_id::text, NEW.session_id)
    FROM (SELECT sessions_dal_title_words(NEW.metadata) AS words) AS title
    WHERE words <> ''::tsvector;
    RETURN NULL;
END$$;

-- TRUNCATE (a role with that right on openai-agents' table) fires no delete
-- trigger: the items' words go with them all the same.
CREATE OR REPLACE FUNCTION sessions_dal_search_on_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM sessions_dal_search WHERE item_id > 0;
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_search_on_truncate
AFTER TRUNCATE ON agent_messages
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_search_on_truncate();

REVOKE EXECUTE ON FUNCTION sessions_dal_search_on_truncate() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_activity_on_update() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_activity_on_delete() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_search_on_insert() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_search_on_delete() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_search_on_own() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION sessions_dal_search_on_change() FROM PUBLIC;

-- The rows whose words these rules may change, in batches of ids as in
-- version 3: items and titles with characters beyond ASCII (which JSON text
-- holds as \u escapes: both libraries write ASCII JSON), whose folding the
-- collation changes; with \u0000 or a surrogate's escape; or with a run of
-- 114 or more characters that may be one word (letters, digits and their
-- \uXXXX escapes: folding makes one character 18 bytes at most, so a word
-- PostgreSQL dropped has at least 114). A row is rewritten only if its words
-- change. chr(92) is the backslash, and # stands for an escaped one.
INSERT INTO sessions_dal_search (item_id, session_id, words)
SELECT id, session_id, words || sessions_dal_owner(user_id::text, session_id::text) FROM (
    SELECT m.id, m.session_id, o.user_id, sessions_dal_words(m.message_data::text) AS words
    FROM agent_messages AS m LEFT JOIN agent_user_sessions AS o
        ON o.session_id = m.session_id::text
    WHERE m.id > :after AND m.id <= :upto AND m.id > 0 AND (strpos(m.message_data, chr(92) || 'u') > 0
        OR m.message_data ~ replace('([^[:space:][:punct:]]|#u[0-9a-fA-F]{4}){114}',
                                    '#', chr(92) || chr(92)))
) AS indexed
WHERE words <> ''::tsvector
ON CONFLICT (item_id) DO UPDATE SET words = excluded.words
WHERE sessions_dal_search.words IS DISTINCT FROM excluded.words;

INSERT INTO sessions_dal_search (item_id, session_id, words)
SELECT -seq, session_id, words || sessions_dal_owner(user_id::text, session_id) FROM (
    SELECT seq, session_id, user_id, sessions_dal_title_words(metadata) AS words
    FROM agent_user_sessions
) AS titles
WHERE words <> ''::tsvector
ON CONFLICT (item_id) DO UPDATE SET words = excluded.words
WHERE sessions_dal_search.words IS DISTINCT FROM excluded.words;

-- version: 5
-- Search: SQLite indexes items when searched, not as they are appended (PostgreSQL's triggers index them as written).

-- The same version on both backends. On PostgreSQL nothing changes yet: the
-- triggers of version 4 still index each item in its writer's transaction,
-- which is what makes SQLAlchemySession's appends searchable at once. The
-- table says so to whoever inspects it.
COMMENT ON TABLE sessions_dal_search IS
    'sessions_dal search index: one row per item (item_id) and per titled session (minus its seq), written by triggers as items are inserted';

-- version: 6
-- Search: PostgreSQL indexes items when searched too, from a queue its inserts feed.

-- An insert no longer computes words: each statement that inserts items
-- records the range of their ids here (one row, in the writer's transaction,
-- whoever the writer is: sessions_dal or SQLAlchemySession), and the next
-- read-write search (or repo.update_search_index()) indexes the items of the
-- ranges it takes and deletes those rows, in batches, each in one transaction
-- holding the index's lock as reindex does (see _sql.py's lock_index). A row
-- commits with its items, so no acknowledged item can be missed; ids commit
-- out of order on PostgreSQL, which is why this is a queue, not a mark as on
-- SQLite. A range may hold other writers' ids too: items indexed twice are
-- rewritten to the same row. Erasure is unchanged: a delete's trigger takes
-- an item's words with it, and the queue holds ids only.
CREATE TABLE IF NOT EXISTS sessions_dal_search_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false
);

-- A database that is never searched keeps its queue short: every 1,024th
-- row, the committed rows before it that no one holds become one per kind,
-- under the first's id (a search that began before still counts it among its
-- rows), spanning their ranges. Until the writer commits, searches skip the
-- rows it holds and compute their items' words as they read (see the store's
-- _index_queued); a wide range is indexed a batch of items at a time.
CREATE OR REPLACE FUNCTION sessions_dal_search_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    newest bigint;
BEGIN
    INSERT INTO sessions_dal_search_queue (first_id, last_id)
    SELECT min(id), max(id) FROM added WHERE id > 0 HAVING count(*) > 0
    RETURNING id INTO newest;
    IF newest % 1024 = 0 THEN
        WITH merged AS (
            DELETE FROM sessions_dal_search_queue WHERE id IN (
                SELECT id FROM sessions_dal_search_queue WHERE id < newest
                FOR UPDATE SKIP LOCKED)
            RETURNING id, first_id, last_id, deleted)
        INSERT INTO sessions_dal_search_queue (id, first_id, last_id, deleted)
        OVERRIDING SYSTEM VALUE
        SELECT min(id), min(first_id), max(last_id), deleted FROM merged GROUP BY deleted;
    END IF;
    RETURN NULL;
END$$;

-- A delete's trigger takes the deleted items' rows out of the index at once.
-- A writer at REPEATABLE READ or SERIALIZABLE (a database's or role's
-- default_transaction_isolation) reads the index as of its transaction's
-- start, so it cannot see rows a search's batch committed since (for items it
-- deletes meanwhile): it also queues the range of ids it deleted (deleted =
-- true), and the next search takes the rows of items that are gone in that
-- range out of the index. Under READ COMMITTED (sessions_dal's own, and the
-- default) the trigger waits for the batch and sees its rows.
CREATE OR REPLACE FUNCTION sessions_dal_search_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM sessions_dal_search WHERE item_id IN (SELECT id FROM gone WHERE id > 0);
    IF current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN
        INSERT INTO sessions_dal_search_queue (first_id, last_id, deleted)
        SELECT min(id), max(id), true FROM gone WHERE id > 0 HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END$$;

DROP TRIGGER IF EXISTS sessions_dal_search_on_insert ON agent_messages;

CREATE OR REPLACE TRIGGER sessions_dal_search_on_insert
AFTER INSERT ON agent_messages REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_search_on_insert();

-- Whoever may read the index may read the queue, and whoever may delete from
-- it may take rows out of the queue (UPDATE: a search locks them first): an
-- app role granted by an older sessions_dal keeps searching after the upgrade,
-- with no new right to give by hand and none to anyone else.
DO '
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT acl.grantee, bool_or(acl.privilege_type = ''DELETE'') AS deletes
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = ''sessions_dal_search''::regclass AND acl.grantee <> c.relowner
          AND acl.privilege_type IN (''SELECT'', ''DELETE'')
        GROUP BY acl.grantee
    LOOP
        EXECUTE format(''GRANT %s ON TABLE %s TO %s'',
            CASE WHEN granted.deletes THEN ''SELECT, UPDATE, DELETE'' ELSE ''SELECT'' END,
            ''sessions_dal_search_queue''::regclass,
            CASE WHEN granted.grantee = 0 THEN ''PUBLIC'' ELSE granted.grantee::regrole::text END);
    END LOOP;
END';

-- A database set up now (or one whose items have no words) has no item in
-- the index: the backfills of versions 3 and 4 were left to the first search
-- (see _schema.py's INDEXED_WHEN_SEARCHED), which this queues every item for.
INSERT INTO sessions_dal_search_queue (first_id, last_id)
SELECT min(id), max(id) FROM agent_messages WHERE id > 0
HAVING count(*) > 0 AND NOT EXISTS (SELECT 1 FROM sessions_dal_search WHERE item_id > 0);

COMMENT ON TABLE sessions_dal_search IS
    'sessions_dal search index: one row per item (item_id) and per titled session (minus its seq); items are indexed by the next search, from sessions_dal_search_queue';

-- version: 7
-- Search: a session title's words are defined in one place (on SQLite, a view its triggers and reindex share).

-- Nothing changes here: sessions_dal_title_words (version 3) has been the
-- one copy since. The version exists so that both backends keep the same numbers.
SELECT 1;

-- version: 8
-- Compaction: the items a summary replaced, kept in order outside openai-agents' tables.

-- As on SQLite (see its schema.sql, version 8): a compaction moves the first
-- items of a session's view here, one layer per compaction, and puts its
-- replacement in their place, in one transaction. The view is ordered by
-- (created_at, id), SQLAlchemySession's order: so is each layer.
CREATE TABLE IF NOT EXISTS sessions_dal_history (
    session_id text NOT NULL,
    id bigint NOT NULL,
    layer integer NOT NULL,
    replaced boolean NOT NULL DEFAULT false,
    message_data text NOT NULL,
    created_at timestamp NOT NULL,
    PRIMARY KEY (session_id, layer, created_at, id)
);

-- The items of the view that are a compaction's replacement, by their id.
CREATE TABLE IF NOT EXISTS sessions_dal_replacements (
    id bigint PRIMARY KEY,
    session_id text NOT NULL,
    layer integer NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_dal_replacements_session
ON sessions_dal_replacements (session_id);

-- Whoever deletes a session (sessions_dal or SQLAlchemySession) deletes its
-- history. SECURITY DEFINER: an openai-agents role may have no rights on
-- sessions_dal's tables; its deletes must not fail for that.
CREATE OR REPLACE FUNCTION sessions_dal_history_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM sessions_dal_history WHERE session_id IN (SELECT session_id FROM gone);
    DELETE FROM sessions_dal_replacements WHERE session_id IN (SELECT session_id FROM gone);
    RETURN NULL;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_history_on_delete
AFTER DELETE ON agent_sessions REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_history_on_delete();

REVOKE EXECUTE ON FUNCTION sessions_dal_history_on_delete() FROM PUBLIC;

-- A role an older sessions_dal granted keeps working: whoever may write the
-- ownership table may write the history, whoever may read it may read it.
DO $$
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT acl.grantee, bool_or(acl.privilege_type = 'DELETE') AS writes
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = 'agent_user_sessions'::regclass AND acl.grantee <> c.relowner
          AND acl.privilege_type IN ('SELECT', 'DELETE')
        GROUP BY acl.grantee
    LOOP
        EXECUTE format('GRANT %s ON TABLE %s, %s TO %s',
            CASE WHEN granted.writes THEN 'SELECT, INSERT, DELETE' ELSE 'SELECT' END,
            'sessions_dal_history'::regclass, 'sessions_dal_replacements'::regclass,
            CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE granted.grantee::regrole::text END);
    END LOOP;
END$$;

-- version: 9
-- Search: the compacted history is searched too, from an index of its own that triggers keep.

-- As on SQLite (see its schema.sql, version 9), written as the history is:
-- here a column of the history's own rows, words, as sessions_dal_search's
-- rows have them (the item's words and its owner's lexemes; NULL: no words,
-- or an earlier replacement compacted in turn, which is no history), and a
-- GIN index on it. The statements that write the history (a compaction, a
-- fork, an import: sessions_dal's own, see _sql.py) write the words with it,
-- in one statement each: a compaction takes them from the items' index rows
-- of what it moves, a fork from the original's history, rather than
-- computing them again (a row trigger would, for every row).
ALTER TABLE sessions_dal_history ADD COLUMN IF NOT EXISTS words tsvector;

CREATE INDEX IF NOT EXISTS idx_sessions_dal_history_words
    ON sessions_dal_history USING gin (words);

-- A row written without its words (by a process of an older sessions_dal
-- still running, or by hand) gets them here, as the caller (who may call the
-- pure functions, see _grants.py); sessions_dal's own rows come with theirs,
-- and only a row whose item has no words at all comes here for nothing.
CREATE OR REPLACE FUNCTION sessions_dal_history_on_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.words := nullif(sessions_dal_words(NEW.message_data), ''::tsvector) || sessions_dal_owner(
        (SELECT user_id::text FROM agent_user_sessions WHERE session_id = NEW.session_id),
        NEW.session_id);
    RETURN NEW;
END$$;

CREATE OR REPLACE TRIGGER sessions_dal_history_on_insert
BEFORE INSERT ON sessions_dal_history
FOR EACH ROW WHEN (NEW.words IS NULL AND NOT NEW.replaced)
EXECUTE FUNCTION sessions_dal_history_on_insert();

REVOKE EXECUTE ON FUNCTION sessions_dal_history_on_insert() FROM PUBLIC;

-- A session claimed or created: its history's rows take the owner's lexemes,
-- as its items' do (one more index lookup, for a session with no history).
CREATE OR REPLACE FUNCTION sessions_dal_search_on_own() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM sessions_dal_search WHERE item_id = -OLD.seq;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE sessions_dal_search
        SET words = ts_filter(words, '{b,c,d}')
                    || sessions_dal_owner(NEW.user_id::text, NEW.session_id)
        WHERE session_id = NEW.session_id AND item_id > 0;
        UPDATE sessions_dal_history
        SET words = ts_filter(words, '{b,c,d}')
                    || sessions_dal_owner(NEW.user_id::text, NEW.session_id)
        WHERE session_id = NEW.session_id AND words IS NOT NULL;
    END IF;
    INSERT INTO sessions_dal_search (item_id, session_id, words)
    SELECT -NEW.seq, NEW.session_id, words
        || sessions_dal_owner(NEW.user_id::text, NEW.session_id)
    FROM (SELECT sessions_dal_title_words(NEW.metadata) AS words) AS title
    WHERE words <> ''::tsvector;
    RETURN NULL;
END$$;

-- That trigger runs as the caller, who now updates the history's words: a
-- role an older sessions_dal granted the right to write the history (DELETE)
-- gets UPDATE on it too, and keeps working.
DO $$
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT DISTINCT acl.grantee
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = 'sessions_dal_history'::regclass AND acl.grantee <> c.relowner
          AND acl.privilege_type = 'DELETE'
    LOOP
        EXECUTE format('GRANT UPDATE ON TABLE %s TO %s', 'sessions_dal_history'::regclass,
            CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE granted.grantee::regrole::text END);
    END LOOP;
END$$;

-- The history already kept (version 8's compactions).
UPDATE sessions_dal_history
SET words = nullif(sessions_dal_words(message_data), ''::tsvector) || sessions_dal_owner(
    (SELECT user_id::text FROM agent_user_sessions o WHERE o.session_id = sessions_dal_history.session_id),
    session_id)
WHERE NOT replaced;
