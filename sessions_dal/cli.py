"""The ``sessions-dal`` command line: inspect and manage a sessions database.

Run ``sessions-dal --help`` (or ``python -m sessions_dal --help``). Errors are
one line on stderr and exit code 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime
from typing import Any, TextIO

from . import __version__
from .errors import SessionsDalError
from .repository import SessionRepository
from .session import Session
from .transfer import TransferCounts, export_jsonl, import_jsonl

__all__ = ["main"]

DEFAULT_DB = "sessions.db"
ENV_DB = "SESSIONS_DAL_DB"


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    try:
        command: Callable[[argparse.Namespace], int] = args.run
        return command(args)
    except BrokenPipeError:
        # The reader left early (`sessions-dal export | head`): not an error. Point
        # stdout at devnull so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a tool killed by it
    except (CommandError, SessionsDalError, ValueError, TypeError, OSError) as exc:
        print(f"sessions-dal: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sessions-dal: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    # --db and --json are accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", metavar="PATH", default=argparse.SUPPRESS,
        help=f"database file (default: ${ENV_DB}, else ./{DEFAULT_DB})",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for machines instead of tables")
    parser = argparse.ArgumentParser(
        prog="sessions-dal", parents=[common],
        description="Inspect and manage an AI-agent sessions database (sessions_dal).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str
                ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    command("info", _info, "show the path, schema version, counts and SQLite settings")
    command("users", _users, "list users with their session counts")
    sub = command("sessions", _sessions, "list a user's sessions, newest first")
    sub.add_argument("user")
    sub.add_argument("--limit", type=_count, default=None, metavar="N")
    sub.add_argument("--offset", type=_count, default=0, metavar="N")
    sub = command("show", _show, "show a session and its items")
    sub.add_argument("session_id")
    sub.add_argument("--user", help="only if the session belongs to this user")
    sub.add_argument("--limit", type=_count, default=None, metavar="N",
                     help="only the latest N items")
    sub = command("create", _create, "create a session for a user; print its id")
    sub.add_argument("user")
    sub.add_argument("--metadata", type=_json_object, default=None, metavar="JSON",
                     help='e.g. \'{"title": "Trip"}\'')
    sub = command("delete", _delete, "delete one of a user's sessions and its items")
    sub.add_argument("user")
    sub.add_argument("session_id")
    sub = command("delete-user", _delete_user, "erase a user with all their sessions and items")
    sub.add_argument("user")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub = command("export", _export, "write users, sessions and items as JSON Lines")
    sub.add_argument("--user", help="only this user")
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    sub = command("import", _import, "read JSON Lines written by export")
    sub.add_argument("file", metavar="FILE", help="the file to import ('-' for stdin)")
    sub.add_argument("--replace", action="store_true",
                     help="overwrite sessions that already exist instead of refusing")
    command("check", _check, "run integrity and foreign-key checks; exit 1 on any problem")
    return parser


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
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"title\": \"Trip\"}'")
    return value


# -- opening -------------------------------------------------------------------


def _path(args: argparse.Namespace) -> str:
    path: str = getattr(args, "db", None) or os.environ.get(ENV_DB) or DEFAULT_DB
    return path


def _open(args: argparse.Namespace, *, create: bool = False) -> SessionRepository:
    path = _path(args)
    if not create and path != ":memory:" and not os.path.exists(path):
        raise CommandError(
            f"no database at {path!r} (nothing was created); "
            f"pass --db PATH or set {ENV_DB}"
        )
    return SessionRepository(path)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2))


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, width: int = 48) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _session_json(session: Session, items: int) -> dict[str, Any]:
    return {**session.to_dict(), "items": items}


# -- commands ------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        info = asdict(repo.info())
    if _wants_json(args):
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key.replace('_', ' ') + ':':<16}{value}")
    return 0


def _users(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        users = repo.get_users()
    if _wants_json(args):
        _print_json([asdict(u) for u in users])
    elif not users:
        print("(no users)")
    else:
        _table(["USER", "SESSIONS", "CREATED (UTC)"],
               [[u.user_id, u.sessions, _when(u.created_at)] for u in users])
    return 0


def _sessions(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        page = repo.get_sessions(args.user, limit=args.limit, offset=args.offset)
        rows = [(s, s.count_items()) for s in page]
    if _wants_json(args):
        _print_json([_session_json(s, n) for s, n in rows])
    elif not rows:
        print(f"(no sessions for user {args.user!r})")
    else:
        _table(["SESSION_ID", "CREATED (UTC)", "UPDATED (UTC)", "ITEMS", "METADATA"],
               [[s.session_id, _when(s.created_at), _when(s.updated_at), n, _short(s.metadata)]
                for s, n in rows])
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        if args.user is None:
            session = repo.find_session(args.session_id)
        else:
            session = repo.get_session(args.user, args.session_id)
        if session is None:
            owner = "" if args.user is None else f" for user {args.user!r}"
            raise CommandError(f"no session {args.session_id!r}{owner}")
        total = session.count_items()
        items = session.get_items(args.limit)
    if _wants_json(args):
        _print_json({**_session_json(session, total), "items_shown": items})
        return 0
    print(f"session:  {session.session_id}")
    print(f"user:     {session.user_id}")
    print(f"created:  {_when(session.created_at)} UTC")
    print(f"updated:  {_when(session.updated_at)} UTC")
    print(f"metadata: {json.dumps(session.metadata, ensure_ascii=False)}")
    shown = f" (latest {len(items)} shown)" if len(items) < total else ""
    print(f"items:    {total}{shown}")
    for number, item in enumerate(items, start=total - len(items) + 1):
        print(f"  {number:>4}  {json.dumps(item, ensure_ascii=False)}")
    return 0


def _create(args: argparse.Namespace) -> int:
    with _open(args, create=True) as repo:
        session = repo.create_session(args.user, metadata=args.metadata)
    if _wants_json(args):
        _print_json(_session_json(session, 0))
    else:
        print(session.session_id)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        deleted = repo.delete_session(args.user, args.session_id)
    if not deleted:
        raise CommandError(
            f"user {args.user!r} has no session {args.session_id!r}; nothing was deleted"
        )
    if _wants_json(args):
        _print_json({"deleted": True, "user_id": args.user, "session_id": args.session_id})
    else:
        print(f"deleted session {args.session_id}")
    return 0


def _delete_user(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        if not args.yes:
            sessions = repo.count_sessions(args.user)
            if not sys.stdin.isatty():
                raise CommandError(
                    f"refusing to delete user {args.user!r} ({sessions} sessions) without "
                    "confirmation; pass --yes"
                )
            answer = input(f"Delete user {args.user!r} and their {sessions} session(s) "
                           "with all items? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        report = repo.delete_user(args.user)
    if not report.found:
        raise CommandError(f"no user {args.user!r}; nothing was deleted")
    if _wants_json(args):
        _print_json(asdict(report))
    else:
        print(f"deleted user {args.user}: {report.sessions} session(s), {report.items} item(s)")
    return 0


def _progress(verb: str) -> Callable[[TransferCounts], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(counts: TransferCounts) -> None:
        print(f"\r{verb} {counts.sessions} sessions, {counts.items} items",
              end="", file=sys.stderr, flush=True)

    return show


def _summary(args: argparse.Namespace, verb: str, counts: TransferCounts, out: TextIO) -> None:
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    if _wants_json(args):
        print(json.dumps({verb: asdict(counts)}), file=out)
    else:
        print(f"{verb} {counts.users} user(s), {counts.sessions} session(s), "
              f"{counts.items} item(s)", file=out)


def _export(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        if args.output is None:
            counts = export_jsonl(repo, sys.stdout, user_id=args.user,
                                  progress=_progress("exported"))
        else:
            counts = _export_to_file(repo, args.output, args.user)
    _summary(args, "exported", counts, sys.stderr)  # stdout may be the export itself
    return 0


def _export_to_file(repo: SessionRepository, path: str, user: str | None) -> TransferCounts:
    # Written beside the target, then renamed: a failed export leaves no half file.
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".sessions-export-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            counts = export_jsonl(repo, out, user_id=user, progress=_progress("exported"))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return counts


def _import(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        # The input first: a missing file must not leave an empty database behind.
        lines = (sys.stdin if args.file == "-"
                 else stack.enter_context(open(args.file, encoding="utf-8")))
        repo = stack.enter_context(_open(args, create=True))
        counts = import_jsonl(repo, lines, replace=args.replace, progress=_progress("imported"))
    _summary(args, "imported", counts, sys.stdout)
    return 0


def _check(args: argparse.Namespace) -> int:
    with _open(args) as repo:
        problems = repo.check()
    if _wants_json(args):
        _print_json({"ok": not problems, "problems": problems})
    else:
        print("ok" if not problems else "\n".join(problems))
    return 1 if problems else 0
