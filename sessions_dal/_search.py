"""Search queries and results, the same on every backend.

A query is words, ``"quoted phrases"`` and a trailing ``*`` for a prefix; all
must match (AND). Every other character is a separator, never syntax: quotes
that do not pair, ``-``, ``(``, ``:``, ``NEAR`` and ``OR`` are punctuation or
words like any other, so no query text is ever read as the database's own
query language. Each backend turns the parsed :class:`Term` s into its query
syntax from words that contain only letters and digits.

Which text is searched: every string value inside an item, except the values
of :data:`EXCLUDED_KEYS` (ids and fixed values such as ``"message"`` or
``"completed"``); keys and JSON syntax never. A NUL inside a string
separates words, as a space does (the databases' JSON readers stop at it, or
refuse it). The backends' index triggers apply the same rule; :func:`item_texts`
applies it here, for snippets.

How long a word can be: PostgreSQL cannot index a word of 2,047 bytes or more
(it drops it, and a query word it dropped would match everything), and SQLite
can. So a query word may have at most :data:`MAX_WORD_LENGTH` letters and
digits, as compared (folded), and PostgreSQL's index keeps the first
``MAX_WORD_LENGTH + 1`` of a longer word of an item (at most 2,004 bytes).
Both backends then answer alike: a longer word is found by its start
(``prefix*``), never whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "EXCLUDED_KEYS",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "MAX_WORD_LENGTH",
    "Term",
    "bracketed",
    "cut",
    "fold",
    "item_texts",
    "parse_query",
    "snippet",
    "snippet_parts",
    "split_words",
]

EXCLUDED_KEYS = frozenset({
    "type", "id", "call_id", "item_id", "response_id", "role", "status",
    "detail", "encrypted_content", "image_url", "file_id", "file_data",
})
"""Keys whose string values are ids, fixed values or binary data: not searched."""

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 32
MAX_WORD_LENGTH = 500
"""The most letters and digits a query word may have, folded (see above). The
PostgreSQL schema (version 4) cuts items' words at one more: change both."""

# A word: letters and digits (any script), as the backends' tokenizers cut
# text (FTS5 unicode61; PostgreSQL after replacing non-alphanumerics).
_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")
_PART = re.compile(r'"([^"]*)"(\*?)|([^"]+)|"')
_UNQUOTED = re.compile(r"([^\W_]+)(\*?)")


class Term(NamedTuple):
    """One thing all results must contain: a word, or a phrase of adjacent words.

    ``prefix``: the last word may be the start of a longer one (``trai*``).
    """

    words: tuple[str, ...]
    prefix: bool = False


def parse_query(query: object) -> tuple[Term, ...]:
    """The terms of a search query, or a ``TypeError``/``ValueError`` saying what is wrong.

    >>> parse_query('rome "night train" sleep*')
    (Term(words=('rome',), prefix=False), Term(words=('night', 'train'), prefix=False), \
Term(words=('sleep',), prefix=True))
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, not {type(query).__name__}")
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"query is {len(query)} characters long; the maximum is {MAX_QUERY_LENGTH}"
        )
    text = unicodedata.normalize("NFC", query)
    terms: list[Term] = []
    for phrase, star, plain in _parts(text):
        if plain is not None:
            terms += [Term((word,), bool(mark)) for word, mark in _UNQUOTED.findall(plain)]
            continue
        words = tuple(_WORD.findall(phrase))
        if words:
            terms.append(Term(words, bool(star) or phrase.rstrip().endswith("*")))
    if not terms:
        raise ValueError(
            f"query {query!r} has no words to search for: give at least one word of "
            "letters or digits"
        )
    if len(terms) > MAX_TERMS:
        raise ValueError(f"query has {len(terms)} words or phrases; the maximum is {MAX_TERMS}")
    for term in terms:
        for given in term.words:
            longest = max(map(len, split_words(fold(given))), default=0)
            if longest > MAX_WORD_LENGTH:
                raise ValueError(
                    f"query has a word of {longest} letters and digits (as compared: lower "
                    f"case, accents removed); the maximum is {MAX_WORD_LENGTH}: search for "
                    "its start, with a '*' after it"
                )
    return tuple(dict.fromkeys(terms))


def _parts(text: str) -> Iterator[tuple[str, str, str | None]]:
    """(phrase, star, None) for each pair of quotes; ("", "", text) for the rest."""
    for match in _PART.finditer(text):
        phrase, star, plain = match.groups()
        if plain is not None:
            yield "", "", plain
        elif phrase is not None:
            yield phrase, star, None
        # A quote without its pair: a separator.


def split_words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits."""
    return _WORD.findall(text)


def fold(text: str) -> str:
    """``text`` as search compares it: lower case, Latin accents removed.

    >>> fold("Été à Zürich")
    'ete a zurich'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not "\u0300" <= c <= "\u036f").lower()


def item_texts(value: Any, key: object = None) -> Iterator[str]:
    """The searchable strings of an item, in document order (see :data:`EXCLUDED_KEYS`),
    with a space for each NUL."""
    if isinstance(value, str):
        if not (isinstance(key, str) and key in EXCLUDED_KEYS):
            yield value.replace("\x00", " ")
    elif isinstance(value, dict):
        for name, member in value.items():
            yield from item_texts(member, name)
    elif isinstance(value, list):
        for member in value:
            yield from item_texts(member)


def snippet(texts: list[str], terms: tuple[Term, ...], width: int = 16) -> str:
    """A piece of ``texts`` around the first match, matched words in ``[brackets]``.

    At most ``width`` words; ``…`` where text was cut. Reads each text only up
    to the end of that piece (a tool's output may be megabytes), keeping a few
    words before it.

    >>> snippet(["We took the night train to Rome, then a bus."], parse_query("rome"), 6)
    '… train to [Rome], then a bus.'
    """
    return bracketed(snippet_parts(texts, terms, width))


def bracketed(parts: tuple[tuple[str, bool], ...]) -> str:
    """A snippet's ``(text, matched)`` parts as one string, matches in ``[brackets]``."""
    return "".join(f"[{text}]" if matched else text for text, matched in parts)


def snippet_parts(texts: list[str], terms: tuple[Term, ...], width: int = 16
                  ) -> tuple[tuple[str, bool], ...]:
    """The :func:`snippet` as ``(text, matched)`` pieces, for marking matches
    another way than with brackets (which the text itself may contain)."""
    wanted = [(tuple(fold(w) for w in term.words), term.prefix) for term in terms]
    for text in texts:
        begin = _near(text, wanted, width)
        piece = _piece(text, wanted, width, begin)
        if piece is None and begin > 0:
            piece = _piece(text, wanted, width, 0)  # the guess was past it
        if piece is not None:
            return piece
    return ()


def _near(text: str, wanted: list[tuple[tuple[str, ...], bool]], width: int) -> int:
    """Where to start reading words: a little before a term's first word appears
    as typed, in any case (found by str.find, so that the words before are not
    read one by one); 0 where only folding matches ("zurich" for "Zürich")."""
    if len(text) <= 4096:
        return 0
    lower = text.lower()
    seen = [at for at in (lower.find(words[0]) for words, _ in wanted) if at >= 0]
    begin = max(0, min(seen) - 64 * width) if seen else 0
    while 0 < begin < len(text) and _WORD.match(text, begin - 1):
        begin += 1  # at the start of a word
    return begin


def _piece(text: str, wanted: list[tuple[tuple[str, ...], bool]], width: int, begin: int
           ) -> tuple[tuple[str, bool], ...] | None:
    before = width // 3
    longest = max(len(words) for words, _ in wanted)
    words: list[re.Match[str]] = []
    folded: list[str] = []
    first: int | None = None
    for match in _WORD.finditer(text, begin):
        word = match.group()
        words.append(match)
        folded.append(word.lower() if word.isascii() else fold(word))
        if first is None:
            first = _ends_a_match(folded, wanted)
            if first is None and len(words) > 4 * (width + longest):
                keep = before + longest  # what a match ending later may need
                del words[:-keep], folded[:-keep]
        elif len(words) >= first + width:
            break
    if first is None:
        return None
    start = max(0, min(first - before, len(words) - width))
    end = min(len(words), start + width)
    marked = _matches(folded[start:end], wanted)
    cut_before = words[start].start() > 0 and _WORD.search(text, 0, words[start].start())
    pieces: list[tuple[str, bool]] = []
    plain = ["… " if cut_before else ""]  # the text since the last matched word
    cursor = words[start].start() if cut_before else 0
    for n in range(start, end):
        match = words[n]
        plain.append(_middle(text[cursor:match.start()], _GAP))
        if n - start in marked:
            pieces.append(("".join(plain), False))
            pieces.append((cut(match.group(), _LONG_WORD), True))
            plain = []
        else:
            plain.append(cut(match.group(), _LONG_WORD))
        cursor = match.end()
    rest = text[cursor:]
    plain.append(cut(rest, _GAP) if _WORD.search(rest) is None else " …")
    pieces.append(("".join(plain), False))
    return _squeezed(pieces)


# A snippet is at most ``width`` words, each cut at _LONG_WORD characters,
# and what lies between them (punctuation, spaces) at _GAP: bounded, whatever
# the text ("." * 10**6 before a match, a word of a million letters).
_GAP = 40
_LONG_WORD = 100


def cut(text: str, width: int) -> str:
    """``text`` of at most ``width`` characters, ``…`` where it was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _middle(text: str, width: int) -> str:
    """``text`` cut in its middle: the spaces at its ends still separate words."""
    half = width // 2
    return text if len(text) <= width else f"{text[:half]}…{text[-half:]}"


def _squeezed(pieces: list[tuple[str, bool]]) -> tuple[tuple[str, bool], ...]:
    """``pieces`` with each run of whitespace as one space, none at either end
    (matched pieces are words: the whitespace is all in the others)."""
    texts = [_SPACES.sub(" ", text) for text, _ in pieces]
    texts[0] = texts[0].lstrip()
    texts[-1] = texts[-1].rstrip()
    return tuple((text, matched) for text, (_, matched) in zip(texts, pieces, strict=True)
                 if text)


def _ends_a_match(folded: list[str], wanted: list[tuple[tuple[str, ...], bool]]
                  ) -> int | None:
    """Where a term starts, if one ends at the last word of ``folded``."""
    last = folded[-1]
    for words, prefix in wanted:
        start = len(folded) - len(words)
        if start >= 0 and (last.startswith(words[-1]) if prefix else last == words[-1]) and all(
                folded[start + k] == words[k] for k in range(len(words) - 1)):
            return start
    return None


def _matches(folded: list[str], wanted: list[tuple[tuple[str, ...], bool]]) -> set[int]:
    """The positions of the words that match a term (all words of a phrase)."""
    marked: set[int] = set()
    for words, prefix in wanted:
        size = len(words)
        for n in range(len(folded) - size + 1):
            if all(folded[n + k] == words[k] for k in range(size - 1)) and (
                folded[n + size - 1].startswith(words[-1]) if prefix
                else folded[n + size - 1] == words[-1]
            ):
                marked.update(range(n, n + size))
    return marked
