"""Tests of what only PostgreSQL has: a server, a pool, row locks, SQLAlchemySession's tables.

Not collected where there is no server (tests/conftest.py says so in the
report's header); CI always has one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from backends import PostgresBackend

from sessions_dal import SessionRepository


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    """A schema of its own on the test server."""
    backend = PostgresBackend()
    yield backend
    backend.drop()


@pytest.fixture
def repo(pg: PostgresBackend) -> Iterator[SessionRepository]:
    # The lock waits these tests arrange end when the test says so: a busy
    # machine must not turn one into a DatabaseLockedError at the default 5 s.
    with pg.open(busy_timeout=120) as repository:
        yield repository
