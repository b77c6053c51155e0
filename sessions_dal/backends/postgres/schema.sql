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
-- Bodies are quoted strings, not $$, and triggers CREATE OR REPLACE (PostgreSQL
-- 14+): schema.sql is split into statements by one tokenizer for both backends.
-- SECURITY DEFINER, with the search_path fixed: an openai-agents app may
-- connect as a role with no rights on sessions_dal's tables; its writes must
-- not fail for that. Trigger functions need no EXECUTE right to fire, so a
-- database that revokes EXECUTE from PUBLIC by default still works.
CREATE OR REPLACE FUNCTION sessions_dal_activity_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS '
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id = NEW.session_id AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END';

CREATE OR REPLACE FUNCTION sessions_dal_activity_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS '
BEGIN
    UPDATE agent_user_sessions SET updated_at = statement_timestamp()
    WHERE seq IN (
        SELECT seq FROM agent_user_sessions
        WHERE session_id IN (SELECT session_id FROM gone)
          AND updated_at < statement_timestamp()
          AND xmin <> pg_current_xact_id()::xid
        FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END';

CREATE OR REPLACE TRIGGER sessions_dal_activity_on_update
AFTER UPDATE OF updated_at ON agent_sessions
FOR EACH ROW EXECUTE FUNCTION sessions_dal_activity_on_update();

-- Once per statement, over the rows it deleted: clearing a long session is
-- one update, not one per item.
CREATE OR REPLACE TRIGGER sessions_dal_activity_on_delete
AFTER DELETE ON agent_messages REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION sessions_dal_activity_on_delete();
