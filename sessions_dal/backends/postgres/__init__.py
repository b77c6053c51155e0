"""The PostgreSQL backend (``pip install 'sessions-dal[postgres]'``): psycopg 3 and its pool.

Modules:

- ``store``: :class:`PostgresStore`, the store behind ``SessionRepository``
  when it is opened with a ``postgresql://`` URL; its docstring gives the
  lock order every transaction follows.
- ``_opening``: the URL parsed and described (never showing the password),
  and the settings pinned on every connection.
- ``_runner``: :class:`Database`, the pool and the transaction runner.
- ``_signals``: the hold that keeps signal handlers back while a call has a
  pooled connection.
- ``_errors``: psycopg's errors translated into the library's.
- ``_sql``: every statement, built once from the quoted table names.
- ``_schema``: this package's ``schema.sql`` applied under an advisory lock,
  and the checks that adopt a SQLAlchemySession database or refuse one.
- ``_grants``: the GRANT statements that give an app's role the fewest
  rights that work (``sessions-dal grant ROLE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._validate import check_int, check_seconds
from ._schema import SCHEMA_VERSION
from .store import MAX_TEXT_LENGTH, PostgresStore

if TYPE_CHECKING:
    from ..._store import Common

__all__ = ["DEFAULT_POOL_SIZE", "MAX_TEXT_LENGTH", "SCHEMA_VERSION", "PostgresStore",
           "open_store"]

DEFAULT_POOL_SIZE = 4
"""Connections a repository's pool keeps unless ``pool_size`` says otherwise."""


def open_store(url: str, common: Common, options: Mapping[str, Any]) -> PostgresStore:
    """The store of the database at ``url`` (``pool_size``: connections, 4 if ``None``)."""
    pool_size = options.get("pool_size")
    size = DEFAULT_POOL_SIZE if pool_size is None else check_int("pool_size", pool_size,
                                                                 minimum=1)
    # lock_timeout is a 32-bit count of milliseconds.
    timeout = check_seconds("busy_timeout", common.busy_timeout, maximum=2_147_483)
    return PostgresStore(url, busy_timeout=timeout, pool_size=size,
                         sessions_table=common.sessions_table,
                         messages_table=common.messages_table, read_only=common.read_only)
