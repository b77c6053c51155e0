"""AgentsSession: a sessions_dal Session behind openai-agents' async ``Session`` protocol.

Needs the ``agents`` extra (``pip install 'sessions-dal[agents]'``); the rest of
sessions_dal never imports openai-agents.

>>> import asyncio
>>> from sessions_dal import SessionRepository
>>> from sessions_dal.agents import AgentsSession
>>> with SessionRepository(":memory:") as repo:
...     memory = AgentsSession(repo.create_session("alice"))
...     asyncio.run(memory.add_items([{"role": "user", "content": "hi"}]))
...     asyncio.run(memory.get_items())
[{'role': 'user', 'content': 'hi'}]
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from agents.memory import SessionSettings

from .session import Session

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

__all__ = ["AgentsSession"]


class AgentsSession:
    """Use a sessions_dal :class:`~sessions_dal.Session` as an openai-agents session.

    ``await Runner.run(agent, "hi", session=AgentsSession(repo.create_session("alice")))``
    keeps the conversation in the user's session. Each call runs the blocking
    SQLite work in a worker thread (``asyncio.to_thread``), so the event loop
    never waits on the disk. ``get_items(limit)`` follows ``SQLiteSession``: an
    explicit ``limit`` wins, else ``session_settings.limit``, else all items.

    Wrapped by openai-agents' ``OpenAIResponsesCompactionSession``, a compaction
    replaces the items through :meth:`_atomic_replace_items` (the hook that
    class looks up): one transaction, :meth:`Session.compact`, and every
    replaced item stays in the session's history. ``keep_history_on_clear=True``
    makes :meth:`clear_session` keep the cleared items as history too (for a
    wrapper that clears, then adds: a process killed in between loses nothing).
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(self, session: Session, *, session_settings: SessionSettings | None = None,
                 keep_history_on_clear: bool = False) -> None:
        if not isinstance(session, Session):
            raise TypeError(
                f"session must be a sessions_dal Session, not {type(session).__name__}; "
                "get one from SessionRepository.create_session() or get_session()"
            )
        if session_settings is not None and not isinstance(session_settings, SessionSettings):
            raise TypeError(
                "session_settings must be an agents.memory.SessionSettings or None, "
                f"not {type(session_settings).__name__}"
            )
        if not isinstance(keep_history_on_clear, bool):
            raise TypeError("keep_history_on_clear must be a bool, not "
                            f"{type(keep_history_on_clear).__name__}")
        self.session = session
        """The wrapped sessions_dal session (synchronous)."""
        self.keep_history_on_clear = keep_history_on_clear
        """Whether :meth:`clear_session` moves the items to the history instead of erasing."""
        self.session_id = session.session_id
        self.session_settings = session_settings or SessionSettings()

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items (see the class docstring for the default), oldest first."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        return await asyncio.to_thread(self.session.get_items, limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one transaction."""
        await asyncio.to_thread(self.session.add_items, items)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the latest item, or ``None``."""
        item: TResponseInputItem | None = await asyncio.to_thread(self.session.pop_item)
        return item

    async def clear_session(self) -> None:
        """Remove every item; the session, its owner and metadata stay. With
        ``keep_history_on_clear``, the items move to the session's history (a
        compaction with nothing in their place) instead of being erased."""
        if self.keep_history_on_clear:
            await asyncio.to_thread(self.session.compact, [])
        else:
            await asyncio.to_thread(self.session.clear_session)

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """Replace every item with ``items`` in one transaction, keeping the replaced
        ones as history (openai-agents' compaction hook)."""
        await asyncio.to_thread(self.session.compact, items)
        return True

    def __repr__(self) -> str:
        return f"AgentsSession({self.session!r})"
