"""The PostgreSQL migrations: this package's ``schema.sql``, applied once under an advisory lock.

Everything lives in one schema: the first one the URL's ``search_path`` names
(:func:`first_schema`; created if it does not exist yet), never one further
down the path, so that tenants in schemas of their own never share a table.
The version lives in ``sessions_dal_migrations`` (one row per version) there,
beside openai-agents' tables. Every pending block is applied in one READ COMMITTED transaction
whose first statement is ``pg_advisory_xact_lock``: processes that open a new
database at the same moment queue on that lock, and the first one's work is
visible to the others when they read the version after it, so each block runs
exactly once. A database from a newer sessions_dal, or with tables whose
layout is neither openai-agents' nor ours, is refused before any DDL.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from typing import Any

import psycopg

from ...errors import (
    DatabaseError,
    IncompatibleSchemaError,
    MigrationError,
    SchemaVersionError,
)
from .._migrations import VERSION_TABLE, Migration, in_batches, is_batched, read_migrations
from ._sql import OWN_TABLES, SQL, quote
from ._statements import complete_statement

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "apply_migrations",
    "check_owners",
    "check_server",
    "create_stand_ins",
    "first_schema",
    "inspect",
    "missing_tables",
    "owner_to_act_as",
    "owners",
    "pending_steps",
    "schema_version",
]

MIGRATIONS = read_migrations(__package__, complete_statement)
SCHEMA_VERSION: int = MIGRATIONS[-1].version

# One key for every sessions_dal of every version: a 64-bit constant ("sessions").
_LOCK_KEY = int.from_bytes(b"sessions", "big") >> 1

_Conn = psycopg.Connection[Any]


def check_server(conn: _Conn, path: str) -> None:
    """Refuse, at open, a database whose settings no connection can override.

    Its encoding must be UTF8 (search folds words with Unicode's rules, and
    SQL_ASCII or LATIN1 cannot hold every item); ``session_replication_role``
    (which only a superuser can change) must let triggers fire, or
    openai-agents' writes would never reach the search index or the sessions'
    last activity.
    """
    encoding, role = conn.execute(
        "SELECT current_setting('server_encoding'), "
        "current_setting('session_replication_role')").fetchone()  # type: ignore[misc]
    if encoding != "UTF8":
        raise DatabaseError(
            f"database {path} is encoded {encoding} (server_encoding), and sessions_dal needs "
            "UTF8 to keep any text: use a database created WITH ENCODING 'UTF8' (copy one "
            "over with sessions-dal export and import)"
        )
    if role != "origin":
        raise DatabaseError(
            f"database {path}: session_replication_role is {role!r} for this connection, so "
            "no trigger fires and the search index and last-activity times would drift; "
            "have a superuser reset it (ALTER ROLE name RESET session_replication_role, or "
            "the same for the database)"
        )


def first_schema(conn: _Conn) -> tuple[str, bool]:
    """The schema the repository uses, and whether it exists yet.

    The first schema ``search_path`` names, as PostgreSQL reads it (``"$user"``
    counts only where a schema of the role's name exists; ``pg_catalog`` and
    ``pg_temp`` never do). Unlike ``current_schema()``, a named schema that does
    not exist yet is not skipped for the next one: that one may be another
    tenant's.
    """
    path, user = conn.execute("SELECT current_setting('search_path'), current_user").fetchone()  # type: ignore[misc]
    for name in _path_entries(path):
        if not name:  # '' names nothing
            continue
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                              [user if name == "$user" else name]).fetchone() is not None
        if name == "$user":
            if not exists:
                continue
            name = user
        if name == "pg_catalog" or name.startswith("pg_temp"):
            continue
        if "'" in name or "\\" in name or len(name.encode()) > 63:
            raise ValueError(
                f"the schema {name!r} that search_path names first cannot be used: its name "
                "has a quote or a backslash, or passes 63 bytes; use another schema "
                "(options=-csearch_path%3Dmy_schema in the URL)"
            )
        return name, exists
    raise ValueError(
        f"search_path ({path!r}) names no schema for sessions_dal's tables: add one to the "
        "URL (options=-csearch_path%3Dmy_schema), or set the role's search_path"
    )


def _path_entries(path: str) -> list[str]:
    """``search_path``'s schema names: unquoted ones in lower case, quoted ones as written."""
    entries = []
    for match in re.finditer(r'\s*("(?:[^"]|"")*"|[^,]*?)\s*(?:,|$)', path):
        entry = match.group(1)
        if entry.startswith('"'):
            entries.append(entry[1:-1].replace('""', '"'))
        elif entry:
            entries.append(entry.lower())
        if match.end() >= len(path):
            break
    return entries


def schema_version(conn: _Conn, sql: SQL) -> int:
    """The database's schema version: 0 when sessions_dal has not set it up."""
    table = quote(VERSION_TABLE, sql.schema)
    if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:  # type: ignore[index]
        return 0
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()
    return int(row[0])  # type: ignore[index]


def pending_steps(conn: _Conn, sql: SQL) -> list[str]:
    """What :func:`apply_migrations` would do, one line per step."""
    version = schema_version(conn, sql)
    return [f"version {m.version}: {m.title}" for m in MIGRATIONS if m.version > version]


def apply_migrations(conn: _Conn, path: str, sql: SQL,
                     migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database up to the last of ``migrations``; return how many ran.

    ``conn`` is in autocommit mode. An up-to-date database costs two reads.
    A role that may not read the tables, or not create or change them, gets
    a :class:`MigrationError` saying what the tables' owner can do.
    """
    target = migrations[-1].version
    try:
        if inspect(conn, path, sql, target) == target:
            return 0
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _not_allowed(conn, path, sql, exc, target, reading=True) from exc
    try:
        return _migrate(conn, path, sql, migrations, target)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _not_allowed(conn, path, sql, exc, target, reading=False) from exc


def _migrate(conn: _Conn, path: str, sql: SQL, migrations: tuple[Migration, ...],
             target: int) -> int:
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        # PL/pgSQL's optional checks, for this transaction: a server that turns
        # them into errors (plpgsql.extra_errors) must not refuse the released
        # versions' function bodies.
        conn.execute("SELECT set_config('plpgsql.extra_errors', 'none', true), "
                     "set_config('plpgsql.extra_warnings', 'none', true)")
        schema = quote(sql.schema)
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                        [sql.schema]).fetchone() is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        # Before any lookup: taking the schema's lock makes this backend read the
        # catalog changes committed while it waited; to_regclass() alone could
        # still see "no such table" from its cache, and migrate a second time.
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(VERSION_TABLE, sql.schema)} "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        # Read again under the lock: another process may have just migrated.
        current = inspect(conn, path, sql, target)
        # A superuser upgrading a database another role owns acts as that owner
        # (see owner_to_act_as): the new objects are that role's too.
        acting = owner_to_act_as(conn, sql) if current > 0 else None
        if acting is not None:
            conn.execute("SELECT set_config('role', %s, true)", [acting])
        sql.collation = _text_collation(conn)
        applied = 0
        for migration in migrations:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                try:
                    _execute(conn, sql, migration, statement, target)
                except psycopg.Error as exc:
                    if not isinstance(exc, psycopg.errors.ProgrammingError) or isinstance(
                            exc, psycopg.errors.InsufficientPrivilege):
                        raise
                    raise MigrationError(
                        f"migrating {path} to schema version {migration.version} failed "
                        f"({str(exc).strip()}) in: {statement.splitlines()[0]}; the database "
                        f"is still at version {current}"
                    ) from exc
            conn.execute(f"INSERT INTO {quote(VERSION_TABLE, sql.schema)} "
                         "(version, applied_at) VALUES (%s, %s)",
                         [migration.version, datetime.now(timezone.utc)])
            applied += 1
        conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        raise
    return applied


def _text_collation(conn: _Conn) -> str:
    """A collation whose case and character classes know Unicode, for folding words."""
    row = conn.execute(
        "SELECT collname FROM pg_collation WHERE collname IN ('und-x-icu', 'C.utf8', 'C.UTF-8')"
        " AND collencoding IN (-1, pg_char_to_encoding('UTF8')) "
        "ORDER BY collname = 'und-x-icu' DESC, collname LIMIT 1").fetchone()
    if row is None:
        raise MigrationError(
            "this PostgreSQL server has no Unicode collation for search (ICU's und-x-icu or "
            "C.utf8): use a server built with ICU (most packages are), or create the "
            "collation C.utf8 from the operating system's C.UTF-8 locale"
        )
    return quote(row[0], "pg_catalog")


def _not_allowed(conn: _Conn, path: str, sql: SQL, exc: psycopg.Error, target: int, *,
                 reading: bool) -> MigrationError:
    """One line for a role that lacks the rights to open the database: why, and what to do.

    The usual setup: the tables' owner migrates (``sessions-dal migrate``),
    and the app's role gets the rights ``sessions-dal grant ROLE`` prints.
    """
    role = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
    schema = sql.schema
    where = f"schema {schema!r} of {path}"
    reason = exc.diag.message_primary or str(exc).strip()
    try:
        found = schema_version(conn, sql)
    except psycopg.errors.InsufficientPrivilege:
        found = None
    role_arg = shlex.quote(role)
    if reading or found is None:
        return MigrationError(
            f"role {role!r} may not read sessions_dal's tables in {where} ({reason}): have "
            f"their owner give it an app's rights with 'sessions-dal grant {role_arg} "
            "--apply'; nothing was changed"
        )
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                    [schema]).fetchone() is None:
        return MigrationError(
            f"role {role!r} may not create schema {schema!r}, which search_path names first, "
            f"in {path} ({reason}): have the database's owner run CREATE SCHEMA "
            f"{quote(schema)} AUTHORIZATION {quote(role)} (or name an existing schema in the "
            "URL's options=-csearch_path); nothing was changed"
        )
    if found == 0:
        granted = f" (or GRANT CREATE ON SCHEMA {quote(schema)} TO {quote(role)})"
        return MigrationError(
            f"role {role!r} may not create tables in {where} ({reason}): have the schema's "
            f"owner run 'sessions-dal migrate' once, then 'sessions-dal grant {role_arg} "
            f"--apply'{granted}; nothing was changed"
        )
    return MigrationError(
        f"role {role!r} may not upgrade sessions_dal's tables in {where} from schema version "
        f"{found} to {target} ({reason}): only their owner may; have the owner run "
        "'sessions-dal migrate'; nothing was changed"
    )


INDEXED_WHEN_SEARCHED = 6
"""From this version on, items join the search index when it is searched
(``schema.sql``): an older block's backfill of items into an index that holds
none yet is left to the first search (version 6 queues every item then), so
that adopting a big SQLAlchemySession database costs no index build at open."""


def _execute(conn: _Conn, sql: SQL, migration: Migration, statement: str,
             target: int) -> None:
    """One statement of a migration; one over all items in batches, with progress."""
    ddl = sql.ddl(statement)
    if not is_batched(statement):
        conn.execute(ddl)
        return
    if target >= INDEXED_WHEN_SEARCHED and conn.execute(
            f"SELECT NOT EXISTS (SELECT 1 FROM {sql.search_table} WHERE item_id > 0)"
            ).fetchone()[0]:  # type: ignore[index]
        return  # left to the first search (INDEXED_WHEN_SEARCHED)
    batch = ddl.replace(":after", "%(after)s").replace(":upto", "%(upto)s")
    row = conn.execute(f"SELECT min(id), max(id) FROM {sql.table('agent_messages')}").fetchone()
    first, last = row if row is not None else (None, None)
    in_batches(migration.title, first, last,
               lambda after, upto: conn.execute(batch, {"after": after, "upto": upto}))


# The columns a table may have when sessions_dal first meets it: name, then the
# types accepted (format_type's spelling). openai-agents' SQLAlchemySession
# makes a 32-bit id; ours is 64-bit. Its timestamps are naive, which the
# statements read in the server's TimeZone, so they must stay naive.
_VARCHAR = ("character varying", "text")
_NAIVE = ("timestamp without time zone",)
_AGENTS_LAYOUTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "agent_sessions": (("session_id", _VARCHAR), ("created_at", _NAIVE), ("updated_at", _NAIVE)),
    "agent_messages": (
        ("id", ("integer", "bigint")), ("session_id", _VARCHAR),
        # text only: SQLAlchemySession's inserts fail on json or jsonb.
        ("message_data", _VARCHAR), ("created_at", _NAIVE),
    ),
}
_OWN_LAYOUTS: dict[str, tuple[str, ...]] = {
    "agent_users": ("user_id", "created_at"),
    "agent_user_sessions": ("seq", "session_id", "user_id", "metadata", "created_at",
                            "updated_at"),
}
_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum"
)


def inspect(conn: _Conn, path: str, sql: SQL, newest: int = SCHEMA_VERSION) -> int:
    """Refuse, before anything is written, a database this sessions_dal must not touch.

    Raises :class:`SchemaVersionError` for a database from a newer sessions_dal,
    and :class:`IncompatibleSchemaError` when a table has a layout that is
    neither openai-agents' nor ours, or (custom table names) when the named
    tables are not the ones the database was set up with, or when they belong
    to a role it must not trust (:func:`check_owners`). Returns the version.
    """
    check_owners(conn, path, sql)
    found = schema_version(conn, sql)
    if found > newest:
        raise SchemaVersionError(
            f"database {path} has schema version {found}, but this sessions_dal supports "
            f"versions up to {newest}: upgrade sessions_dal (pip install -U sessions-dal) "
            "to open it; the database was not changed"
        )
    names = sql.names
    for default, layout in _AGENTS_LAYOUTS.items():
        columns = _columns(conn, sql.schema, names[default])
        if columns is None:
            if found:
                raise IncompatibleSchemaError(
                    f"database {path} has no table {names[default]!r}: it was set up with "
                    "other sessions_table/messages_table names; open it with the names it "
                    "was created with"
                )
            continue
        expected = [(name, types) for name, types in layout]
        if [c[0] for c in columns] != [e[0] for e in expected] or any(
            kind not in types for (_, kind), (_, types) in zip(columns, expected, strict=False)
        ):
            _refuse(path, names[default], columns,
                    [f"{name} {types[0]}" for name, types in expected])
    if found == 0:
        for name, expected_names in _OWN_LAYOUTS.items():
            columns = _columns(conn, sql.schema, name)
            if columns is not None and tuple(c[0] for c in columns) != expected_names:
                _refuse(path, name, columns, list(expected_names))
    return found


# The owner of each object of ours in the schema (tables, their indexes,
# functions) and of openai-agents' two tables, with whether this role trusts
# it: it is this role, a superuser, or a role this role really belongs to (a
# superuser "belongs" to every role; that does not count).
_OWNERS = (
    "WITH RECURSIVE mine(role) AS ("
    "SELECT oid FROM pg_roles WHERE rolname = current_user "
    "UNION SELECT a.roleid FROM pg_auth_members a JOIN mine ON a.member = mine.role) "
    "SELECT o.name, pg_get_userbyid(o.owner), r.rolsuper, "
    "r.rolsuper OR o.owner IN (SELECT role FROM mine) FROM ("
    "SELECT c.relname AS name, c.relowner AS owner FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %(schema)s AND c.relname = ANY(%(names)s) "
    "UNION ALL SELECT p.proname, p.proowner FROM pg_proc p "
    "JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = %(schema)s AND p.proname LIKE 'sessions\\_dal\\_%%'"
    ") AS o JOIN pg_roles r ON r.oid = o.owner ORDER BY 1"
)
_SCHEMA_OWNER = (
    "SELECT pg_get_userbyid(nspowner), has_schema_privilege('public', oid, 'CREATE') "
    "FROM pg_namespace WHERE nspname = %s"
)
# Our tables' indexes, by the names schema.sql gives them: another role's
# object under one of these names would make CREATE INDEX IF NOT EXISTS skip ours.
_OWN_INDEXES = ("idx_agent_user_sessions_user", "idx_agent_user_sessions_activity",
                "idx_sessions_dal_search_words", "idx_sessions_dal_search_session",
                "agent_users_pkey", "agent_user_sessions_pkey",
                "agent_user_sessions_session_id_key", "sessions_dal_search_pkey",
                "sessions_dal_migrations_pkey")

_Owner = tuple[str, str, bool, bool]  # name, owner, a superuser, trusted by this role


def owners(conn: _Conn, sql: SQL) -> tuple[list[_Owner], list[_Owner]]:
    """Ours and openai-agents': (name, owner, owner is a superuser, this role trusts it)."""
    agents = (sql.sessions_table, sql.messages_table, sql.index)
    rows = conn.execute(_OWNERS, {"schema": sql.schema,
                                  "names": [*OWN_TABLES, *_OWN_INDEXES, *agents]}).fetchall()
    ours = [row for row in rows if row[0] not in agents]
    return ours, [row for row in rows if row[0] in agents]


def owner_to_act_as(conn: _Conn, sql: SQL) -> str | None:
    """The owner a superuser acts as (SET ROLE) on a database another role owns.

    A table's owner may add triggers that run as whoever writes it: a
    superuser using a database owned by another role would run them with
    every right there is. As the owner it runs them with the owner's only.
    """
    ours, _ = owners(conn, sql)
    if not ours or ours[0][2]:
        return None
    superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                             ).fetchone()
    if superuser is None or not superuser[0] or schema_version(conn, sql) == 0:
        return None  # not a superuser; or nobody's yet: never made as who got there first
    return str(ours[0][1])


def check_owners(conn: _Conn, path: str, sql: SQL) -> None:
    """Refuse objects that another role may have made, or may use, to spy.

    A table's owner may put triggers and row security policies on it, which
    run as whoever writes or reads it; our trigger functions run as their
    owner. So: before sessions_dal is set up, objects of ours that exist must
    be this role's (or one it trusts: :data:`_OWNERS`), never adopted from
    another; sessions_dal's tables, indexes and functions must all have one
    owner; openai-agents' two tables must have that owner or a superuser's
    (before set-up: one this role trusts); and where every role may create
    objects in the schema (CREATE granted to PUBLIC, as before PostgreSQL 15)
    the owner must be one this role trusts, or the schema's owner.
    """
    ours, agents = owners(conn, sql)
    found = sorted({owner for _, owner, _, _ in ours})
    if len(found) > 1:
        listed = ", ".join(f"{name} ({owner})" for name, owner, _, _ in ours
                           if owner != _usual(ours))
        raise IncompatibleSchemaError(
            f"database {path}: sessions_dal's tables, indexes and functions in schema "
            f"{sql.schema!r} belong to role {_usual(ours)!r}, except {listed}: another role "
            "made those, and could read or change what sessions_dal stores; nothing was "
            "changed. Have the database's owner drop what is not sessions_dal's, and open again"
        )
    try:
        set_up = schema_version(conn, sql) > 0
    except psycopg.errors.InsufficientPrivilege:
        set_up = True  # it exists, and is not this role's to read: inspect() says so
    if found and not set_up and not all(trusted for _, _, _, trusted in ours):
        raise IncompatibleSchemaError(
            f"database {path}: schema {sql.schema!r} has {_names(ours)} of role {found[0]!r} "
            "though sessions_dal was never set up there: another role made them first, and "
            "could read or change what sessions_dal would store; nothing was changed. Have "
            "the database's owner drop them, and open again"
        )
    for name, owner, superuser, trusted in agents:
        if superuser or (owner in found if found else trusted):
            continue
        raise IncompatibleSchemaError(
            f"database {path}: table {name!r} belongs to role {owner!r}, not to "
            f"{'sessions_dal tables owner ' + repr(found[0]) if found else 'this role'}: its "
            "owner may add triggers or row security policies that run as every role using "
            "it; nothing was changed. Give it to one owner (ALTER TABLE "
            f"{quote(name, sql.schema)} OWNER TO ...), and open again"
        )
    schema = conn.execute(_SCHEMA_OWNER, [sql.schema]).fetchone()
    if not found or schema is None or not schema[1]:
        return
    if found[0] != schema[0] and not any(trusted for _, _, _, trusted in ours):
        raise IncompatibleSchemaError(
            f"database {path}: every role may create objects in schema {sql.schema!r} (CREATE "
            f"is granted to PUBLIC, as before PostgreSQL 15), and sessions_dal's tables there "
            f"belong to role {found[0]!r}, which any role could have made them as; nothing "
            f"was changed. Revoke it (REVOKE CREATE ON SCHEMA {quote(sql.schema)} FROM "
            "PUBLIC, as PostgreSQL advises), or connect as their owner"
        )


def _names(rows: list[_Owner]) -> str:
    return ", ".join(name for name, _, _, _ in rows[:5]) + (" ..." if len(rows) > 5 else "")


def _usual(rows: list[_Owner]) -> str:
    """The owner of most of ``rows``."""
    counts: dict[str, int] = {}
    for _, owner, _, _ in rows:
        counts[owner] = counts.get(owner, 0) + 1
    return max(sorted(counts), key=lambda owner: counts[owner])


def _columns(conn: _Conn, schema: str, table: str) -> list[tuple[str, str]] | None:
    rows = conn.execute(_COLUMNS, [quote(table, schema)]).fetchall()
    return [(name, kind) for name, kind in rows] or None


def _refuse(path: str, table: str, columns: list[tuple[str, str]], expected: list[str]
            ) -> None:
    found = ", ".join(f"{name} {kind}" for name, kind in columns)
    raise IncompatibleSchemaError(
        f"database {path} has a table {table!r} with columns ({found}), a layout that is "
        f"neither openai-agents' nor sessions_dal's (expected ({', '.join(expected)})); "
        "nothing was changed. Use another database or schema, or pass other "
        "sessions_table/messages_table names"
    )


# Empty stand-ins, for a read-only repository on a database sessions_dal has not
# set up: temporary (this connection only), without constraints (a temporary
# table may not reference a permanent one).
_STAND_INS = {
    "agent_sessions": "(session_id varchar, created_at timestamp, updated_at timestamp)",
    "agent_messages": "(id bigint, session_id varchar, message_data text, created_at timestamp)",
    "agent_users": '(user_id text COLLATE "C", created_at timestamptz)',
    "agent_user_sessions": (
        '(seq bigint, session_id text, user_id text COLLATE "C", metadata text, '
        "created_at timestamptz, updated_at timestamptz)"
    ),
    "sessions_dal_history": ("(session_id text, id bigint, layer integer, replaced boolean, "
                             "message_data text, created_at timestamp)"),
    "sessions_dal_replacements": "(id bigint, session_id text, layer integer)",
}


def missing_tables(conn: _Conn, path: str, sql: SQL) -> list[str]:
    """For a read-only repository: the tables (default names) to stand in for.

    Those that do not exist: on a database sessions_dal has not set up, its
    own tables (and openai-agents' if missing); on an older version's, the
    tables of later versions.
    """
    inspect(conn, path, sql)
    return [default for default in _STAND_INS
            if _columns(conn, sql.schema, sql.names.get(default, default)) is None]


def create_stand_ins(conn: _Conn, sql: SQL) -> None:
    """Stand in for the tables a read-only repository's database lacks.

    Runs on each new connection of a ``read_only`` repository, before the
    connection turns read-only. A repository opened this way before the
    database was set up keeps reading its (empty) stand-ins: reopen it to see
    what was added since.
    """
    for default in sql.temporary:
        conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {sql.table(default)} "
                     f"{_STAND_INS[default]}")
