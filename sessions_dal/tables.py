"""Configurable names of the two openai-agents tables, and the SQL that uses them.

openai-agents lets ``SQLiteSession`` use other names than ``agent_sessions``
and ``agent_messages``; sessions_dal follows. SQL throughout the package is
written with the default names, and :meth:`Tables.sql` rewrites those
identifiers once per statement: names are checked against a strict pattern
and quoted, so no caller text ever reaches SQL unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["DEFAULT_MESSAGES_TABLE", "DEFAULT_SESSIONS_TABLE", "Tables", "check_table_name"]

DEFAULT_SESSIONS_TABLE = "agent_sessions"
DEFAULT_MESSAGES_TABLE = "agent_messages"

# Letters, digits and underscores, not starting with a digit, and not sqlite_*
# (reserved by SQLite): always a plain identifier, whatever the SQL around it.
_IDENTIFIER = re.compile(r"(?!sqlite_)[A-Za-z_][A-Za-z0-9_]{0,62}", re.ASCII | re.IGNORECASE)
# Our own tables: a configured name may not collide with them.
_RESERVED = {"agent_users", "agent_user_sessions"}
_DEFAULT_NAMES = re.compile(
    r"\b(agent_sessions|agent_messages|idx_agent_messages_session_id)\b"
)


def check_table_name(argument: str, name: object) -> str:
    """Return ``name`` if it is a safe table name, else raise ``TypeError``/``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, not {type(name).__name__}")
    if not _IDENTIFIER.fullmatch(name) or name.lower() in _RESERVED:
        raise ValueError(
            f"{argument} must be 1-63 letters, digits or underscores, not starting with a "
            f"digit or 'sqlite_', and not one of sessions_dal's own tables; got {name!r}"
        )
    return name


@dataclass(frozen=True)
class Tables:
    """The names of the sessions and messages tables of one database."""

    sessions: str = DEFAULT_SESSIONS_TABLE
    messages: str = DEFAULT_MESSAGES_TABLE
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def index(self) -> str:
        """The items index, named as openai-agents names it."""
        return f"idx_{self.messages}_session_id"

    @property
    def is_default(self) -> bool:
        """True when both tables have openai-agents' default names."""
        return (self.sessions, self.messages) == (DEFAULT_SESSIONS_TABLE, DEFAULT_MESSAGES_TABLE)

    def sql(self, statement: str) -> str:
        """``statement`` with the default table names replaced by these, quoted."""
        rewritten = self._cache.get(statement)
        if rewritten is None:
            names = {
                DEFAULT_SESSIONS_TABLE: self.sessions,
                DEFAULT_MESSAGES_TABLE: self.messages,
                f"idx_{DEFAULT_MESSAGES_TABLE}_session_id": self.index,
            }
            rewritten = (
                statement
                if self.is_default
                else _DEFAULT_NAMES.sub(lambda m: f'"{names[m.group(1)]}"', statement)
            )
            self._cache[statement] = rewritten
        return rewritten
