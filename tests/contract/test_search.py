"""repo.search: a user's conversations by their words, on every backend."""

from __future__ import annotations

import io
import json
import string
import threading
from datetime import timedelta

import pytest
from backends import KINDS, Backend, fresh_repository
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_dal import MAX_ID_LENGTH, SearchHit, Session, SessionRepository, repository
from sessions_dal._search import EXCLUDED_KEYS, MAX_WORD_LENGTH, fold, split_words
from sessions_dal._validate import check_id

# The shapes openai-agents stores: a user's message, an assistant's message,
# a tool call and its output, a reasoning summary.
AGENT_ITEMS = [
    {"role": "user", "content": "Which trains go from Rome to Naples?"},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "The Frecciarossa, in 70 minutes.",
                  "annotations": []}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "lookup_timetable",
     "arguments": json.dumps({"from": "Roma Termini", "to": "Napoli"}),
     "status": "completed"},
    {"type": "function_call_output", "call_id": "call_9", "output": "departures 08:10 09:40"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text",
                                                     "text": "Compare fares first"}]},
]


def found(repo: SessionRepository, query: str, user: str = "alice", **kwargs: object
          ) -> list[object]:
    return [hit.item for hit in repo.search(user, query, limit=None, **kwargs)]  # type: ignore[arg-type]


@pytest.fixture
def trip(repo: SessionRepository) -> Session:
    s = repo.create_session("alice", session_id="trip", metadata={"title": "Italy by rail"})
    s.add_items(AGENT_ITEMS)
    return s


@pytest.mark.parametrize(("query", "index"), [
    ("naples", 0), ("frecciarossa", 1), ("lookup_timetable", 2), ("termini", 2),
    ("napoli", 2), ("departures", 3), ("fares", 4),
])
def test_the_words_people_and_tools_wrote_are_found(repo: SessionRepository, trip: Session,
                                                    query: str, index: int) -> None:
    assert found(repo, query) == [AGENT_ITEMS[index]]


@pytest.mark.parametrize("query", [
    "role", "content", "type", "text", "message", "completed", "assistant", "user",
    "function_call", "output_text", "msg_1", "call_9", "fc_1", "rs_1", "summary_text",
    "annotations", "arguments", "status", "true", "null",
])
def test_keys_ids_and_fixed_values_are_not_words(repo: SessionRepository, trip: Session,
                                                 query: str) -> None:
    assert found(repo, query) == []


def test_every_excluded_key_in_one_item_nested_lists_and_accented_words(
        repo: SessionRepository, backend: Backend) -> None:
    # One item holding each key whose value is never searched (with a word
    # found nowhere else), inside nested lists, beside words in several
    # scripts with accents: the backends' SQL and the Python rule must agree.
    excluded = {key: f"hidden{n}" for n, key in enumerate(sorted(EXCLUDED_KEYS))}
    item = {"outer": [[{**excluded, "kept": "visible"}], ["listed", ["deeper"]]],
            "text": "Ελλάδα Zürich Ñandú Ærø", **excluded}
    repo.create_session("alice").add_items([item])
    for n in range(len(excluded)):
        assert found(repo, f"hidden{n}") == [], sorted(EXCLUDED_KEYS)[n]
    for query in ("visible", "listed", "deeper", "zurich", "ZÜRICH", "nandu", "ærø",
                  "ελλάδα"):
        assert found(repo, query) == [item], query
    # Outside Latin, what the Python rule folds (combining accents of any script).
    if not backend.folds_every_script:
        pytest.xfail("SQLite's FTS5 tokenizer removes Latin diacritics only; PostgreSQL "
                     "and the Python rule (snippets) remove every script's: not yet one rule")
    assert fold("ελλαδα") == fold("Ελλάδα") and found(repo, "ελλαδα") == [item]


def test_a_hit_carries_its_session_item_and_a_snippet(repo: SessionRepository,
                                                      trip: Session) -> None:
    [hit] = repo.search("alice", "naples")
    assert isinstance(hit, SearchHit)
    assert hit.session == trip and hit.session.user_id == "alice"
    assert hit.session.metadata == {"title": "Italy by rail"}
    assert hit.item == AGENT_ITEMS[0]
    assert hit.snippet == "Which trains go from Rome to [Naples]?"
    assert "Naples" in repr(hit)


def test_the_title_is_searched_and_a_title_hit_has_no_item(repo: SessionRepository,
                                                           trip: Session) -> None:
    [hit] = repo.search("alice", "rail")
    assert hit.item is None and hit.session == trip and hit.snippet == "Italy by [rail]"
    repo.update_metadata("alice", "trip", {"title": "Summer"})
    assert found(repo, "rail") == [] and found(repo, "summer") == [None]
    repo.update_metadata("alice", "trip", {"title": None})
    assert found(repo, "summer") == []
    repo.update_metadata("alice", "trip", {"title": 42, "note": "rail pass"})
    assert found(repo, "42") == [] and found(repo, "pass") == []  # other metadata: no


def test_words_are_anded_phrases_are_adjacent_and_a_star_is_a_prefix(
    repo: SessionRepository, trip: Session
) -> None:
    assert found(repo, "rome naples") == [AGENT_ITEMS[0]]
    assert found(repo, "rome frecciarossa") == []
    assert found(repo, '"rome to naples"') == [AGENT_ITEMS[0]]
    assert found(repo, '"naples to rome"') == []
    assert found(repo, "frecc*") == [AGENT_ITEMS[1]]
    assert found(repo, "frecc") == []
    assert found(repo, '"roma term*"') == [AGENT_ITEMS[2]]
    assert found(repo, '"roma term"*') == [AGENT_ITEMS[2]]


@pytest.mark.parametrize(("text", "query"), [
    ("Café crème à Zürich", "CAFE creme zurich"),
    ("ÉTÉ", "été"),
    ("Встреча в Москве", "москве"),
    ("ΑΘΗΝΑ", "αθηνα"),
    ("東京 大阪", "大阪"),
    ("naïve coöperation", "naive cooperation"),
    ("東京に行く", "東京*"),  # no spaces: one word, found by its start
])
def test_case_and_accents_do_not_matter_in_any_script(repo: SessionRepository, text: str,
                                                      query: str) -> None:
    repo.create_session("alice").add_items([{"content": text}, {"content": "other"}])
    assert found(repo, query) == [{"content": text}]


@pytest.mark.parametrize("query", [
    'rome OR paris', "NEAR(rome naples)", "rome NOT naples", "content:rome", "-naples rome",
    "(rome)", "rome AND naples", '"rome', 'rome"', '""rome', "^rome", "rome:*", "'rome'",
    "rome; DROP TABLE agent_messages", "{rome}", "rome & naples | x", "!rome", "rome <-> naples",
    "rome\\", "rome\x00", "*rome",
])
def test_query_syntax_of_the_databases_is_plain_text(repo: SessionRepository, trip: Session,
                                                     query: str) -> None:
    # Each is words (OR, NEAR, NOT, AND, content, DROP...) joined by AND, never
    # operators: the results are those of the words alone.
    words = "".join(c if c.isalnum() else " " for c in query).split()
    expected = found(repo, " ".join(words))
    assert found(repo, query) == expected
    assert repo.get_session("alice", "trip") is not None


@pytest.mark.parametrize("query", ["", "   ", "-", '"', '""', "*", "!?", "--", "()",
                                   "_", "\x00", "\u0301"])
def test_a_query_without_words_is_a_value_error(repo: SessionRepository, query: str) -> None:
    with pytest.raises(ValueError, match="no words"):
        repo.search("alice", query)


def test_bad_arguments_name_themselves(repo: SessionRepository) -> None:
    with pytest.raises(TypeError, match="query must be a str"):
        repo.search("alice", b"rome")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_id"):
        repo.search(None, "rome")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user_id"):
        repo.search("", "rome")
    with pytest.raises(ValueError, match="session_id"):
        repo.search("alice", "rome", session_id="")
    with pytest.raises(TypeError, match="limit"):
        repo.search("alice", "rome", limit="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        repo.search("alice", "rome", limit=-1)
    with pytest.raises(ValueError, match="maximum"):
        repo.search("alice", "rome " * 300)
    with pytest.raises(ValueError, match="maximum"):
        repo.search("alice", " ".join(f"w{n}" for n in range(40)))


def test_only_the_users_own_sessions_and_one_session_when_asked(
    repo: SessionRepository, trip: Session
) -> None:
    other = repo.create_session("alice", session_id="other")
    other.add_items(["rome again"])
    bobs = repo.create_session("bob", session_id="bobs")
    bobs.add_items(["rome for bob"])
    assert found(repo, "rome", "bob") == ["rome for bob"]
    assert found(repo, "rome") == ["rome again", AGENT_ITEMS[0]]
    assert found(repo, "rome", session_id="other") == ["rome again"]
    assert found(repo, "rome", session_id="bobs") == []  # bob's: not alice's to search
    assert found(repo, "rome", session_id="nope") == []
    assert found(repo, "rome", "carol") == []


def test_limit_and_a_deterministic_order_best_first(repo: SessionRepository) -> None:
    s = repo.create_session("alice")
    s.add_items(["rome", "rome rome rome", "a long text that mentions rome once among many "
                 "other words about trains and buses and ferries", "rome rome"])
    hits = found(repo, "rome")
    # Backends weigh repeats and length differently (bm25, ts_rank); both put
    # the long text that mentions the word once last.
    assert hits[0] in ("rome", "rome rome rome") and hits[-1].startswith("a long text")  # type: ignore[union-attr]
    assert found(repo, "rome") == hits
    assert found(repo, "rome")[:2] == [hit.item for hit in repo.search("alice", "rome", limit=2)]
    assert repo.search("alice", "rome", limit=0) == []
    same = repo.create_session("alice")
    same.add_items(["tie", "tie"])
    assert [hit.item for hit in repo.search("alice", "tie")] == ["tie", "tie"]


def test_changes_of_items_show_at_once(repo: SessionRepository, trip: Session) -> None:
    assert trip.pop_item() == AGENT_ITEMS[-1]
    assert found(repo, "fares") == []
    trip.add_items(["fares again"])
    assert found(repo, "fares") == ["fares again"]
    trip.clear_session()
    assert found(repo, "fares") == [] and found(repo, "naples") == []
    assert found(repo, "rail") == [None]  # the title stays with the session
    repo.delete_session("alice", "trip")
    assert found(repo, "rail") == []


def test_deleted_users_and_pruned_sessions_are_not_found(repo: SessionRepository,
                                                         trip: Session) -> None:
    old = repo.create_session("bob")
    old.add_items(["rome"])
    repo.prune(keep_last=0, user_id="bob")
    assert found(repo, "rome", "bob") == []
    repo.delete_user("alice")
    assert found(repo, "naples") == [] and found(repo, "rail") == []
    assert repo.prune(older_than=timedelta(0)).sessions == 0  # nothing was left behind


def test_a_stale_id_reused_by_another_user_leaks_nothing(repo: SessionRepository) -> None:
    repo.create_session("alice", session_id="t", metadata={"title": "secret"}).add_items(
        ["alice secret"])
    repo.delete_session("alice", "t")
    repo.create_session("bob", session_id="t", metadata={"title": "secret"}).add_items(
        ["bob secret"])
    assert found(repo, "secret") == []
    assert sorted(found(repo, "secret", "bob"), key=str) == [None, "bob secret"]


def test_a_fork_is_searchable_on_its_own(repo: SessionRepository, trip: Session) -> None:
    branch = repo.fork_session("alice", "trip", upto=1)
    assert found(repo, "naples", session_id=branch.session_id) == [AGENT_ITEMS[0]]
    assert len(found(repo, "naples")) == 2


def test_imported_sessions_are_searchable(repo: SessionRepository) -> None:
    s = repo.create_session("alice", metadata={"title": "Moving"})
    s.add_items(["boxes and tape"])
    out = io.StringIO()
    repo.export_to(out)
    repo.delete_user("alice")
    assert found(repo, "boxes") == []
    repo.import_from(out.getvalue().splitlines(keepends=True))
    assert found(repo, "boxes") == ["boxes and tape"] and found(repo, "moving") == [None]


_WORDS = st.text(string.ascii_lowercase + "éü", min_size=3, max_size=6)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alice", "bob"]),
                          st.lists(_WORDS, min_size=1, max_size=5)), min_size=1, max_size=12),
       _WORDS)
def test_every_item_with_the_word_is_found_and_no_other(
    kind: str, items: list[tuple[str, list[str]]], word: str
) -> None:
    with fresh_repository(kind) as repo:
        sessions = {user: repo.create_session(user) for user in ("alice", "bob")}
        for user, words in items:
            sessions[user].add_items([{"role": "user", "content": " ".join(words)}])
        expected = sorted(" ".join(words) for user, words in items
                          if user == "alice" and fold(word) in {fold(w) for w in words})
        got = sorted(hit.item["content"] for hit in repo.search("alice", word, limit=None))
        assert got == expected


def test_odd_and_longest_ids_keep_users_apart(repo: SessionRepository,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # "a\tb" as an older version stored it (new ids with control characters are refused).
    monkeypatch.setattr(repository, "check_new_id", check_id)
    big = "😀" * MAX_ID_LENGTH
    users = ["Alice", "alice", "ALICE", big, big[:-1] + "x", "a b", "a\tb", "'\"; --", "u616c"]
    session_ids = {user: (f"{n}{user}")[:MAX_ID_LENGTH] for n, user in enumerate(users)}
    for user in users:
        repo.create_session(user, session_id=session_ids[user]).add_items([f"hello {user}"])
    for user in users:
        assert found(repo, "hello", user) == [f"hello {user}"]
        assert found(repo, "hello", user, session_id=session_ids[user]) == [f"hello {user}"]


def test_a_search_racing_appends_sees_whole_batches(repo: SessionRepository) -> None:
    # The index is written by the same transaction as the items: a search sees
    # a batch entirely or not at all, and never an item it cannot read back.
    s = repo.create_session("alice")
    batch = [{"content": f"zebra {n}"} for n in range(7)]
    done = threading.Event()
    seen: list[int] = []

    def search() -> None:
        while True:  # at least once, however late the thread starts
            stop = done.is_set()
            hits = repo.search("alice", "zebra", limit=None)
            assert all(hit.item in batch for hit in hits)
            seen.append(len(hits))
            if stop:
                break

    reader = threading.Thread(target=search)
    reader.start()
    try:
        for _ in range(30):
            s.add_items(batch)
    finally:
        done.set()
        reader.join()
    assert seen and all(count % 7 == 0 for count in seen)
    assert len(repo.search("alice", "zebra", limit=None)) == 210


def test_the_snippet_of_a_huge_tool_output_is_around_its_match(repo: SessionRepository) -> None:
    output = "log line " * 50_000 + "ERROR: the Zürich train was cancelled " + "tail " * 1000
    s = repo.create_session("alice")
    s.add_items([{"type": "function_call_output", "call_id": "c", "output": output}])
    [hit] = repo.search("alice", "cancel*")
    assert hit.snippet == ("… ERROR: the Zürich train was [cancelled] tail tail tail tail tail "
                           "tail tail tail tail tail …")
    assert repo.search("alice", "zurich")[0].snippet == (  # found by folding
        "… line log line ERROR: the [Zürich] train was cancelled tail tail tail tail tail tail "
        "tail …")


# -- text edges: the same answer on both backends ----------------------------------
# Items are stored as JSON text, where a NUL in a string is the escape "\u0000":
# the databases' JSON readers stop at it (SQLite) or refuse it (PostgreSQL).
# The rule (schema.sql, version 4): a NUL separates words, like a space; a
# backslash followed by "u0000" is text like any other.


@pytest.mark.parametrize(("text", "words", "snippet"), [
    ("alpha\x00beta gamma", ["beta", "alpha", "gamma", '"alpha beta gamma"'],
     "alpha [beta] gamma"),
    ("\x00beta\x00", ["beta"], "[beta]"),
    ("a path C:\\u0000beta", ["u0000beta", "path", '"c u0000beta"', "u0000b*"],
     "a path C:\\[u0000beta]"),
    ("x\\\\u0000 beta", ["beta", "x", "u0000"], "x\\\\u0000 [beta]"),
    ("x\\\x00beta", ["beta", "x", '"x beta"'], "x\\ [beta]"),
])
def test_nul_and_the_text_of_its_escape_are_searched_as_the_rule_says(
    repo: SessionRepository, text: str, words: list[str], snippet: str
) -> None:
    item = {"role": "user", "content": [{"type": "input_text", "text": text}],
            "extra": ["after\x00the nul", {"deep": "x\\u0000y"}]}
    s = repo.create_session("alice")
    s.add_items([item, {"content": "decoy"}])
    for query in [*words, "after", "nul", "u0000y"]:
        assert found(repo, query) == [item], query
    assert found(repo, "alphabeta") == [] and found(repo, "afterthe") == []
    assert repo.search("alice", words[0])[0].snippet == snippet
    [hit] = repo.search("alice", "nul")
    assert hit.snippet == "after the [nul]"  # no NUL left in what a user reads


@pytest.mark.parametrize("title", ["Trip\x00to rome", "Trip C:\\u0000to rome"])
def test_a_title_with_nul_or_its_escape_is_searched_by_the_same_rule(
    repo: SessionRepository, title: str
) -> None:
    s = repo.create_session("alice", metadata={"title": title, "k\x00": "v"})
    s.add_items(["decoy"])
    assert found(repo, "rome") == [None] and found(repo, "trip") == [None]
    word = "to" if "\x00" in title else "u0000to"
    assert found(repo, word) == [None] and found(repo, "triptom") == []
    assert repo.search("alice", "rome")[0].snippet == title.replace("\x00", " ").replace(
        "rome", "[rome]")
    repo.update_metadata("alice", s.session_id, {"title": "Later\x00title"})
    assert found(repo, "title") == [None] and found(repo, "rome") == []


def test_a_lone_surrogate_separates_words_and_a_pair_is_its_character(
    repo: SessionRepository
) -> None:
    # Python writes a str's lone surrogate as an escape ("\\ud800") that
    # PostgreSQL's jsonb refuses: the item was left out of its index whole.
    items = [{"content": "x\ud800rome"}, {"content": "a\udc00\ud800b naples"},
             {"content": "c\U0001f600d \ud800\U0001f600z"}]
    s = repo.create_session("alice", metadata={"title": "t\udc00trip"})
    s.add_items(items)
    for query, hits in [("rome", [items[0]]), ("x", [items[0]]), ("xrome", []),
                        ("a", [items[1]]), ("b", [items[1]]), ("naples", [items[1]]),
                        ("d", [items[2]]), ("cd", []), ("z", [items[2]]),
                        ("trip", [None]), ("ttrip", [])]:
        assert found(repo, query) == hits, query


# Pieces of text at the edges: NUL, backslashes, the text of a NUL's escape,
# lone surrogates (never a high one right before a low one: JSON would read
# the two as one character), an emoji, an accent.
_EDGY = st.lists(st.sampled_from([
    "ab", "cd", "\x00", "\\", "u0000", "\\u0000", "\\\\u0000", "\ud800", " \udc00", " ",
    "é", "\U0001f600"]), max_size=12).map("".join)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None)
@given(st.lists(_EDGY, min_size=1, max_size=6),
       st.sampled_from(["ab", "cd", "u0000", "abcd", "u0000cd", "cdu0000", "e", "eab"]))
def test_every_edgy_text_with_the_word_is_found_and_no_other(
    kind: str, texts: list[str], word: str
) -> None:
    # The rule of sessions_dal._search, in Python: NUL and every other
    # character but letters and digits separate words.
    with fresh_repository(kind) as repo:
        repo.create_session("alice").add_items([{"content": text} for text in texts])
        expected = sorted(text for text in texts if fold(word) in {
            fold(w) for w in split_words(text.replace("\x00", " "))})
        got = sorted(hit.item["content"] for hit in repo.search("alice", word, limit=None))
        assert got == expected


def test_a_query_word_longer_than_the_limit_is_a_value_error(repo: SessionRepository) -> None:
    repo.create_session("alice").add_items(["rome", "naples"])
    longest = "a" * MAX_WORD_LENGTH
    assert found(repo, longest) == []
    for word in ["a" * (MAX_WORD_LENGTH + 1), "東" * 700, "\ufdfa" * 60 + "x" * 500]:
        # 700 CJK letters: 2,100 bytes, past PostgreSQL's lexeme limit, which
        # dropped the word and found every item the user has.
        with pytest.raises(ValueError, match=f"query.*{MAX_WORD_LENGTH}"):
            repo.search("alice", f"rome {word}*")
        with pytest.raises(ValueError, match=f"query.*{MAX_WORD_LENGTH}"):
            repo.search("alice", f'"{word} rome"')
    # The limit is on the words compared, after folding: "ﷺ" is one letter
    # that folds to four words, none longer than 4 letters.
    assert found(repo, "\ufdfa" * 120) == []


def test_words_longer_than_a_query_word_are_found_by_their_start(
    repo: SessionRepository
) -> None:
    long_ascii, long_cjk = "b" * 3000, "東" * 1000  # 3,000 bytes each
    exact = "c" * MAX_WORD_LENGTH
    items = [{"content": f"x {long_ascii} y"}, {"content": f"{long_cjk} z"},
             {"content": f"{exact} w"}]
    repo.create_session("alice", metadata={"title": "t " + long_ascii}).add_items(
        [*items, "b", "東"])
    start = MAX_WORD_LENGTH
    assert sorted(map(str, found(repo, long_ascii[:start] + "*"))) == ["None", str(items[0])]
    assert found(repo, f'"x {long_ascii[:start]}*"') == [items[0]]
    assert found(repo, long_cjk[:start] + "*") == [items[1]]
    assert found(repo, long_ascii[:start]) == [] and found(repo, long_cjk[:start]) == []
    assert found(repo, exact) == [items[2]] and found(repo, exact + "*") == [items[2]]
    assert found(repo, "y") == [items[0]] and found(repo, "z") == [items[1]]


def test_ties_come_newest_first_items_before_titles(repo: SessionRepository,
                                                    backend: Backend) -> None:
    # Equal scores: the same text everywhere. Several of each, so that either
    # direction of either order would show.
    titled = [repo.create_session("u", metadata={"title": "zebra"}) for _ in range(3)]
    for session in titled:
        session.add_items(["zebra"])
    newest_first = [s.session_id for s in reversed(titled)]
    expected = [(sid, "zebra") for sid in newest_first] + [(sid, None) for sid in newest_first]
    searchers = [repo]
    if backend.has_file:  # first read-only: the items from its temporary index
        searchers.insert(0, backend.open(read_only=True))
    for searcher in searchers:
        hits = searcher.search("u", "zebra", limit=None)
        assert [(h.session.session_id, h.item) for h in hits] == expected
        assert [h.session.session_id for h in searcher.search("u", "zebra", limit=2)] == (
            newest_first[:2])
    if backend.has_file:
        searchers[0].close()
