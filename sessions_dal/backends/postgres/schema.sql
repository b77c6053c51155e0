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
