"""One search rule: the keys whose values are never searched are the same in
Python (snippets) and in every copy of the backends' SQL (triggers, backfills,
the PostgreSQL words function), in every schema version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sessions_dal._search import EXCLUDED_KEYS

PACKAGE = Path(__file__).resolve().parent.parent / "sessions_dal" / "backends"
SOURCES = {
    "sqlite schema": PACKAGE / "sqlite" / "schema.sql",
    "sqlite statements": PACKAGE / "sqlite" / "_sql.py",
    "postgres schema": PACKAGE / "postgres" / "schema.sql",
    "postgres statements": PACKAGE / "postgres" / "_sql.py",
}
# A list of keys is written as `key NOT IN ('type', ...)` (with quotes doubled
# inside PL/pgSQL bodies) or as a JSON path filter `@.key != "type" && ...`.
NOT_IN = re.compile(r"key\s+NOT\s+IN\s*\(([^)]*)\)", re.IGNORECASE)
PATH_FILTER = re.compile(r'(?:@\.key\s*!=\s*"[^"]*"\s*(?:&&\s*)?)+')


def _lists(text: str) -> list[set[str]]:
    found = [set(re.findall(r"'+([^',]+)'+", group)) for group in NOT_IN.findall(text)]
    found += [set(re.findall(r'@\.key\s*!=\s*"([^"]*)"', chain))
              for chain in PATH_FILTER.findall(text)]
    return found


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_copy_of_the_excluded_keys_is_the_python_rules(source: str) -> None:
    text = SOURCES[source].read_text(encoding="utf-8")
    lists = _lists(text)
    if source != "postgres statements":  # it only calls the words function
        assert lists, f"no list of excluded keys found in {source}: has its shape changed?"
    for keys in lists:
        assert keys == EXCLUDED_KEYS, f"{source}: {sorted(keys ^ EXCLUDED_KEYS)} differ"


def test_the_parser_finds_a_list_that_differs() -> None:
    assert _lists("key NOT IN ('type', 'id')") == [{"type", "id"}]
    assert _lists("key NOT IN (''type'', ''id'')") == [{"type", "id"}]
    assert _lists('@.key != "type" && @.key != "role").value') == [{"type", "role"}]
