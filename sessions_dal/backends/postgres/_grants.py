"""The rights an app's role needs on sessions_dal's tables: as GRANT statements.

The usual setup on a shared server: the tables' owner migrates
(``sessions-dal migrate``), and the app connects as a role with only these
rights, so that it can read and write sessions, never create, alter or drop a
table. Found by experiment (``tests/postgres/test_pg_roles.py`` runs every
public call as a role with exactly these, and checks that each is needed):

- ``USAGE`` on the schema;
- ``SELECT, INSERT, UPDATE, DELETE`` on openai-agents' sessions table,
  ``agent_users``, ``agent_user_sessions`` and ``sessions_dal_search`` (the
  ownership trigger, which runs as the caller, keeps a session's title and
  owner in the search index);
- ``SELECT, INSERT, DELETE`` on openai-agents' messages table (items are never
  updated in place), and ``USAGE`` on its ``id`` sequence;
- ``SELECT, UPDATE, DELETE`` on ``sessions_dal_search_queue`` (a search
  indexes the items appended since the last one, and takes their rows out of
  the queue, locking them first; inserts add rows through a trigger that
  runs as the tables' owner);
- ``SELECT, INSERT, UPDATE, DELETE`` on ``sessions_dal_history`` and
  ``SELECT, INSERT, DELETE`` on ``sessions_dal_replacements`` (compaction
  moves items there; clearing a session erases them; the ownership trigger
  gives a claimed session's history its owner in the history's search words);
- ``SELECT`` on ``sessions_dal_migrations`` (each open reads the version);
- ``EXECUTE`` on the four pure functions that trigger, ``check()`` and
  ``reindex()`` call, which ``PUBLIC`` has unless the database revokes it by
  default.

A read-only role (``read_only=True`` repositories, the command line's
inspection commands) needs ``USAGE`` on the schema, ``SELECT`` on the tables
and ``EXECUTE`` on those functions (``check()`` computes items' words).
``agent_user_sessions``' identity sequence needs no right of its own.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql as pg

from ...errors import DatabaseError
from ._schema import SCHEMA_VERSION, schema_version
from ._sql import SQL

__all__ = ["grant_statements"]

_Conn = psycopg.Connection[Any]

# The functions the ownership trigger (not SECURITY DEFINER) calls as the
# caller, and check() and reindex() call over items and titles.
_FUNCTIONS = (
    ("sessions_dal_fold", "text"),
    ("sessions_dal_owner", "text, text"),
    ("sessions_dal_title_words", "text"),
    ("sessions_dal_words", "text"),
)


def grant_statements(conn: _Conn, path: str, sql: SQL, role: str, *, read_only: bool
                     ) -> list[pg.Composed]:
    """The GRANT statements that give ``role`` an app's rights (or a reader's).

    Refuses a database that is not at this sessions_dal's schema version:
    the tables to grant on are the ones the owner's ``migrate`` makes.
    """
    found = schema_version(conn, sql)
    schema = sql.schema
    if found != SCHEMA_VERSION:
        at = "not set up by sessions_dal yet" if found == 0 else f"at schema version {found}"
        raise DatabaseError(
            f"database {path} is {at}; this sessions_dal's tables (version "
            f"{SCHEMA_VERSION}) are what the grants are for: run 'sessions-dal migrate' "
            "as their owner first"
        )
    to = pg.Identifier(role)

    def tables(*names: str) -> pg.Composed:
        return pg.SQL(", ").join(pg.Identifier(schema, name) for name in names)

    everything = (sql.sessions_table, sql.messages_table, "agent_users",
                  "agent_user_sessions", "sessions_dal_search", "sessions_dal_search_queue",
                  "sessions_dal_history", "sessions_dal_replacements", "sessions_dal_migrations")
    # USAGE on the schema, unless the role has it already (as every role has on
    # PostgreSQL 15's public): only the schema's owner may grant it, and the
    # tables' owner often is not.
    has_usage = conn.execute(
        "SELECT has_schema_privilege(r.oid, n.oid, 'USAGE') FROM pg_roles r, pg_namespace n "
        "WHERE r.rolname = %s AND n.nspname = %s", [role, schema]).fetchone()
    statements = [] if has_usage is not None and has_usage[0] else [
        pg.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(pg.Identifier(schema), to)]
    functions = pg.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
        pg.SQL(", ").join(
            pg.SQL("{}({})").format(pg.Identifier(schema, name), pg.SQL(arguments))
            for name, arguments in _FUNCTIONS),
        to)
    if read_only:
        statements.append(pg.SQL("GRANT SELECT ON TABLE {} TO {}").format(
            tables(*everything), to))
        statements.append(functions)  # check() computes items' words
        return statements
    statements += [
        pg.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {}").format(
            tables(sql.sessions_table, "agent_users", "agent_user_sessions",
                   "sessions_dal_search"), to),
        pg.SQL("GRANT SELECT, INSERT, DELETE ON TABLE {} TO {}").format(
            tables(sql.messages_table), to),
        pg.SQL("GRANT SELECT, UPDATE, DELETE ON TABLE {} TO {}").format(
            tables("sessions_dal_search_queue"), to),
        pg.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {}").format(
            tables("sessions_dal_history"), to),
        pg.SQL("GRANT SELECT, INSERT, DELETE ON TABLE {} TO {}").format(
            tables("sessions_dal_replacements"), to),
        pg.SQL("GRANT SELECT ON TABLE {} TO {}").format(tables("sessions_dal_migrations"), to),
    ]
    sequence = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = pg_get_serial_sequence(%s, 'id')::regclass",
        [pg.Identifier(schema, sql.messages_table).as_string()]).fetchone()
    if sequence is not None:  # the id of a table made by hand may have none
        statements.append(pg.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
            pg.Identifier(*sequence), to))
    statements.append(functions)
    return statements
