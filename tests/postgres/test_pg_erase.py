"""Every path that removes items leaves no text of theirs in any table, on PostgreSQL.

What a table holds is what SQL reads from it: deleted rows wait for VACUUM in
the server's files like any other (see the README's *On PostgreSQL*).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
from backends import PostgresBackend

from sessions_dal import Session, SessionRepository


def rows_with(pg: PostgresBackend, word: str) -> dict[str, int]:
    """How many rows of each table of the schema hold ``word`` (any case)."""
    tables = [row[0] for row in pg._query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        pg.schema)]
    return {table: n for table in tables if (n := pg._query(
        f'SELECT count(*) FROM "{table}" t WHERE lower(t::text) LIKE %s',
        f"%{word.lower()}%")[0][0])}


def _replacement(session_id: str) -> list[str]:
    with SessionRepository(":memory:") as other:
        other.create_session("alice", session_id=session_id).add_items(["new words"])
        out = io.StringIO()
        other.export_to(out)
    return out.getvalue().splitlines(keepends=True)


def _pop_all(session: Session) -> None:
    while session.pop_item() is not None:
        pass


REMOVALS: dict[str, Callable[[SessionRepository, Session], object]] = {
    "delete_session": lambda repo, s: repo.delete_session("alice", s.session_id),
    "delete_user": lambda repo, s: repo.delete_user("alice"),
    "prune": lambda repo, s: repo.prune(keep_last=0, user_id="alice"),
    "delete_unowned_session": lambda repo, s: repo.delete_unowned_session(s.session_id),
    "import --replace": lambda repo, s: repo.import_from(_replacement(s.session_id),
                                                         replace=True),
    "clear_session": lambda repo, s: s.clear_session(),
    "pop_item": lambda repo, s: _pop_all(s),
}


@pytest.mark.parametrize("removal", REMOVALS)
def test_removed_items_leave_no_text_in_any_table(pg: PostgresBackend,
                                                  repo: SessionRepository,
                                                  removal: str) -> None:
    word = f"w{uuid.uuid4().hex}"  # one word to every parser (not "5e3...": a number)
    keeps_title = removal in ("clear_session", "pop_item")
    if removal == "delete_unowned_session":
        pg.write_like_agents("s", [])
        session = repo.get_unowned_session("s")
        assert session is not None
    else:
        title = "kept" if keeps_title else f"{word} trip"
        session = repo.create_session("alice", session_id="s", metadata={"title": title})
    session.add_items([{"content": f"{word} {n}"} for n in range(5)] + [f"{word} plain"])
    bob = repo.create_session("bob")
    bob.add_items([f"bob {word[:8]}x"])  # another user's words stay
    repo.update_search_index()
    assert set(rows_with(pg, word)) >= {"agent_messages", "sessions_dal_search"}
    REMOVALS[removal](repo, session)
    assert rows_with(pg, word) == {}
    assert rows_with(pg, f"{word[:8]}x") == {"agent_messages": 1, "sessions_dal_search": 1}
    assert repo.check() == []
