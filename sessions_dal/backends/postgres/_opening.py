"""Opening a PostgreSQL repository: its URL read and shown, its connections' settings.

The URL is parsed without ever quoting it (it may hold a password), and
:func:`describe` gives the form messages show. :data:`_PINNED` is what every
connection sets before its first call, whatever the server's, database's or
role's defaults. The pool and the transactions run on it live in ``_runner``.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from ._errors import _reason

__all__ = ["CONNECT_TIMEOUT", "describe"]

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when opening a repository (unless the URL's
``connect_timeout`` says otherwise)."""


# libpq's words for an option it cannot use (no password in them).
_BAD_OPTION = re.compile(r"(invalid \w+ value: \"[^\"]*\"|bad value for \w+: '[^']*')")


def _parse(url: str) -> dict[str, Any]:
    """The URL's parts, or ``ValueError`` saying what is wrong (never quoting the URL)."""
    if _misread(url):
        raise ValueError(
            "path is not a valid PostgreSQL URL: its user or password holds an '@' or a "
            "'/' as it is, which moves the host and database into the password; write "
            "them percent-encoded (@ as %40, / as %2F, : as %3A)"
        )
    problem = None
    try:
        return psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # libpq quotes the part it cannot read, which may hold the password.
        problem = _reason(exc).split(":")[0].split(" in URI")[0]
    raise ValueError(
        f"path is not a valid PostgreSQL URL ({problem}); the form is "
        "postgresql://user[:password]@host[:port]/database[?option=value&...]"
    )


def _misread(url: str) -> bool:
    """Whether libpq would read part of the password as the host, port or database.

    A password with an unencoded ``/`` ends the host part early (the rest of
    the password becomes the database name), and a second ``@`` puts the end
    of the password into the host name: messages would then show it.
    """
    rest = url.split("://", 1)[-1].split("?", 1)[0]
    netloc, _, path = rest.partition("/")
    return netloc.count("@") > 1 or "@" in path


def describe(url: str) -> str:
    """The URL without its password, as messages show it."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    if _misread(url) or not all(part.isdigit() for part in
                                str(info.get("port") or "0").split(",")):
        return "postgresql://…"  # the parts may hold pieces of the password
    host = info.get("host", "") or ""
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    # The options (a search_path, say) tell apart two repositories on one database.
    options = f"?options={info['options']}" if info.get("options") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '') or ''}{options}"


# Set on every connection, session-wide, in one statement:
# - search_path: pg_catalog, pg_temp. Every table of ours is named with its
#   schema (see _sql.py), so no name, function or operator resolves to one
#   another role created in a schema it may write to; pg_temp last, so that a
#   temporary table never stands in for ours.
# - default_transaction_isolation: read committed, which every write's lock
#   order is designed for (docs/concurrency.md); under repeatable read or
#   serializable, concurrent appends would fail instead of waiting their turn.
# - statement_timeout 0 (also set at connect, see Database): busy_timeout
#   (lock_timeout) bounds waiting; a large write, a prune or a migration must
#   not be cut short halfway through. idle_in_transaction_session_timeout 0:
#   an export's snapshot waits while the caller's code takes each line.
# - TimeZone is left as the connection starts: openai-agents' naive times are
#   local times of that zone (see _sql.py); timestamptz values come back in
#   it, and the store converts them to UTC.
# - DateStyle, IntervalStyle: ISO; times travel as text in keyset pages.
# - standard_conforming_strings on: the schema's literals hold backslashes;
#   quote_all_identifiers off: type names are compared as format_type spells them.
_PINNED = (
    "SELECT set_config('search_path', 'pg_catalog, pg_temp', false), "
    "set_config('default_transaction_isolation', 'read committed', false), "
    "set_config('statement_timeout', '0', false), "
    "set_config('idle_in_transaction_session_timeout', '0', false), "
    "set_config('lock_timeout', %s, false), "
    "set_config('DateStyle', 'ISO, MDY', false), "
    "set_config('IntervalStyle', 'postgres', false), "
    "set_config('standard_conforming_strings', 'on', false), "
    "set_config('quote_all_identifiers', 'off', false)"
)
