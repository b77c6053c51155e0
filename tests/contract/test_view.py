"""The notebook view: readable HTML of sessions, lists, hits and reports, in which
every value from the database is text, and no query is unbounded."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from backends import Backend

from sessions_dal import (
    PruneReport,
    SearchHit,
    SearchResults,
    Session,
    SessionList,
    SessionRepository,
)
from sessions_dal._view import _STYLE, NOTEBOOK_ITEMS, NOTEBOOK_ROWS

# Markup the view itself writes; anything else in its output came from data.
TAGS = {"style", "div", "table", "tr", "th", "td", "b", "p", "span", "details", "summary",
        "pre", "code", "mark"}
CLASSES = {"sessions-dal", "who", "user", "assistant", "tool", "note", "text", "when", ""}

SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror="alert(1)">'
CLOSE = "</td></tr></table></div><iframe src=javascript:alert(1)>"
HOSTILE = (SCRIPT, IMG, CLOSE)


class Page(HTMLParser):
    """What a browser would build from the HTML: tags, attributes, text, style."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.texts: list[str] = []
        self.style: list[str] = []
        self._in_style = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.style if self._in_style else self.texts).append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def page_of(markup: str) -> Page:
    """Parse ``markup`` and check it holds only the view's own tags and classes."""
    page = Page(markup)
    for tag, attrs in page.tags:
        assert tag in TAGS, f"unexpected <{tag}>: data became markup"
        for name, value in attrs:
            assert name == "class", f"unexpected attribute {name}={value!r} on <{tag}>"
            assert set((value or "").split()) <= CLASSES, value
    assert "".join(page.style) == re.sub(r"</?style>", "", _STYLE)
    return page


@pytest.fixture
def hostile(repo: SessionRepository) -> Session:
    session = repo.create_session(f"user {SCRIPT}", session_id=f"id {IMG}", metadata={
        "title": f"Trip {SCRIPT}", IMG: CLOSE})
    session.add_items([
        {"role": "user", "content": f"hello {SCRIPT}"},
        {"role": "assistant", "content": [{"type": "output_text", "text": IMG}]},
        {"type": "function_call", "name": f"book{CLOSE}", "arguments": f'{{"to": "{IMG}"}}'},
        {"type": "function_call_output", "output": "x" * 500 + SCRIPT},  # in the folded part
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": CLOSE}]},
        {"type": "frobnicate", SCRIPT: [IMG, CLOSE]},  # an unknown shape: its JSON
        f"hello {CLOSE}",
        {"type": "web_search_call", "action": {"type": "search", "query": SCRIPT}},
    ])
    return session


def test_a_session_shows_as_a_conversation_where_every_value_is_text(hostile: Session) -> None:
    page = page_of(hostile._repr_html_())
    for value in HOSTILE:
        assert value in page.text  # shown as the characters it is
    for who in ("user", "assistant", "tool call", "tool output", "reasoning", "item",
                "web search"):
        assert who in page.texts
    assert f"Trip {SCRIPT}" in page.texts  # the title heads it
    assert "8 items" in page.text and "earlier" not in page.text
    assert ("details", []) in page.tags  # the 500-character output is folded


def test_lists_hits_and_reports_escape_every_value(repo: SessionRepository,
                                                   hostile: Session) -> None:
    sessions = repo.get_sessions(hostile.user_id or "")
    assert isinstance(sessions, SessionList) and sessions == [hostile]
    page = page_of(sessions._repr_html_())
    assert f"Trip {SCRIPT}" in page.texts and f"id {IMG}" in page.texts
    assert f"user {SCRIPT}" in page.texts
    assert [text for text in page.texts if text.isdigit()] == ["8"]  # its item count

    hits = repo.search(hostile.user_id or "", "alert")
    assert isinstance(hits, SearchResults) and len(hits) == 9  # 8 items, the title
    page = page_of(hits._repr_html_())
    for value in HOSTILE:
        assert value.replace("alert", "") in page.text.replace("alert", "")
    assert {"title", "user", "assistant", "tool call", "tool output", "reasoning", "item",
            "web search"} <= set(page.texts)
    page_of(hits[0]._repr_html_())  # one hit alone, too

    for unowned in repo.get_unowned_sessions(), SessionList():
        assert "(no sessions)" in page_of(unowned._repr_html_()).text
    assert "(no matches)" in page_of(repo.search("alice", "nothing")._repr_html_()).text
    page_of(repo.info()._repr_html_())


def test_a_hit_marks_the_matched_words_and_nothing_else(repo: SessionRepository) -> None:
    session = repo.create_session("alice", metadata={"title": "Rome [trip]"})
    session.add_items([{"type": "function_call_output", "output": "[rome] <b>Rome</b> trip"}])
    hits = repo.search("alice", "rome")
    marked = [[text for tag, text in _marks(hit._repr_html_())] for hit in hits]
    assert sorted(marked) == [["Rome"], ["rome", "Rome"]]
    by_kind = {hit.item is None: page_of(hit._repr_html_()).texts for hit in hits}
    assert "title" in by_kind[True] and "tool output" in by_kind[False]
    item_hit = next(hit for hit in hits if hit.item is not None)
    assert item_hit.parts == (("[", False), ("rome", True), ("] <b>", False), ("Rome", True),
                              ("</b> trip", False))
    assert item_hit.snippet == "[[rome]] <b>[Rome]</b> trip"
    # A hit an app builds itself has no parts: its snippet is shown as it is.
    plain = SearchHit(session, None, "[x] <i>")
    assert "[x] <i>" in page_of(plain._repr_html_()).text


def _marks(markup: str) -> list[tuple[str, str]]:
    return re.findall(r"<(mark)>([^<]*)</mark>", markup)


def test_a_long_session_shows_its_latest_items_with_two_bounded_queries(
        repo: SessionRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    session = repo.create_session("alice")
    session.add_items([{"role": "user", "content": f"message {n}"} for n in range(1, 31)])
    limits: list[int | None] = []
    original = Session.get_items

    def spy(self: Session, limit: int | None = None, *, offset: int = 0) -> list[Any]:
        limits.append(limit)
        return original(self, limit, offset=offset)

    monkeypatch.setattr(Session, "get_items", spy)
    page = page_of(session._repr_html_())
    assert limits == [NOTEBOOK_ITEMS]
    shown = [text for text in page.texts if text.startswith("message ")]
    assert shown == [f"message {n}" for n in range(11, 31)]
    assert "30 items" in page.text and "10 earlier, not shown" in page.text
    numbers = [text for text in page.texts if text.isdigit()]
    assert numbers == [str(n) for n in range(11, 31)]  # numbered from the oldest


def test_a_long_list_shows_its_first_rows_and_counts_only_those(
        repo: SessionRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(NOTEBOOK_ROWS + 3):
        repo.create_session("alice", metadata={"title": f"chat {n}"})
    counted: list[str] = []
    original = Session.count_items

    def spy(self: Session) -> int:
        counted.append(self.session_id)
        return original(self)

    monkeypatch.setattr(Session, "count_items", spy)
    sessions = repo.get_sessions("alice")
    page = page_of(sessions._repr_html_())
    assert len(counted) == NOTEBOOK_ROWS
    assert f"{NOTEBOOK_ROWS + 3} sessions of user alice" in page.text
    assert "… and 3 more sessions" in page.text
    assert "chat 0" not in page.texts and f"chat {NOTEBOOK_ROWS + 2}" in page.texts


def test_a_list_of_several_users_sessions_names_each_owner(repo: SessionRepository) -> None:
    mixed = SessionList([repo.create_session("alice"), repo.create_session("bob")])
    page = page_of(mixed._repr_html_())
    assert "user" in page.texts and {"alice", "bob"} <= set(page.texts)
    assert "2 sessions" in page.text


def test_a_closed_repositorys_session_still_shows_what_it_knows(
        repo: SessionRepository) -> None:
    session = repo.create_session("alice", metadata={"title": "Trip"})
    session.add_items(["hi"])
    listed = repo.get_sessions("alice")
    repo.close()
    page = page_of(session._repr_html_())
    assert "Trip" in page.texts and session.session_id in page.texts
    assert "items not shown" in page.text and "closed" in page.text
    assert "?" in page_of(listed._repr_html_()).texts  # its count could not be read


def test_reports_show_their_numbers(repo: SessionRepository, backend: Backend) -> None:
    assert "would delete 2 sessions and 1 item" in page_of(
        PruneReport(2, 1, dry_run=True)._repr_html_()).text
    assert "deleted 1 session and 0 items" in page_of(PruneReport(1, 0)._repr_html_()).text
    repo.create_session("alice").add_items(["a", "b"])
    page = page_of(repo.info()._repr_html_())
    info = repo.info()
    assert "schema version" in page.texts and str(info.schema_version) in page.texts
    assert ("server version" in page.texts) == (not backend.has_file)  # SQLite's: by name
    assert ("sqlite version" in page.texts) == backend.has_file
    assert "details" not in page.texts  # its facts are rows of their own
    assert "items" in page.texts and "2" in page.texts


def test_huge_roles_titles_and_text_around_a_match_stay_small(repo: SessionRepository) -> None:
    huge = "\u202e" * 200_000
    session = repo.create_session("alice", metadata={"title": huge + " zebra"})
    session.add_items([{"role": huge, "content": "hi"},
                       "." * 200_000 + " zebra " + "-" * 200_000,
                       "zebra" + "x" * 200_000])
    # A session's view holds each item's first 20,000 characters (folded).
    assert len(page_of(session._repr_html_()).text) < 3 * 20_000 + 1_000
    for markup in (repo.get_sessions("alice")._repr_html_(),
                   repo.search("alice", "zebra*")._repr_html_()):
        assert len(markup) < 10_000
        page_of(markup)
    for hit in repo.search("alice", "zebra*"):
        assert len(hit.snippet) < 400 and "zebra" in hit.snippet.lower()
        assert any(matched for _, matched in hit.parts)
