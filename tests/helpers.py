"""Helpers shared by the tests: exact snapshots of a database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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
