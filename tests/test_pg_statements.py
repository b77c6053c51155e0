"""PostgreSQL's schema.sql splitter: a ``;`` ends a statement only outside
strings, quoted names, comments and dollar-quoted bodies (no server needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions_dal.backends._migrations import parse_migrations
from sessions_dal.backends.postgres._schema import MIGRATIONS
from sessions_dal.backends.postgres._statements import complete_statement


@pytest.mark.parametrize(("text", "complete"), [
    ("SELECT 1;", True),
    ("SELECT 1; -- done", True),
    ("SELECT 1; /* done */\n", True),
    ("SELECT 1; x", False),
    ("SELECT ';'", False),
    ("SELECT 'it''s;';", True),
    ("SELECT 'open;", False),
    ("SELECT E'\\';';", True),            # a backslash-escaped quote, then ';'
    ("SELECT e'\\\\';", True),            # an escaped backslash ends the string
    ('SELECT "a;""b";', True),
    ('SELECT "a;', False),
    ("SELECT $$ ; $$;", True),
    ("SELECT $$ ;\n", False),
    ("SELECT $body$ $$; $body$;", True),  # another tag's $$ is text
    ("SELECT $body$ ; $BODY$;", False),   # tags are case-sensitive
    ("SELECT $1;", True),                 # a parameter, not a quote
    ("SELECT a$b$ ;", True),              # '$' inside a name starts nothing
    ("SELECT 1 -- ;\n", False),
    ("SELECT /* ; /* ; */ ; */ 1;", True),  # comments nest
    ("SELECT /* ; /* ; */ 1;", False),
    ("", False),
    ("-- only a comment\n", False),
])
def test_a_statement_ends_only_at_a_semicolon_outside_quotes(text: str, complete: bool
                                                              ) -> None:
    assert complete_statement(text) is complete


PIECE = st.sampled_from([
    "x", "1", " ", "\n", "'a;b'", "'it''s'", "E'\\';'", '"n;m"', "$$ ; \n $$",
    "$f$ $$ ; $f$", "-- c ; \n", "/* ; /* ; */ */", "$1", "a$b",
])


@given(st.lists(st.lists(PIECE, min_size=1, max_size=6).map(" ".join), min_size=1,
                max_size=5))
def test_statements_come_back_as_written(bodies: list[str]) -> None:
    statements = [f"SELECT {body};" for body in bodies]
    (migration,) = parse_migrations("-- version: 1\n" + "\n".join(statements),
                                    complete_statement)
    assert list(migration.statements) == [s.strip() for s in statements]


def test_function_bodies_are_dollar_quoted_and_split_whole() -> None:
    functions = [s for m in MIGRATIONS for s in m.statements if "CREATE OR REPLACE FUNCTION" in s]
    assert len(functions) > 10
    for statement in functions:
        assert " AS $$" in statement and statement.rstrip().endswith("$$;"), statement[:200]
