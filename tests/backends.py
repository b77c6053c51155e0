"""The backends the behavioural tests run against, behind one small handle.

A behavioural test takes the ``backend`` fixture (or, under Hypothesis, a
``kind`` parameter and :func:`fresh`) and talks to the library through the
public API; where it must look under the hood (a snapshot of every row, a
row written as openai-agents writes it, a damaged row) it asks the handle,
which knows its database's SQL. Tests check capabilities (``has_file``),
never backend names.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sessions_dal import SessionRepository

KINDS = ["sqlite"]
"""The backends this machine can test (see conftest.py)."""


class Backend:
    """A clean database of one backend, and what the tests may do with it directly."""

    kind = "sqlite"
    has_file = True
    """A file on disk: byte-level checks, SIGKILL durability, read-only files apply."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "sessions.db"
        self.target = str(self.path)

    def open(self, **options: Any) -> SessionRepository:
        """A new repository on this database: what another process would have."""
        return SessionRepository(self.target, **options)

    def opener(self) -> Callable[[], SessionRepository]:
        """:meth:`open`, as something another process can be handed (picklable)."""
        return functools.partial(SessionRepository, self.target)

    def migrations_recorded(self) -> list[int]:
        """The schema versions recorded as applied, in order (each once, if all is well)."""
        return [row[0] for row in self._query(
            "SELECT version FROM sessions_dal_migrations ORDER BY version")]

    def snapshot(self) -> list[str]:
        """Every table and row, in a stable order: equal snapshots, equal databases."""
        conn = sqlite3.connect(self.path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    def write_like_agents(self, session_id: str, texts: list[str],
                          created_at: str | None = None) -> None:
        """What openai-agents' session class writes for ``session_id``: its row and items."""
        from agents_schema import write_like_agents

        write_like_agents(self.path, session_id, texts, created_at=created_at)

    def stored_items(self, session_id: str) -> list[str]:
        """The item texts as stored, in order."""
        return [row[0] for row in self._query(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
            session_id)]

    def insert_item_text(self, session_id: str, text: str) -> int:
        """Store ``text`` as the session's next item, as another program could; its row id."""
        self._query("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                    session_id, text)
        return int(self._query("SELECT max(id) FROM agent_messages")[0][0])

    def set_session_column(self, session_id: str, column: str, value: object) -> None:
        """Overwrite one column of a session's ownership row (to damage it)."""
        assert column in ("metadata", "created_at", "updated_at")
        self._query(f"UPDATE agent_user_sessions SET {column} = ? WHERE session_id = ?",
                    value, session_id)

    def set_user_created_at(self, user_id: str, value: object) -> None:
        self._query("UPDATE agent_users SET created_at = ? WHERE user_id = ?", value, user_id)

    def clear_like_agents(self, session_id: str) -> None:
        """What openai-agents' ``clear_session()`` does: items and session row gone."""
        self._query("DELETE FROM agent_messages WHERE session_id = ?", session_id)
        self._query("DELETE FROM agent_sessions WHERE session_id = ?", session_id)

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@contextlib.contextmanager
def fresh(kind: str) -> Iterator[Backend]:
    """A clean database of ``kind``, for tests that cannot take a fixture (Hypothesis)."""
    assert kind == "sqlite", kind
    folder = Path(tempfile.mkdtemp(prefix="sessions-dal-test-"))
    try:
        yield Backend(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_repository(kind: str, **options: Any) -> Iterator[SessionRepository]:
    """A repository on a clean database of ``kind``, closed afterwards.

    Cheap enough for every example of a property: SQLite's is in memory.
    """
    assert kind == "sqlite", kind
    with SessionRepository(":memory:", **options) as repo:
        yield repo
