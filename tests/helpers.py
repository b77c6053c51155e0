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


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()
