"""Tests of what only SQLite has: a file, its PRAGMAs, openai-agents' SQLiteSession files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessions_dal import SessionRepository


@pytest.fixture
def repo(db_path: Path) -> Iterator[SessionRepository]:
    with SessionRepository(db_path) as repository:
        yield repository
