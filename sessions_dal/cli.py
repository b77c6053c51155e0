"""The ``sessions-dal`` command line: inspect and manage a sessions database.

Run ``sessions-dal --help`` (or ``python -m sessions_dal --help``). Errors are
one line on stderr and exit code 1; usage errors exit with 2. Commands that
only look (``info``, ``users``, ``sessions``, ``show``, ``unowned``,
``export``, ``check``, and ``grant`` without ``--apply``) open the database
read-only: they never write to it, never migrate it and never create it.

Adding a command is one function: ``@command(name, summary, arg(...), ...)``
declares it and its arguments (``--help`` lists the commands in the order of
this file), and it returns an ``Output`` (what ``--json`` prints, and the text
for people), which ``_answer`` prints.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import logging
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, Protocol, TextIO

from . import __version__
from ._files import is_database_file, publish, temporary_beside
from ._interrupts import COMMITTED_NOTE, CommitsSeen, add_note
from ._search import cut
from ._validate import ORDERS, encode_json
from ._view import UNSAFE, format_item, safe, when
from .backends import is_url
from .backends._migrations import PROGRESS
from .errors import Remedy, SessionNotFoundError, SessionsDalError
from .repository import (
    DEFAULT_MESSAGES_TABLE,
    DEFAULT_SESSIONS_TABLE,
    PruneReport,
    SearchHit,
    SessionRepository,
    is_connection_string,
)
from .session import Session, Size
from .transfer import TransferCounts, export_jsonl, import_jsonl

__all__ = ["main"]

DEFAULT_DB = "sessions.db"
ENV_DB = "SESSIONS_DAL_DB"


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help(sys.stderr)  # a first try without arguments: what there is to do
        return 2
    args = parser.parse_args(argv)
    # psycopg_pool logs a warning for each connection it discards (after a
    # server restart, an interrupt): the command's own message says enough.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to answer
        _error("standard output is closed; run the command with somewhere to print to")
        return 1
    # Whether a write committed, for an interrupt that lands after it returned.
    with CommitsSeen() as changed:
        try:
            run: Handler = args.run
            return _answer(args, run(args))  # printing too can meet a closed pipe or a Ctrl-C
        except BrokenPipeError:
            # The reader left early (`sessions-dal export | head`): not an error. Point
            # stdout at devnull so the interpreter's final flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # 128 + SIGPIPE, as a shell reports a tool killed by it
        except KeyboardInterrupt as exc:
            notes = getattr(exc, "__notes__", ())
            done = [note for note in notes if note.startswith(_PARTLY_DONE)]
            # changed: the write call had returned (the interrupt came as the
            # command counted, printed or closed the database)
            if done:
                _error("interrupted; " + done[0].removeprefix("sessions_dal: "))
            elif COMMITTED_NOTE in notes or changed.committed:
                _error("interrupted after the change was committed: it is in the database")
            elif getattr(args, "opening", changed).committed and _still_there(_path(args)):
                print("sessions-dal: interrupted before the change was made (opening set the "
                      "database up or upgraded its schema; that stays)", file=sys.stderr)
            else:
                print("sessions-dal: interrupted; nothing was changed", file=sys.stderr)
            return 130
        except (CommandError, SessionsDalError, ValueError, TypeError, OSError) as exc:
            _error(_in_cli_words(exc))
            return 1
        except ImportError as exc:  # an optional extra not installed (psycopg): says what to do
            _error(str(exc))
            return 1
        except Exception as exc:  # a bug of ours: still one line, never a traceback
            _error(f"unexpected {type(exc).__name__}: {exc} (please report this)")
            return 1


# Notes of calls that commit a batch at a time: what an interrupt left done.
_PARTLY_DONE = ("sessions_dal: prune had ", "sessions_dal: reindex had ")

# The library's remedies name Python calls; the command line's user needs commands.
_REMEDIES = {
    Remedy.NEW_OR_EXISTING: "omit it to get a new uuid4",
    Remedy.LIST_UNOWNED: "list them with 'sessions-dal unowned'",
    Remedy.LIST_SESSIONS: "list them with 'sessions-dal sessions USER'",
    Remedy.OPEN_READ_ONLY: "make it writable to change it (info, show, search and export "
                           "only read it)",
    Remedy.IMPORT_REPLACE: "to overwrite it, pass --replace",
    Remedy.IMPORT_WITHOUT_END: "an export from sessions_dal 0.1 has no such record: pass "
                               "--no-end-record",
}


def _in_cli_words(exc: BaseException) -> str:
    if isinstance(exc, SessionsDalError) and exc.remedy in _REMEDIES:
        return f"{exc.problem}; {_REMEDIES[exc.remedy]}"
    return str(exc)


def _error(message: str) -> None:
    # One line, whatever the message quotes from the data.
    if sys.stderr is not None:
        print(f"sessions-dal: error: {safe(message)}", file=sys.stderr)


# -- declaring commands --------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """A command's answer: ``value`` is what ``--json`` prints, ``text`` the lines
    printed otherwise (escaped with ``safe`` already; a generator runs only if
    wanted), ``status`` the exit code."""

    value: object
    text: Iterable[str]
    status: int = 0
    file: TextIO | None = None  # None: standard output (whatever it is when printed)
    one_line: bool = False  # JSON on one line: a summary beside other output, as in a log


Handler = Callable[[argparse.Namespace], Output | int]
"""A command: an ``Output`` to print, or the exit code of one that printed itself."""

class _Arguments(Protocol):
    """A parser, or a group of its arguments: what takes an argument."""

    def add_argument(self, *names: str, **options: Any) -> argparse.Action: ...
    def add_mutually_exclusive_group(self, *, required: bool = False) -> Any: ...


Argument = Callable[[_Arguments], object]
"""Adds one of a command's arguments (or a group of them) to its parser."""


def arg(*names: str, **options: Any) -> Argument:
    """One argument of a command, in ``ArgumentParser.add_argument``'s words."""
    return lambda parser: parser.add_argument(*names, **options)


def one_of(*arguments: Argument) -> Argument:
    """Arguments that exclude each other (a mutually exclusive group)."""
    def add(parser: _Arguments) -> None:
        group = parser.add_mutually_exclusive_group()
        for argument in arguments:
            argument(group)
    return add


@dataclass(frozen=True)
class _Command:
    name: str
    summary: str
    run: Handler
    arguments: tuple[Argument, ...]


_COMMANDS: list[_Command] = []  # as declared below: the order --help lists them in


def command(name: str, summary: str, *arguments: Argument) -> Callable[[Handler], Handler]:
    """Declare the decorated function the command ``name``, with its ``arguments``;
    ``summary`` is its line in ``--help``."""
    def register(run: Handler) -> Handler:
        _COMMANDS.append(_Command(name, summary, run, arguments))
        return run
    return register


class _Parser(argparse.ArgumentParser):
    """argparse, with the text it quotes from the command line escaped in its errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        # A mistyped command: the nearest one (Python 3.14's argparse does so
        # itself, in other words; the 3.10-3.13 ones do not).
        typo = re.match(r"argument COMMAND: invalid choice: '([^']*)' \(choose from (.*)\)$",
                        message)
        if typo and "maybe you meant" not in message:
            choices = re.findall(r"'([^']*)'", typo.group(2))
            nearest = difflib.get_close_matches(typo.group(1), choices, n=1)
            if nearest:
                message = f"unknown command {typo.group(1)!r}: did you mean {nearest[0]!r}?"
        self.exit(2, f"{self.prog}: error: {safe(message)}\n")


def _parser() -> argparse.ArgumentParser:
    # --db, --json and the table names are accepted before or after the command name.
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", metavar="PATH", type=_db_path, default=argparse.SUPPRESS,
        help=f"SQLite file or postgresql:// URL (default: ${ENV_DB}, else ./{DEFAULT_DB})",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for machines instead of tables")
    common.add_argument("--sessions-table", metavar="NAME", default=argparse.SUPPRESS,
                        help="openai-agents' sessions table, if SQLiteSession was given "
                             f"another name (default: {DEFAULT_SESSIONS_TABLE})")
    common.add_argument("--messages-table", metavar="NAME", default=argparse.SUPPRESS,
                        help=f"likewise its messages table (default: {DEFAULT_MESSAGES_TABLE})")
    parser = _Parser(
        prog="sessions-dal", parents=[common],
        description="Inspect and manage an AI-agent sessions database (sessions_dal).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for declared in _COMMANDS:
        sub = commands.add_parser(declared.name, parents=[common], help=declared.summary,
                                  description=declared.summary)
        # usage(message): exit 2, as argparse does for what it checks itself
        sub.set_defaults(run=declared.run, usage=sub.error)
        for argument in declared.arguments:
            argument(sub)
    return parser


# -- argument types ------------------------------------------------------------


def _db_path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (omit --db for the default)")
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"title\": \"Trip\"}'")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _age(text: str) -> timedelta | datetime:
    """``--older-than``: a number and a unit (90d), or an ISO 8601 time."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    try:
        if match:
            age = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
            if age > datetime.now(timezone.utc) - datetime.min.replace(tzinfo=timezone.utc):
                raise OverflowError  # reaches back past year 1
            return age
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"expected an age such as 90d, 12h, 30m or 2w, or an ISO 8601 time, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# Arguments several commands take alike.
_USER = arg("user", metavar="USER")
_SESSION_ID = arg("session_id", metavar="SESSION_ID")
_YES = arg("--yes", action="store_true", help="do not ask for confirmation")
_PAGE = (arg("--limit", type=_count, default=None, metavar="N",
             help="at most N sessions (default: all)"),
         arg("--offset", type=_count, default=0, metavar="N", help="skip the N newest first"))


# -- opening -------------------------------------------------------------------


def _path(args: argparse.Namespace) -> str:
    path = getattr(args, "db", None)
    if path is not None:
        return str(path)
    from_env = os.environ.get(ENV_DB)
    if from_env is None:
        return DEFAULT_DB
    if not from_env:
        raise CommandError(f"${ENV_DB} is set but empty; unset it or name a database file")
    return from_env


def _open(args: argparse.Namespace, *, create: bool = False, read_only: bool = False,
          counted: bool = False) -> SessionRepository:
    """Open the database; ``counted``: its set-up or upgrade is the command's change
    (``migrate``), not a step before it (see :func:`main`'s interrupt message)."""
    path = _path(args)
    if not create and _is_file(path) and not os.path.exists(path):
        raise CommandError(
            f"no database at {path!r} (nothing was created); "
            f"pass --db PATH or set {ENV_DB}"
        )
    opening = CommitsSeen(apart=not counted)
    args.opening = opening.token  # read by main() after an interrupt, even one in here
    with opening:
        return SessionRepository(
            path, read_only=read_only and path != ":memory:",
            sessions_table=getattr(args, "sessions_table", DEFAULT_SESSIONS_TABLE),
            messages_table=getattr(args, "messages_table", DEFAULT_MESSAGES_TABLE),
        )


def _still_there(path: str) -> bool:
    """Whether a database opened for the command is still there (an import removes
    the file it created for nothing)."""
    return not _is_file(path) or os.path.exists(path)


def _is_file(path: str) -> bool:
    """An SQLite file's path: not ``:memory:``, not a URL a backend registered
    (nor a mistyped one, nor a libpq "key=value" string)."""
    return path != ":memory:" and not is_url(path) and not is_connection_string(path)


def _look(args: argparse.Namespace) -> SessionRepository:
    """Open for a command that only reads: read-only, never created."""
    return _open(args, read_only=True)


# -- output --------------------------------------------------------------------


def _answer(args: argparse.Namespace, result: Output | int) -> int:
    """Print a command's ``Output`` (its value as JSON with ``--json``, else its text);
    return the exit code."""
    if isinstance(result, int):  # a command that printed what it had to say itself
        return result
    if getattr(args, "json", False):
        _print_json(result.value, file=result.file, one_line=result.one_line)
    else:
        for line in result.text:
            print(line, file=result.file)
    return result.status


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _print_json(value: Any, *, file: TextIO | None = None, one_line: bool = False) -> None:
    text = json.dumps(_finite(value), default=_json_default, ensure_ascii=False,
                      indent=None if one_line else 2)
    # Escapes inside JSON strings are still JSON; the layout's newlines stay.
    print(UNSAFE.sub(lambda m: "\n" if m.group() == "\n" else _json_escape(m), text),
          file=file)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (openai-agents may store them) as strings.

    JSON has no such numbers; Python's ``NaN`` token would make the output
    unreadable to other JSON parsers.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {key: _finite(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_finite(child) for child in value]
    return value


def _json_default(value: datetime) -> str:
    # Items and metadata are JSON already: the times of sessions are all that is left.
    return value.isoformat()


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str
           ) -> Iterator[str]:
    """``rows`` under ``headers`` in aligned columns; the line ``empty`` if there are none."""
    if not rows:
        yield safe(empty)
        return
    cells = [[safe(str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        yield "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()


def _text(value: Any) -> str:
    return safe(json.dumps(value, ensure_ascii=False))


def _short(value: Any, width: int = 48) -> str:
    return cut(_text(value), width)


def _session_json(session: Session, items: int) -> dict[str, Any]:
    return {**session.to_dict(), "items": items}


def _end_progress_line() -> None:
    if sys.stderr.isatty():  # where the progress was shown, rewritten in place
        print(file=sys.stderr)


def _confirm(question: str, what: str) -> bool:
    """Ask on a terminal whether to delete ``what``; without one, refuse (``--yes``
    skips this)."""
    if not sys.stdin.isatty():
        raise CommandError(
            f"refusing to delete {what} without confirmation (standard input is not a "
            "terminal); pass --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # Ctrl-D: no answer is a no
        answer = ""
        print()
    return answer.strip().lower() in ("y", "yes")


def _declined() -> int:
    # The reply to a question on the terminal, in words with --json too.
    print("nothing deleted")
    return 1


# -- commands, in the order --help lists them ----------------------------------


@command("info", "show the path, backend, schema version, counts and settings")
def _info(args: argparse.Namespace) -> Output:
    with _look(args) as repo:
        info = asdict(repo.info())
    return Output(info, _info_text(info))


def _info_text(info: dict[str, Any]) -> Iterator[str]:
    facts: dict[str, Any] = {}
    for key, value in info.items():
        if key == "read_only":  # always true here (inspection opens read-only): in its
            facts.update(info["details"])  # place, the backend's own facts
        elif key != "details":
            facts[key] = value
    for key, value in facts.items():
        yield f"{key.replace('_', ' ') + ':':<20}{safe(str(value))}"
    if info["schema_version"] == 0:
        yield ("note: sessions_dal has not set this database up yet; "
               "'sessions-dal migrate' does (opening it read-write does too)")
    elif info["migration_pending"]:
        yield "note: this database needs an upgrade; run 'sessions-dal migrate'"


@command("users", "list users with their session counts")
def _users(args: argparse.Namespace) -> Output:
    with _look(args) as repo:
        users = repo.get_users()
    return Output([asdict(u) for u in users],
                  _table(["USER", "SESSIONS", "CREATED (UTC)"],
                         [[u.user_id, u.sessions, when(u.created_at)] for u in users],
                         "(no users)"))


@command("sessions", "list a user's sessions, newest first (or last active first)",
         _USER,
         arg("--sort", choices=ORDERS, default="created",
             help="created: newest first (default); updated: last active first"),
         *_PAGE)
def _sessions(args: argparse.Namespace) -> Output:
    with _look(args) as repo:
        page = repo.get_sessions(args.user, limit=args.limit, offset=args.offset,
                                 order=args.sort)
        return _session_list(page, f"(no sessions for user {args.user!r})")


def _session_list(page: list[Session], empty: str) -> Output:
    rows = [(s, s.count_items()) for s in page]  # while the database is open
    return Output([_session_json(s, n) for s, n in rows],
                  _table(["SESSION_ID", "CREATED (UTC)", "UPDATED (UTC)", "ITEMS", "METADATA"],
                         [[s.session_id, when(s.created_at), when(s.updated_at), n,
                           _short(s.metadata)] for s, n in rows],
                         empty))


SHOW_LATEST = 20
"""How many items ``show`` prints unless told otherwise: a screenful."""


@command("show", "show a session and its latest items, one line each",
         _SESSION_ID,
         arg("--user", metavar="USER", help="only if the session belongs to USER"),
         one_of(arg("--limit", type=_count, default=None, metavar="N",
                    help=f"how many items, the latest (default {SHOW_LATEST})"),
                arg("--all", action="store_true",
                    help="every item, from the first (with --offset: all before those)")),
         arg("--offset", type=_count, default=0, metavar="N",
             help="scroll back: skip the latest N items"),
         arg("--history", action="store_true",
             help="every item ever added, compacted ones included, with the "
                  "boundaries of each compaction (not the replacements)"))
def _show(args: argparse.Namespace) -> Output:
    limit = None if args.all else SHOW_LATEST if args.limit is None else args.limit
    with _look(args) as repo:
        if args.user is None:
            session = repo.find_session(args.session_id)
        else:
            session = repo.get_session(args.user, args.session_id)
        if session is None:
            owner = "" if args.user is None else f" for user {args.user!r}"
            raise CommandError(f"no session {args.session_id!r}{owner}")
        if args.history:
            if args.limit is not None or args.all or args.offset:
                args.usage("--history shows the whole transcript: no --limit, --all or "
                           "--offset")
            history = list(session.iter_history(with_layers=True))
            total = session.count_items()
            return Output({**_session_json(session, total), "history": [
                {"layer": layer, "item": item} for layer, item in history]},
                _history_text(session, total, history))
        total = session.count_items()
        items = session.get_items(limit, offset=args.offset)
    # Numbered from the oldest; counted before the read, so a write in between
    # can only make the numbers of this page start later, never overlap.
    first = max(total - args.offset - len(items), 0) + 1
    return Output({**_session_json(session, total), "offset": args.offset,
                   "first_shown": first if items else None, "items_shown": items},
                  _show_text(session, total, items, first, args.offset))


def _show_text(session: Session, total: int, items: list[Any], first: int, offset: int
               ) -> Iterator[str]:
    yield f"session:  {safe(session.session_id)}"
    yield f"user:     {safe(str(session.user_id))}"
    yield f"created:  {when(session.created_at)} UTC"
    yield f"updated:  {when(session.updated_at)} UTC"
    yield f"metadata: {_text(session.metadata)}"
    yield f"items:    {total}"
    earlier = first - 1
    if earlier > 0 and items:
        back = offset + len(items)
        yield (f"  ... {earlier} earlier item{'s' if earlier != 1 else ''} "
               f"(--offset {back} to scroll back, --all for every item)")
    elif offset and not items:
        yield f"  (no items before the latest {offset})"
    for number, item in enumerate(items, start=first):
        yield f"  {number:>4}  {format_item(item)}"


def _history_text(session: Session, total: int, history: list[tuple[int | None, Any]]
                  ) -> Iterator[str]:
    yield from itertools.islice(_show_text(session, total, [], 1, 0), 6)
    yield f"history:  {len(history)} item{'s' if len(history) != 1 else ''}"
    shown: object = 0
    for number, (layer, item) in enumerate(history, start=1):
        if layer != shown:
            yield ("  --- in the model's view ---" if layer is None else
                   f"  --- compacted by compaction {layer} ---")
            shown = layer
        yield f"  {number:>4}  {format_item(item)}"


@command("search",
         "search a user's conversations, compacted history included: words, \"quoted "
         "phrases\", prefix*; best match first, one line each (session id, 'title: ' or "
         "'compacted (layer N): ' for a title's or a compacted item's hit, then the text "
         "around the match, matched words in [brackets])",
         _USER,
         arg("query", metavar="QUERY"),
         arg("--session", metavar="SESSION_ID", default=None,
             help="only in this session of the user's"),
         arg("--limit", type=_count, default=20, metavar="N",
             help="at most N results (default 20)"))
def _search(args: argparse.Namespace) -> Output:
    # Indexing what was written since the last search can take a while on a
    # big database: said on a terminal's stderr (stdout stays the results).
    progress = _migration_progress() if sys.stderr.isatty() else None
    with _look(args) as repo:
        hits = repo.search(args.user, args.query, limit=args.limit, session_id=args.session,
                           progress=progress)
    return Output([{"session_id": hit.session.session_id, "title": hit.item is None,
                    "item": hit.item, "snippet": hit.snippet, "layer": hit.layer}
                   for hit in hits],
                  [f"{safe(hit.session.session_id)}  {_where(hit)}{safe(hit.snippet)}"
                   for hit in hits] or ["no matches"])


def _where(hit: SearchHit) -> str:
    if hit.item is None:
        return "title: "
    return "" if hit.layer is None else f"compacted (layer {hit.layer}): "


@command("create", "create a session for a user; print its id",
         _USER,
         arg("--metadata", type=_json_object, default=None, metavar="JSON",
             help='e.g. \'{"title": "Trip"}\''))
def _create(args: argparse.Namespace) -> Output:
    with _open(args, create=True) as repo:
        session = repo.create_session(args.user, metadata=args.metadata)
    return Output(_session_json(session, 0), [safe(session.session_id)])


@command("add",
         "append items to one of a user's sessions, in one transaction; each ITEM is a JSON "
         "value, or give '-' to read one per line from stdin",
         _USER,
         _SESSION_ID,
         arg("items", nargs="+", metavar="ITEM",
             help='e.g. \'{"role": "user", "content": "hi"}\''))
def _add(args: argparse.Namespace) -> Output:
    if args.items == ["-"]:
        if sys.stdin is None:
            raise CommandError("standard input is closed: pipe the items in, one per line")
        texts = [(f"line {n}", line) for n, line in enumerate(sys.stdin, start=1)
                 if line.strip()]
    elif "-" in args.items:
        raise CommandError("'-' reads the items from stdin: give it alone, not with items")
    else:
        texts = [(f"ITEM {n}", text) for n, text in enumerate(args.items, start=1)]
    items = []
    for where, text in texts:
        if _UNDECODED.search(text):  # bytes that were not UTF-8, kept as surrogates
            raise CommandError(f"{where} is not UTF-8 text; nothing was added")
        try:
            item = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"{where} is not valid JSON ({exc}); nothing was added "
                               """(quote each item: '{"role": "user", "content": "hi"}')"""
                               ) from None
        encode_json(f"{where}: item", item)  # its error names the line, not a list index
        items.append(item)
    with _open(args) as repo:
        session = repo.get_session(args.user, args.session_id)
        if session is None:
            raise CommandError(f"user {args.user!r} has no session {args.session_id!r}; "
                               "list them with 'sessions-dal sessions USER'")
        session.add_items(items)
        total = session.count_items()
    return Output({"session_id": session.session_id, "added": len(items), "items": total},
                  [f"added {len(items)} item{'s' if len(items) != 1 else ''} "
                   f"(the session has {total})"])


# Python decodes stdin and argv with surrogateescape: a byte that is not
# UTF-8 becomes one of these lone surrogates (JSON's own \udcxx escapes are
# still six ASCII characters here).
_UNDECODED = re.compile("[\udc80-\udcff]")


@command("fork",
         "branch a session: a new one of the same user with a copy of its first items; "
         "print its id. Its metadata is --metadata (not the original's) plus forked_from: "
         "the original's id and how many items were copied",
         _USER,
         _SESSION_ID,
         arg("--upto", type=_count, default=None, metavar="N",
             help="copy only the first N items (default: all)"),
         arg("--metadata", type=_json_object, default=None, metavar="JSON",
             help='the new session\'s metadata, e.g. \'{"title": "Trip (train)"}\''))
def _fork(args: argparse.Namespace) -> Output:
    with _open(args) as repo:
        try:
            branch = repo.fork_session(args.user, args.session_id, upto=args.upto,
                                       metadata=args.metadata)
        except SessionNotFoundError:
            raise CommandError(
                f"user {args.user!r} has no session {args.session_id!r}; nothing was created"
            ) from None
    return Output(_session_json(branch, branch.metadata["forked_from"]["items"]),
                  [safe(branch.session_id)])


@command("delete", "delete one of a user's sessions and its items", _USER, _SESSION_ID)
def _delete(args: argparse.Namespace) -> Output:
    with _open(args) as repo:
        deleted = repo.delete_session(args.user, args.session_id)
    if not deleted:
        raise CommandError(
            f"user {args.user!r} has no session {args.session_id!r}; nothing was deleted"
        )
    return Output({"deleted": True, "user_id": args.user, "session_id": args.session_id},
                  [f"deleted session {safe(args.session_id)}"])


@command("delete-user",
         "erase a user with all their sessions and items (asks first on a terminal)",
         _USER,
         _YES)
def _delete_user(args: argparse.Namespace) -> Output | int:
    with _open(args) as repo:
        if not args.yes:
            sessions = repo.count_sessions(args.user)
            if not _confirm(f"Delete user {safe(repr(args.user))} and their {sessions} "
                            "session(s) with all items?",
                            f"user {args.user!r} ({sessions} session(s))"):
                return _declined()
        report = repo.delete_user(args.user)
    if not report.found:
        raise CommandError(f"no user {args.user!r}; nothing was deleted")
    return Output(asdict(report), [f"deleted user {safe(args.user)}: {report.sessions} "
                                   f"session(s), {report.items} item(s)"])


@command("prune",
         "delete sessions not active lately, or all but each user's latest (asks first on a "
         "terminal)",
         arg("--older-than", type=_age, default=None, metavar="AGE",
             help="last active before AGE ago (90d, 12h, 30m, 2w) or before an ISO 8601 time "
                  "(UTC unless it says otherwise)"),
         arg("--keep-last", type=_count, default=None, metavar="N",
             help="keep only each user's N most recently active sessions"),
         arg("--user", metavar="USER", help="only USER's sessions"),
         arg("--unowned", action="store_true",
             help="prune the sessions no user owns instead, by openai-agents' own time (with "
                  "--older-than only)"),
         arg("--dry-run", action="store_true", help="report what would be deleted; delete nothing"),
         _YES)
def _prune(args: argparse.Namespace) -> Output | int:
    if args.older_than is None and args.keep_last is None:
        args.usage("prune needs --older-than, --keep-last or both")
    if args.unowned and (args.older_than is None or args.keep_last is not None
                         or args.user is not None):
        args.usage("--unowned prunes the sessions no user owns, by age: give --older-than "
                   "only (no --keep-last, no --user)")
    options = {"older_than": args.older_than, "keep_last": args.keep_last,
               "user_id": args.user, "unowned": args.unowned}
    with _open(args) as repo:
        planned = repo.prune(**options, dry_run=True)
        if args.dry_run:
            report = planned
        elif not planned.sessions:
            report = PruneReport(0, 0)
        else:
            if not args.yes and not _confirm(
                    f"Delete {planned.sessions} session(s) with {planned.items} item(s)?",
                    f"{planned.sessions} session(s)"):
                return _declined()
            terminal = sys.stderr.isatty()
            report = repo.prune(**options, progress=_prune_progress if terminal else None)
            if terminal:
                print(file=sys.stderr)  # end the progress line
    verb = "would delete" if report.dry_run else "deleted"
    return Output(asdict(report), [f"{verb} {report.sessions} session(s), {report.items} item(s)"])


def _prune_progress(done: int, total: int) -> None:
    print(f"\rdeleted {done} of {total} sessions", end="", file=sys.stderr, flush=True)


@command("unowned", "list sessions openai-agents wrote that no user owns, newest first",
         *_PAGE)
def _unowned(args: argparse.Namespace) -> Output:
    with _look(args) as repo:
        page = repo.get_unowned_sessions(limit=args.limit, offset=args.offset)
        return _session_list(page, "(no unowned sessions)")


@command("claim", "give unowned sessions an owner (all of them or none)",
         _USER,
         arg("session_ids", nargs="+", metavar="SESSION_ID"))
def _claim(args: argparse.Namespace) -> Output:
    with _open(args) as repo:
        claimed = [(s, s.count_items()) for s in repo.claim_sessions(args.user, args.session_ids)]
    return Output([_session_json(s, n) for s, n in claimed],
                  [f"user {safe(args.user)} now owns {len(claimed)} session(s)"])


@command("delete-unowned", "delete an unowned session and its items", _SESSION_ID)
def _delete_unowned(args: argparse.Namespace) -> Output:
    with _open(args) as repo:
        if not repo.delete_unowned_session(args.session_id):
            owner = repo.find_session(args.session_id)
            why = "no such session" if owner is None else (
                f"it belongs to user {owner.user_id!r}; use 'delete USER SESSION_ID'")
            raise CommandError(
                f"no unowned session {args.session_id!r} ({why}); nothing was deleted")
    return Output({"deleted": True, "user_id": None, "session_id": args.session_id},
                  [f"deleted unowned session {safe(args.session_id)}"])


@command("export", "write users, sessions and items as JSON Lines",
         arg("--user", metavar="USER", help="only this user's data"),
         arg("-o", "--output", metavar="FILE",
             help="write to FILE ('-' or omitted: standard output)"),
         arg("--force", action="store_true", help="overwrite FILE if it exists"))
def _export(args: argparse.Namespace) -> Output:
    output = args.output
    if output is not None and output != "-":
        _check_output(output, _path(args), force=args.force)
    with _look(args) as repo:
        if output is None or output == "-":
            counts = export_jsonl(repo, sys.stdout, user_id=args.user,
                                  progress=_progress("exported"))
        else:
            counts = _export_to_file(repo, output, args.user, force=args.force)
    _end_progress_line()
    return _summary("exported", counts, sys.stderr)  # stdout may be the export itself


def _progress(verb: str) -> Callable[[TransferCounts], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(counts: TransferCounts) -> None:
        print(f"\r{verb} {counts.sessions} sessions, {counts.items} items",
              end="", file=sys.stderr, flush=True)

    return show


def _summary(verb: str, counts: TransferCounts, file: TextIO) -> Output:
    value = asdict(counts)
    history = ""
    if counts.history:
        history = f", {counts.history} item(s) of compacted history"
    else:
        del value["history"]  # a database that never compacted: 0.2's summary
    return Output({verb: value},
                  [f"{verb} {counts.users} user(s), {counts.sessions} session(s), "
                   f"{counts.items} item(s){history}"],
                  file=file, one_line=True)


def _is_stream(output: str) -> bool:
    """``/dev/stdout``, ``/dev/fd/N`` and the like: an open stream, not a file to replace."""
    return (output in ("/dev/stdout", "/dev/stderr") or output.startswith(("/dev/fd/", "/proc/"))
            or os.path.realpath(output).startswith("/proc/"))


def _check_output(output: str, database: str, *, force: bool) -> None:
    """Refuse an output path that would destroy something: the database, or a file."""
    if not output:
        raise CommandError("-o needs a file name ('-' for standard output)")
    if _is_file(database) and is_database_file(output, database):
        raise CommandError(
            f"refusing to export to {output!r}: it is the database itself (or one of "
            "its -wal/-shm/-journal files); choose another file"
        )
    try:
        mode = os.stat(output).st_mode  # a symlink is written through: judge its target
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise CommandError(f"refusing to export to {output!r}: it is a directory")
    if stat.S_ISREG(mode) and not _is_stream(output):
        if not force:
            raise CommandError(
                f"refusing to overwrite {output!r}: it exists; pass --force to replace it"
            )
    elif not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or _is_stream(output)):
        raise CommandError(
            f"refusing to export to {output!r}: it is not a regular file, a pipe or a "
            "terminal; choose a file"
        )


def _export_to_file(repo: SessionRepository, output: str, user: str | None, *, force: bool
                    ) -> TransferCounts:
    try:
        mode: int | None = os.stat(output).st_mode
    except FileNotFoundError:
        mode = None
    progress = _progress("exported")
    try:
        if mode is not None and (not stat.S_ISREG(mode) or _is_stream(output)):
            # A pipe, a device or an open stream (/dev/stdout): written into as
            # it is, appending (a shell's `>>` must keep what came before).
            with open(output, "a", encoding="utf-8") as out:
                return export_jsonl(repo, out, user_id=user, progress=progress)
        # Written beside the target, then moved into place: a failed export
        # leaves no half file, and what was there before stays until the end.
        target = os.path.realpath(output)
        with temporary_beside(target, ".sessions-export-") as temporary:
            with open(temporary, "w", encoding="utf-8") as out:
                counts = export_jsonl(repo, out, user_id=user, progress=progress)
            keep = None if mode is None else stat.S_IMODE(mode)
            publish(temporary, target, overwrite=force, mode=keep)
    except FileExistsError:
        raise CommandError(
            f"refusing to overwrite {output!r}: it appeared during the export; "
            "pass --force to replace it"
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot write {output!r}: {exc.strerror or exc}") from None
    return counts


@command("import", "read JSON Lines written by export",
         arg("file", metavar="FILE", help="the file to import ('-' for stdin)"),
         arg("--replace", action="store_true",
             help="overwrite sessions that already exist instead of refusing"),
         arg("--no-end-record", action="store_true",
             help="accept a file without the closing 'end' record (exports of sessions_dal "
                  "0.1); a file cut short is then not detected"))
def _import(args: argparse.Namespace) -> Output:
    name = "standard input" if args.file == "-" else repr(args.file)
    path = _path(args)
    new = _is_file(path) and not os.path.exists(path)
    try:
        with ExitStack() as stack:
            # The input first: a missing file must not leave a database behind.
            lines = (sys.stdin if args.file == "-"
                     else stack.enter_context(open(args.file, encoding="utf-8")))
            repo = stack.enter_context(_open(args, create=True))
            counts = import_jsonl(repo, lines, replace=args.replace,
                                  require_end=not args.no_end_record,
                                  progress=_progress("imported"))
    except BaseException as exc:
        if new:
            _remove_if_empty(path)
        if isinstance(exc, UnicodeDecodeError):
            raise CommandError(
                f"{name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} is not valid "
                "UTF-8): an export is UTF-8 JSON Lines; nothing was imported"
            ) from None
        if isinstance(exc, (SessionsDalError, ValueError)):
            raise CommandError(_in_cli_words(exc)) from None
        raise
    _end_progress_line()
    return _summary("imported", counts, sys.stdout)


def _remove_if_empty(path: str) -> None:
    """Remove the database an import created for nothing (nothing was imported).

    Not if another process has it open meanwhile (its -wal and -shm stay
    while it does), nor if it holds anything.
    """
    if any(os.path.exists(path + side) for side in ("-wal", "-shm", "-journal")):
        return
    try:
        with SessionRepository(path, read_only=True) as repo:
            info = repo.info()
    except (SessionsDalError, OSError):
        return
    if info.users == info.sessions == info.unowned_sessions == info.items == 0:
        os.unlink(path)


@command("migrate", "say what upgrading the database's schema involves, then do it "
         "(in words as it goes, also with --json)",
         arg("--backup", metavar="FILE",
             help="first copy the database to FILE (a new file), online"),
         arg("--dry-run", action="store_true", help="only say what would be done"))
def _migrate(args: argparse.Namespace) -> int:
    # Told as it goes, in words with --json too: the plan is read before the
    # (long) migration starts, and each step's progress follows it.
    path = _path(args)
    if args.backup is not None and not _is_file(path):
        raise CommandError(
            "--backup copies an SQLite file; back a PostgreSQL database up with pg_dump "
            "first, then run migrate without --backup"
        )
    if args.backup is not None and (
        is_database_file(args.backup, path) or os.path.lexists(args.backup)
    ):
        raise CommandError(
            f"--backup {args.backup!r} must name a new file, not an existing one, the "
            "database or one of its -wal/-shm/-journal files"
        )
    with _look(args) as repo:
        shown = safe(repr(repo.path))  # a URL without its password
        before = repo.info().schema_version
        steps = repo.pending_migrations()
        if not steps:
            taken = " (so no backup was taken)" if args.backup is not None else ""
            print(f"{shown} is at schema version {before}, the newest this "
                  f"sessions_dal knows: nothing to do{taken}")
            return 0
        what = "not yet set up by sessions_dal" if before == 0 else f"at schema version {before}"
        print(f"{shown} is {what}; migrating will:")
        for step in steps:
            print(f"  - {step}")
        if args.dry_run:
            print("(dry run: nothing was changed)")
            return 0
        if args.backup is not None:
            repo.backup(args.backup)
            print(f"backed up to {safe(repr(args.backup))} "
                  f"({os.path.getsize(args.backup):,} bytes)")
    started = time.monotonic()
    token = PROGRESS.set(_migration_progress())
    try:
        with _open(args, counted=True) as repo:
            after = repo.info().schema_version
    finally:
        PROGRESS.reset(token)
    print(f"migrated {shown} from schema version {before} to {after} "
          f"in {time.monotonic() - started:.2f} s")
    return 0


def _migration_progress() -> Callable[[str, float], None]:
    """Report how far a long step is on stderr (stdout stays the summary).

    On a terminal, one line per step, rewritten in place (``version 3: 45%``);
    elsewhere (a log), a line at each quarter. A migration's step is named by
    its version: its title was listed before it started.
    """
    terminal = sys.stderr.isatty()
    shown: dict[str, int] = {}

    def report(step: str, fraction: float) -> None:
        label = step.split(":", 1)[0] if step.startswith("version ") else step
        percent = min(int(fraction * 100), 100)
        if not terminal:
            percent = percent // 25 * 25
        if shown.get(label, -1) >= percent or (not terminal and percent == 0):
            return
        shown[label] = percent
        if terminal:
            end = "\n" if percent == 100 else ""
            print(f"\r  {label}: {percent}%", end=end, file=sys.stderr, flush=True)
        else:
            print(f"  {label}: {percent}%", file=sys.stderr, flush=True)

    return report


@command("grant",
         "PostgreSQL: print the GRANT statements that let ROLE use the database as an app "
         "does (read and write sessions; never create or drop tables), or apply them; run by "
         "the tables' owner, after migrate",
         arg("role", metavar="ROLE"),
         arg("--apply", action="store_true",
             help="run them, in one transaction (default: only print them)"),
         arg("--read-only", action="store_true",
             help="only what reading needs (USAGE, SELECT and EXECUTE on the search "
                  "functions): for a role that opens the database read-only"))
def _grant(args: argparse.Namespace) -> Output | int:
    path = _path(args)
    if _is_file(path) or path == ":memory:":
        # One line, as for an error; exit 2: the command does not apply here.
        _error(f"{path!r} is an SQLite database, and SQLite has no roles: who may use it is "
               "decided by the file's permissions; grant is for postgresql:// URLs")
        return 2
    with (_open(args) if args.apply else _look(args)) as repo:
        statements = repo.grant(args.role, read_only=args.read_only, dry_run=not args.apply)
        shown = safe(repr(repo.path))
    text = [safe(statement) + ";" for statement in statements]
    if args.apply:
        text.append(f"-- applied in one transaction on {shown}")
    return Output({"role": args.role, "read_only": args.read_only, "applied": args.apply,
                   "statements": statements}, text)


@command("usage", "list the users and sessions that take the most room (items and bytes, "
         "the model's view and the compacted history apart), largest first; reads every "
         "item's size",
         arg("--limit", type=_count, default=10, metavar="N",
             help="how many users and sessions (default 10)"))
def _usage(args: argparse.Namespace) -> Output:
    if args.limit == 0:
        args.usage("--limit must be at least 1")
    with _look(args) as repo:
        largest = repo.largest(limit=args.limit)
    sizes = ["ITEMS", "BYTES", "HISTORY ITEMS", "HISTORY BYTES"]

    def cells(size: Size) -> list[object]:
        return [size.items, f"{size.bytes:,}", size.history_items, f"{size.history_bytes:,}"]

    return Output(asdict(largest), [
        *_table(["USER", "SESSIONS", *sizes],
                [[u.user_id, u.sessions, *cells(u.size)] for u in largest.users], "(no users)"),
        "",
        *_table(["SESSION_ID", "USER", *sizes],
                [[s.session_id, s.user_id, *cells(s.size)] for s in largest.sessions],
                "(no sessions)")])


@command("vacuum", "SQLite: give the room deletes, prunes and compactions left in the file "
         "back to the file system (rewrites the whole file; writers wait meanwhile)")
def _vacuum(args: argparse.Namespace) -> Output | int:
    if is_url(_path(args)):
        # One line, as for an error; exit 2: the command does not apply here, as grant's.
        _error("vacuum rewrites an SQLite file; on PostgreSQL autovacuum makes deleted rows' "
               "room reusable, and the tables' owner can run VACUUM FULL to give it back")
        return 2
    with _open(args) as repo:
        started = time.monotonic()
        freed = repo.vacuum()
    return Output({"freed_bytes": freed},
                  [f"vacuumed in {time.monotonic() - started:.2f} s: the file is "
                   f"{freed:,} bytes smaller"])


@command("check",
         "run integrity and foreign-key checks, and compare the search index with the items; "
         "exit 1 on any problem")
def _check(args: argparse.Namespace) -> Output:
    with _look(args) as repo:
        problems = repo.check()
    return Output({"ok": not problems, "problems": problems},
                  [safe(p) for p in problems] or ["ok"], status=1 if problems else 0)


@command("reindex", "make the search index agree with the items and titles (what check reports)")
def _reindex(args: argparse.Namespace) -> Output:
    started = time.monotonic()
    with _open(args) as repo:
        shown = safe(repr(repo.path))  # a URL without its password
        with CommitsSeen() as batches:
            try:
                repaired = repo.reindex(progress=_migration_progress())
            except KeyboardInterrupt as exc:
                if batches.committed:  # a batch at a time, each committed
                    add_note(exc, "sessions_dal: reindex had repaired part of the index "
                                  "before this; run it again to finish")
                raise
    return Output({"repaired": repaired},
                  [f"reindexed {shown} in {time.monotonic() - started:.2f} s: "
                   f"{repaired} index row(s) repaired"])
