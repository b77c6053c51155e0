"""The PostgreSQL backend (``pip install 'sessions-dal[postgres]'``): psycopg 3 and its pool.

Modules:

- ``store``: :class:`PostgresStore`, the store behind ``SessionRepository``
  when it is opened with a ``postgresql://`` URL; its docstring gives the
  lock order every transaction follows.
- ``_connection``: the pool, the transaction runner, psycopg's errors
  translated.
- ``_sql``: every statement, built once from the quoted table names.
- ``_schema``: this package's ``schema.sql`` applied under an advisory lock,
  and the checks that adopt a SQLAlchemySession database or refuse one.
- ``_grants``: the GRANT statements that give an app's role the fewest
  rights that work (``sessions-dal grant ROLE``).
"""

from ._schema import SCHEMA_VERSION
from .store import MAX_TEXT_LENGTH, PostgresStore

__all__ = ["MAX_TEXT_LENGTH", "SCHEMA_VERSION", "PostgresStore"]
