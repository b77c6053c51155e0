"""How every backend words what it finds wrong with its search index, and names its steps.

The index is derived from the items and the sessions' titles, by triggers
(``schema.sql``, version 3), and from the compacted history (version 9);
``check()`` compares the two and ``reindex()`` rebuilds what differs. Both
backends report in these words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "EXAMPLES",
    "EXTRA",
    "INDEX_HISTORY",
    "INDEX_ITEMS",
    "INDEX_NEW",
    "INDEX_TITLES",
    "MISSING",
    "REPAIR",
    "WRONG_HISTORY",
    "WRONG_OWNER",
    "WRONG_TITLES",
    "index_problem",
]

INDEX_ITEMS = "search index: items"
INDEX_NEW = "search index: new items"
INDEX_TITLES = "search index: session titles"
INDEX_HISTORY = "search index: compacted history"
"""The steps of a reindex, as its progress names them."""

MISSING = "item(s) with words have no row in it (by item id)"
EXTRA = "row(s) of items that do not exist (by item id)"
WRONG_OWNER = "item(s) indexed under another owner or session (by item id)"
WRONG_TITLES = "session title(s) indexed otherwise than the metadata says (by session id)"
WRONG_HISTORY = ("session(s) whose compacted history is indexed otherwise than it is "
                 "(by session id)")

REPAIR = "run 'sessions-dal reindex' (or repo.reindex())"
EXAMPLES = 5
"""How many ids a problem line shows; it counts them all."""


def index_problem(what: str, rows: Iterable[Any]) -> list[str]:
    """One problem line for ``rows`` (single-column, the ids), or none if there are none."""
    count, shown = 0, []
    for (key,) in rows:
        if count < EXAMPLES:
            shown.append(repr(key) if isinstance(key, str) else str(key))
        count += 1
    if not count:
        return []
    more = ", ..." if count > len(shown) else ""
    return [f"search index: {count} {what}: {', '.join(shown)}{more}; {REPAIR}"]
