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
