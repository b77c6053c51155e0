from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sessions_dal import SessionRepository

# Shared, noisy machines: a wall-clock deadline would make properties flaky.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", parent=settings.get_profile("default"), print_blob=True, derandomize=False
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def repo(db_path: Path) -> Iterator[SessionRepository]:
    with SessionRepository(db_path) as repository:
        yield repository


@pytest.fixture
def memory_repo() -> Iterator[SessionRepository]:
    with SessionRepository(":memory:") as repository:
        yield repository
