"""openai-agents' SQLiteSession DDL and writes, as DESIGN section 3 records them.

Used to build files "written by SQLiteSession" without the package; the tests
in test_agents.py check the same things against the real package.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def agents_ddl(sessions: str = "agent_sessions", messages: str = "agent_messages",
               index_on: str = "id") -> str:
    return f"""
    CREATE TABLE IF NOT EXISTS {sessions} (session_id TEXT PRIMARY KEY,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
      updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
    CREATE TABLE IF NOT EXISTS {messages} (id INTEGER PRIMARY KEY AUTOINCREMENT,
      session_id TEXT NOT NULL, message_data TEXT NOT NULL,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
      FOREIGN KEY (session_id) REFERENCES {sessions} (session_id) ON DELETE CASCADE);
    CREATE INDEX IF NOT EXISTS idx_{messages}_session_id ON {messages} (session_id, {index_on});
    """


def write_like_agents(path: Path, session_id: str, texts: list[str], *,
                      sessions: str = "agent_sessions", messages: str = "agent_messages",
                      index_on: str = "id", created_at: str | None = None) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(agents_ddl(sessions, messages, index_on))
        if created_at is None:
            conn.execute(f"INSERT OR IGNORE INTO {sessions} (session_id) VALUES (?)", (session_id,))
        else:
            conn.execute(
                f"INSERT OR IGNORE INTO {sessions} (session_id, created_at, updated_at) "
                "VALUES (?, ?, ?)", (session_id, created_at, created_at))
        conn.executemany(f"INSERT INTO {messages} (session_id, message_data) VALUES (?, ?)",
                         [(session_id, text) for text in texts])
        conn.commit()
    finally:
        conn.close()
