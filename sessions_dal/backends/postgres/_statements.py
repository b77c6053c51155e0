"""Where a PostgreSQL statement ends: the splitter of this backend's ``schema.sql``.

SQLite's tokenizer (``sqlite3.complete_statement``) splits SQLite's file; it
does not know PostgreSQL's dollar quoting, so function bodies had to be
single-quoted strings with every quote inside doubled. This reads what
PostgreSQL's lexer reads between statements: ``'strings'`` (``''`` inside),
``E'strings'`` (backslash escapes too), ``"identifiers"``, ``-- comments``,
nested ``/* comments */`` and ``$tag$ bodies $tag$``; a ``;`` outside all of
them ends a statement.
"""

from __future__ import annotations

import re

__all__ = ["complete_statement"]

# Where a quoted or commented stretch starts, or a statement ends.
_START = re.compile(r"""(?<![\w$])(?P<dollar>\$(?:[^\W\d]\w*)?\$)
                       |(?<![\w$])(?P<escape>[Ee]')|(?P<string>')|(?P<ident>")
                       |(?P<line>--)|(?P<block>/\*)|(?P<end>;)""", re.VERBOSE)
_STRING_END = re.compile(r"(?:[^']|'')*'(?!')")
_ESCAPE_END = re.compile(r"(?:[^'\\]|''|\\.)*'(?!')", re.DOTALL)
_IDENT_END = re.compile(r'(?:[^"]|"")*"(?!")')
_CLOSE = {"string": _STRING_END, "escape": _ESCAPE_END, "ident": _IDENT_END}
_BLOCK = re.compile(r"/\*|\*/")


def complete_statement(text: str) -> bool:
    """Whether ``text`` ends with a complete statement (only blanks and comments
    after its last ``;``), as ``sqlite3.complete_statement`` says for SQLite.

    >>> complete_statement("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$")
    False
    >>> complete_statement("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;")
    True
    """
    position, ended = 0, False
    while True:
        found = _START.search(text, position)
        if found is None:
            return ended and not text[position:].strip()
        if text[position:found.start()].strip():
            ended = False
        kind, start = found.lastgroup or "", found.end()
        if kind == "end":
            ended, position = True, start
            continue
        if kind == "line":
            newline = text.find("\n", start)
            position = len(text) if newline < 0 else newline + 1
            continue
        if kind != "block":
            ended = False  # a quoted stretch is part of a statement
        position = _end_of(kind, found.group(), text, start)
        if position < 0:
            return False  # inside a string, a name, a body or a comment


def _end_of(kind: str, opening: str, text: str, start: int) -> int:
    """Where the quoted (or commented) stretch opened by ``opening`` ends; -1: open."""
    if kind == "dollar":
        closing = text.find(opening, start)
        return -1 if closing < 0 else closing + len(opening)
    if kind == "block":
        return _after_block(text, start)
    closed = _CLOSE[kind].match(text, start)
    return -1 if closed is None else closed.end()


def _after_block(text: str, position: int) -> int:
    """Where a ``/* comment */`` that opened before ``position`` ends (they nest); -1: open."""
    depth = 1
    for mark in _BLOCK.finditer(text, position):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return -1
