"""Helpers shared by the tests: snapshots of a database, what a user can observe."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from sessions_dal import SessionRepository
from sessions_dal.transfer import export_jsonl


def dump(path: Path | str) -> list[str]:
    """Every schema object and row of the database, as SQL text, in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def rows(path: Path | str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """The rows of one query, through a fresh connection (what another process sees)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def sqlite_db(repo: object) -> Any:
    """The SQLite ``Database`` (connection, lock, transactions) behind a repository."""
    return repo._store._db  # type: ignore[attr-defined]


def snapshot(repo: SessionRepository) -> list[Any]:
    """Everything a user of the library can observe, as plain JSON text."""
    state: list[Any] = []
    for user in repo.get_users():
        state.append(["user", user.user_id, user.created_at.isoformat(), user.sessions])
        for s in repo.get_sessions(user.user_id):
            state.append(["session", s.session_id, s.user_id, s.created_at.isoformat(),
                          s.updated_at.isoformat(), json.dumps(s.metadata),
                          json.dumps(s.get_items())])
    for s in repo.get_unowned_sessions():
        state.append(["unowned", s.session_id, s.created_at.isoformat(),
                      s.updated_at.isoformat(), json.dumps(s.get_items())])
    return state


class DeletesDuringExport(io.StringIO):
    """An output that deletes a session through another repository mid-export."""

    def __init__(self, other: SessionRepository, user: str, session_id: str) -> None:
        super().__init__()
        self.other, self.user, self.session_id = other, user, session_id
        self.done = False

    def write(self, text: str) -> int:
        if not self.done and '"type": "item"' in text:
            self.done = True
            assert self.other.delete_session(self.user, self.session_id)
            self.other.create_session("late").add_items(["written during the export"])
        return super().write(text)


def exported(repo: SessionRepository) -> list[str]:
    out = io.StringIO()
    export_jsonl(repo, out)
    return out.getvalue().splitlines(keepends=True)
