"""A third backend, for tests: SQLite in memory behind a ``fake://`` URL.

It shows what a backend is: a package with ``open_store``, and one registry
line (see tests/test_registry.py). Nothing else in sessions_dal knows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessions_dal.backends import Common
from sessions_dal.backends.sqlite import SQLiteStore

OPENED: list[tuple[str, Mapping[str, Any]]] = []


class FakeStore(SQLiteStore):
    backend = "fake"


def open_store(target: str, common: Common, options: Mapping[str, Any]) -> FakeStore:
    OPENED.append((target, dict(options)))
    return FakeStore(":memory:", busy_timeout=common.busy_timeout,
                     synchronous="OFF" if options.get("fast") else "NORMAL",
                     sessions_table=common.sessions_table,
                     messages_table=common.messages_table, read_only=common.read_only)
