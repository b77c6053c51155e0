"""How items and results look: one line for a terminal or a log, HTML for a notebook.

Everything here reads values it is given and never queries, except the
notebook views of a session or of a list of sessions, whose queries are
bounded (:data:`NOTEBOOK_ITEMS` items, :data:`NOTEBOOK_ROWS` counts).

Every value from the database is untrusted: lines have the characters that
could act on a terminal escaped, HTML has every value escaped (``<script>``
in an item is shown, never run), and media such as base64 images are
summarised by kind and size, never dumped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from ._search import cut
from ._validate import check_int
from .errors import SessionsDalError


# What the views read of the objects they show. Protocols, not the classes:
# this module sits below the session, search and repository modules that
# use it, and names none of them.
class Session(Protocol):
    session_id: str
    user_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def count_items(self) -> int: ...
    def get_items(self, limit: int | None = None, *, offset: int = 0) -> list[Any]: ...


class SearchHit(Protocol):
    @property
    def session(self) -> Session: ...
    @property
    def item(self) -> Any: ...
    @property
    def snippet(self) -> str: ...
    @property
    def parts(self) -> tuple[tuple[str, bool], ...]: ...
    @property
    def layer(self) -> int | None: ...


class PruneReport(Protocol):
    @property
    def sessions(self) -> int: ...
    @property
    def items(self) -> int: ...
    @property
    def dry_run(self) -> bool: ...


class DatabaseInfo(Protocol):
    @property
    def backend(self) -> str: ...
    @property
    def details(self) -> dict[str, str]: ...


__all__ = ["NOTEBOOK_ITEMS", "NOTEBOOK_ROWS", "UNSAFE", "describe", "format_item", "safe",
           "when"]

NOTEBOOK_ITEMS = 20
"""How many of a session's latest items its notebook view shows."""

NOTEBOOK_ROWS = 50
"""How many rows a notebook table of sessions or search hits shows."""

_FOLD_AT = 400
"""Characters of an item's text shown before the rest is folded away."""

_MAX_SHOWN = 20_000
"""Characters of one item's text a notebook view holds at most, folded."""

# -- one line ------------------------------------------------------------------

# Control characters (C0, DEL, C1), format characters such as bidi overrides,
# and line separators: printed from data, they could move the cursor, recolour
# or rewrite the terminal, or make one value look like another. Shown escaped.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f"
                    r"\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                    r"\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
                    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"
                    r"\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def safe(text: str) -> str:
    """``text`` with every character that could act on a terminal escaped."""
    return UNSAFE.sub(_escape, text)


def format_item(item: Any, *, width: int = 160) -> str:
    """One readable line for an item, as ``sessions-dal show`` prints it.

    The shapes agents store get a line saying who did what: messages
    (``user: ...``, with ``[image ...]`` for an image part), tool calls and
    their outputs, handoffs, reasoning summaries, web and file searches,
    computer use, image generation, code interpreter, shell and MCP calls.
    Any other value is its JSON. Whitespace is folded into single spaces,
    characters that could act on a terminal are escaped (``\\x1b``), media
    such as base64 images are summarised by kind and size, and the line is
    cut to ``width`` characters with ``…``. Never raises for a JSON value.

    >>> format_item({"role": "user", "content": "What is\\nthe weather?"})
    'user: What is the weather?'
    >>> format_item({"type": "function_call", "name": "weather", "arguments": '{"city": "Rome"}'})
    'tool call: weather({"city": "Rome"})'
    >>> format_item({"type": "web_search_call", "action": {"type": "search", "query": "rome"}})
    'web search: "rome"'
    >>> format_item(list(range(100)), width=20)
    '[0, 1, 2, 3, 4, 5, …'
    """
    size = check_int("width", width, minimum=2)
    described = describe(item)
    # Each part cut before it is folded and escaped: an item may be megabytes.
    if described is None:
        text = _json(item)[: 4 * size]
    else:
        who, what = described
        text = " ".join(f"{who[:size]}: {what[: 4 * size]}".split())
    return cut(safe(text), size)


def _json(value: Any, *, indent: int | None = None) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent)
    except RecursionError:
        return _TOO_DEEP
    except (TypeError, ValueError):
        pass
    try:
        return repr(value)  # not JSON (a script's own value): still shown
    except RecursionError:
        return _TOO_DEEP
    except Exception:  # its own __repr__ failed
        return f"(a {type(value).__name__} that cannot be shown)"


_TOO_DEEP = "(a value nested too deeply to show)"


def describe(item: Any) -> tuple[str, str] | None:
    """``(who, what)`` for the item shapes agents store, ``None`` for any other.

    ``what`` keeps the item's whole text (the notebook view folds it), with
    media summarised.
    """
    if not isinstance(item, dict):
        return None
    kind, role = item.get("type"), item.get("role")
    try:
        if isinstance(role, str) and kind in (None, "message"):
            text = _content(item.get("content"))
            return None if text is None else (role, text)
        shape = _SHAPES.get(kind) if isinstance(kind, str) else None
        return None if shape is None else shape(item)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None  # a field of an unexpected type: shown as JSON instead


def _content(content: Any) -> str | None:
    """The text of a message's content: a string, or its parts' texts and media."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    parts = [_part(part) for part in content]
    return None if None in parts else " ".join(parts)  # type: ignore[arg-type]


def _part(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if isinstance(part.get("text"), str) and kind in (None, "input_text", "output_text",
                                                       "text", "summary_text"):
        return str(part["text"])
    if kind == "input_image":
        return _attached("image", part.get("image_url") or part.get("file_id"))
    if kind == "input_file":
        name = part.get("filename") or part.get("file_url") or part.get("file_id")
        return _attached("file", name or part.get("file_data"))
    if kind == "input_audio":
        return "[audio]"
    if kind == "refusal":
        return f"[refused: {_text(part.get('refusal'))}]"
    return f"[{kind}]" if isinstance(kind, str) else None


def _attached(kind: str, source: Any) -> str:
    if source is None:
        return f"[{kind}]"
    shown = _media(source)
    # "image/png, 36 kB" says image twice: "[image png, 36 kB]"
    return f"[{kind} {shown.removeprefix(kind + '/')}]"


_DATA_URL = re.compile(r"data:([\w.+/-]*)[^,]{0,200},")


def _media(value: Any) -> str:
    """A URL or id as it is; inline data (a ``data:`` URL, bare base64) as its kind and size."""
    if not isinstance(value, str):
        return _text(value)
    inline = _DATA_URL.match(value)
    if inline is not None:
        return f"{inline.group(1) or 'data'}, {_size(len(value) - inline.end())}"
    if len(value) > 256 and " " not in value[:256]:
        return f"base64, {_size(len(value))}"
    return value


def _size(base64_length: int) -> str:
    size = base64_length * 3 // 4
    return f"{size:,} bytes" if size < 10_000 else (
        f"{size / 1000:,.0f} kB" if size < 10_000_000 else f"{size / 1e6:,.0f} MB")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _call(name: Any, arguments: Any) -> str:
    return f"{_text(name)}({'' if arguments is None else _text(arguments)})"


def _function_call(item: dict[str, Any]) -> tuple[str, str]:
    name = item["name"]
    if not isinstance(name, str):
        raise TypeError(name)
    if name.startswith("transfer_to_"):  # openai-agents' name for a handoff's tool
        return "handoff", f"to {name[len('transfer_to_'):]}"
    return "tool call", _call(name, item.get("arguments"))


def _function_output(item: dict[str, Any]) -> tuple[str, str] | None:
    output = item.get("output")
    if isinstance(output, str) and output.startswith('{"assistant": '):
        # openai-agents' reply to a handoff: the agent that took over
        try:
            reply = json.loads(output)
        except ValueError:
            reply = None
        if isinstance(reply, dict) and len(reply) == 1 and isinstance(reply["assistant"], str):
            return "handoff", f"{reply['assistant']} took over"
    text = output if isinstance(output, str) else _content(output)
    return None if text is None else ("tool output", text)


def _reasoning(item: dict[str, Any]) -> tuple[str, str] | None:
    summary = item.get("summary")
    if summary == []:
        return "reasoning", "(no summary)"
    text = _content(summary)
    return None if text is None else ("reasoning", text)


def _web_search(item: dict[str, Any]) -> tuple[str, str]:
    action = item.get("action") or {}
    kind = action.get("type")
    if kind == "search":
        queries = action.get("queries") or [action.get("query")]
        return "web search", ", ".join(f'"{_text(q)}"' for q in queries if q is not None)
    if kind == "open_page":
        return "web search", f"open {_text(action.get('url'))}"
    if kind == "find_in_page" or kind == "find":
        return "web search", f'find "{_text(action.get("pattern"))}" in {_text(action.get("url"))}'
    return "web search", _text(item.get("status", kind))


def _file_search(item: dict[str, Any]) -> tuple[str, str]:
    queries = ", ".join(f'"{_text(q)}"' for q in item.get("queries") or [])
    results = item.get("results")
    found = "" if not isinstance(results, list) else (
        f" → {len(results)} result{'s' if len(results) != 1 else ''}")
    return "file search", f"{queries}{found}"


def _at(action: dict[str, Any]) -> str:
    return f"({_text(action.get('x'))}, {_text(action.get('y'))})"


def _computer_action(action: dict[str, Any]) -> str:
    kind = action.get("type")
    if kind == "click":
        return f"click {_text(action.get('button', 'left'))} at {_at(action)}"
    if kind in ("double_click", "move"):
        return f"{'double-click at' if kind == 'double_click' else 'move to'} {_at(action)}"
    if kind == "drag":
        path = action.get("path") or [{}]
        return f"drag from {_at(path[0])} to {_at(path[-1])}"
    if kind == "keypress":
        return f"keypress {'+'.join(_text(key) for key in action.get('keys') or [])}"
    if kind == "scroll":
        return (f"scroll by ({_text(action.get('scroll_x'))}, {_text(action.get('scroll_y'))})"
                f" at {_at(action)}")
    if kind == "type":
        return f'type "{_text(action.get("text"))}"'
    if kind in ("screenshot", "wait"):
        return str(kind)
    return _text(action)


def _computer_call(item: dict[str, Any]) -> tuple[str, str]:
    actions = item.get("actions") or [item.get("action") or {}]
    return "computer", "; ".join(_computer_action(action) for action in actions)


def _computer_output(item: dict[str, Any]) -> tuple[str, str]:
    output = item.get("output") or {}
    image = output.get("image_url") or output.get("file_id")
    return "computer output", f"screenshot {_attached('image', image)}"


def _image_generation(item: dict[str, Any]) -> tuple[str, str]:
    result = item.get("result")
    if isinstance(result, str) and result:
        return "image generation", _attached("image", result)
    return "image generation", _text(item.get("status", "no image"))


def _code_interpreter(item: dict[str, Any]) -> tuple[str, str]:
    outputs = []
    for output in item.get("outputs") or []:
        if output.get("type") == "logs":
            outputs.append(_text(output.get("logs")))
        else:
            outputs.append(_attached(_text(output.get("type")), output.get("url")))
    code = _text(item.get("code") or "")
    return "code interpreter", code + (" → " + " ".join(outputs) if outputs else "")


def _shell_call(item: dict[str, Any]) -> tuple[str, str]:
    action = item.get("action") or {}
    commands = action.get("commands")
    if isinstance(commands, list):  # shell_call: several command lines
        return "shell", "; ".join(_text(command) for command in commands)
    command = action.get("command")
    return "shell", " ".join(_text(word) for word in command) if isinstance(
        command, list) else _text(command)


def _shell_output(item: dict[str, Any]) -> tuple[str, str]:
    output = item.get("output")
    if isinstance(output, list):  # shell_call_output: one result per command line
        output = " ".join(_text(part.get("stdout", "")) + _text(part.get("stderr", ""))
                          for part in output)
    return "shell output", _text(output)


def _mcp_call(item: dict[str, Any]) -> tuple[str, str]:
    call = _call(f"{_text(item.get('server_label'))}.{_text(item.get('name'))}",
                 item.get("arguments"))
    if item.get("error"):
        return "MCP call", f"{call} failed: {_text(item['error'])}"
    output = item.get("output")
    return "MCP call", call if output is None else f"{call} → {_text(output)}"


def _mcp_tools(item: dict[str, Any]) -> tuple[str, str]:
    names = ", ".join(_text(tool.get("name")) for tool in item.get("tools") or [])
    return "MCP tools", f"{_text(item.get('server_label'))}: {names or '(none)'}"


def _mcp_approval_request(item: dict[str, Any]) -> tuple[str, str]:
    return "MCP approval asked", _call(
        f"{_text(item.get('server_label'))}.{_text(item.get('name'))}", item.get("arguments"))


def _mcp_approval(item: dict[str, Any]) -> tuple[str, str]:
    verdict = "approved" if item.get("approve") is True else "denied"
    reason = item.get("reason")
    return "MCP approval", verdict if not reason else f"{verdict}: {_text(reason)}"


def _custom_call(item: dict[str, Any]) -> tuple[str, str]:
    return "tool call", _call(item["name"], item.get("input"))


def _patch(item: dict[str, Any]) -> tuple[str, str]:
    operation = item.get("operation") or {}
    kind = _text(operation.get("type", "change")).replace("_", " ")
    return "patch", f"{kind} {_text(operation.get('path'))}"


def _outcome(who: str) -> Callable[[dict[str, Any]], tuple[str, str] | None]:
    def shape(item: dict[str, Any]) -> tuple[str, str] | None:
        output = item.get("output")
        text = output if isinstance(output, str) else _content(output)
        return None if text is None else (who, text)
    return shape


_SHAPES: dict[str, Callable[[dict[str, Any]], tuple[str, str] | None]] = {
    "function_call": _function_call,
    "function_call_output": _function_output,
    "reasoning": _reasoning,
    "web_search_call": _web_search,
    "file_search_call": _file_search,
    "computer_call": _computer_call,
    "computer_call_output": _computer_output,
    "image_generation_call": _image_generation,
    "code_interpreter_call": _code_interpreter,
    "local_shell_call": _shell_call,
    "local_shell_call_output": _shell_output,
    "shell_call": _shell_call,
    "shell_call_output": _shell_output,
    "mcp_call": _mcp_call,
    "mcp_list_tools": _mcp_tools,
    "mcp_approval_request": _mcp_approval_request,
    "mcp_approval_response": _mcp_approval,
    "custom_tool_call": _custom_call,
    "custom_tool_call_output": _outcome("tool output"),
    "apply_patch_call": _patch,
    "apply_patch_call_output": _outcome("patch output"),
    "item_reference": lambda item: ("item reference", _text(item.get("id"))),
}


# -- HTML for notebooks ----------------------------------------------------------

_STYLE = (
    "<style>.sessions-dal{font-family:system-ui,sans-serif;font-size:13px;max-width:60em}"
    ".sessions-dal table{border-collapse:collapse}"
    ".sessions-dal th,.sessions-dal td{text-align:left;vertical-align:top;padding:2px 8px}"
    ".sessions-dal .who{font-weight:600;white-space:nowrap;color:#555}"
    ".sessions-dal .user{color:#1a5fb4}.sessions-dal .assistant{color:#26a269}"
    ".sessions-dal .tool{color:#9141ac}.sessions-dal .note{color:#777}"
    ".sessions-dal .text{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".sessions-dal .when,.sessions-dal code{white-space:nowrap}"
    ".sessions-dal pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}"
    ".sessions-dal mark{background:#fce8a4}</style>"
)


def _h(text: str) -> str:
    """Data as HTML text: markup characters and quotes escaped, and the
    characters that could disguise it (bidi overrides, controls) shown as escapes."""
    return html.escape(UNSAFE.sub(lambda m: m.group() if m.group() in "\n\t" else
                                   _escape(m), text), quote=True)


def _box(*parts: str) -> str:
    return f'{_STYLE}<div class="sessions-dal">{"".join(parts)}</div>'


def when(value: datetime) -> str:
    """A time as the views and the command line show it, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _stamp(value: datetime) -> str:
    return f'<span class="when">{when(value)}</span>'


def _folded(text: str, css: str = "text") -> str:
    """Long text shows its start; the rest opens on a click."""
    if len(text) <= _FOLD_AT:
        return f'<span class="{css}">{_h(text)}</span>'
    rest = text[_FOLD_AT:_MAX_SHOWN]
    more = len(text) - _MAX_SHOWN
    cut = f'<span class="note"> … ({more:,} more characters not shown)</span>' if more > 0 else ""
    return (f'<details><summary class="{css}">{_h(text[:_FOLD_AT])} …</summary>'
            f'<span class="{css}">{_h(rest)}</span>{cut}</details>')


def item_html(item: Any) -> str:
    """One item as an HTML table row: who, and what (long text folded)."""
    described = describe(item)
    if described is None:
        who, body = "item", f"<pre>{_folded(_json(item, indent=1))}</pre>"
    else:
        who, what = described
        body = _folded(what)
    css = who if who in ("user", "assistant") else "tool" if "tool" in who else ""
    return f'<td class="who {css}">{_h(cut(who, 40))}</td><td>{body}</td>'


def _title(session: Session) -> str:
    title = session.metadata.get("title")
    return cut(title, 200) if isinstance(title, str) else ""



def session_html(session: Session) -> str:
    """A session's header and its latest :data:`NOTEBOOK_ITEMS` items, as a conversation."""
    rows = [("session", session.session_id), ("user", str(session.user_id)),
            ("created", f"{when(session.created_at)} UTC"),
            ("updated", f"{when(session.updated_at)} UTC")]
    extra = {key: value for key, value in session.metadata.items() if key != "title"}
    if extra:
        rows.append(("metadata", _json(extra)))
    head = "".join(f'<tr><th class="note">{name}</th><td>{_folded(value)}</td></tr>'
                   for name, value in rows)
    title = _title(session)
    heading = f"<b>{_h(title)}</b>" if title else "<b>Session</b>"
    try:
        total = session.count_items()
        items = session.get_items(NOTEBOOK_ITEMS)
    except SessionsDalError as exc:  # closed, unreachable, corrupt: the header still helps
        return _box(heading, f"<table>{head}</table>",
                    f'<p class="note">(items not shown: {_h(str(exc))})</p>')
    earlier = max(total - len(items), 0)
    lines = [f"<p>{total:,} item{'s' if total != 1 else ''}</p>"]
    if earlier:
        lines.append(f'<p class="note">… {earlier:,} earlier, not shown '
                     f"(<code>get_items(limit, offset={len(items)})</code> scrolls back)</p>")
    body = "".join(f'<tr><td class="note">{number}</td>{item_html(item)}</tr>'
                   for number, item in enumerate(items, start=earlier + 1))
    return _box(heading, f"<table>{head}</table>", *lines, f"<table>{body}</table>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], total: int,
           what: str) -> str:
    head = "".join(f"<th>{name}</th>" for name in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    more = total - NOTEBOOK_ROWS
    tail = (f'<p class="note">… and {more:,} more {what} (index the list to see them)</p>'
            if more > 0 else "")
    return f"<table><tr>{head}</tr>{body}</table>{tail}"


def sessions_html(sessions: Sequence[Session]) -> str:
    """A table of sessions: title, last activity, item count, ids."""
    if not sessions:
        return _box('<p class="note">(no sessions)</p>')
    shown = sessions[:NOTEBOOK_ROWS]
    owners = {session.user_id for session in sessions}

    def count(session: Session) -> str:
        try:
            return f"{session.count_items():,}"
        except SessionsDalError:
            return "?"  # a closed repository: the rest of the row is still known

    rows = [[_h(_title(s)), _stamp(s.updated_at), count(s), f"<code>{_h(s.session_id)}</code>",
             *([] if len(owners) == 1 else [_h(str(s.user_id))]), _stamp(s.created_at)]
            for s in shown]
    headers = ["title", "last activity (UTC)", "items", "session",
               *([] if len(owners) == 1 else ["user"]), "created (UTC)"]
    count_line = f"<p>{len(sessions):,} session{'s' if len(sessions) != 1 else ''}" + (
        f" of user <code>{_h(str(next(iter(owners))))}</code></p>" if len(owners) == 1 else "</p>")
    return _box(count_line, _table(headers, rows, len(sessions), "sessions"))


def _marked(hit: SearchHit) -> str:
    if not hit.parts:
        return _h(hit.snippet)
    return "".join(f"<mark>{_h(text)}</mark>" if matched else _h(text)
                   for text, matched in hit.parts)


def hits_html(hits: Sequence[SearchHit]) -> str:
    """A table of search hits: where each matched, and its snippet with the match marked."""
    if not hits:
        return _box('<p class="note">(no matches)</p>')
    rows = []
    for hit in hits[:NOTEBOOK_ROWS]:
        described = None if hit.item is None else describe(hit.item)
        where = "title" if hit.item is None else "item" if described is None else described[0]
        where = cut(where, 40) + ("" if hit.layer is None else
                                  f" (compacted history, layer {hit.layer})")
        session = hit.session
        rows.append([_h(_title(session)) or f"<code>{_h(session.session_id)}</code>",
                     _h(where), _marked(hit)])
    return _box(f"<p>{len(hits):,} match{'es' if len(hits) != 1 else ''}</p>",
                _table(["session", "matched in", "snippet"], rows, len(hits), "matches"))


def prune_html(report: PruneReport) -> str:
    """What a prune deleted, or would delete."""
    verb = "would delete" if report.dry_run else "deleted"
    return _box(f"<p>prune {verb} <b>{report.sessions:,}</b> session"
                f"{'s' if report.sessions != 1 else ''} and <b>{report.items:,}</b> item"
                f"{'s' if report.items != 1 else ''}</p>")


def info_html(info: DatabaseInfo) -> str:
    """The database's facts as a two-column table, the backend's own among them."""
    facts = {**vars(info), **info.details}
    del facts["details"]
    rows = "".join(
        f'<tr><th class="note">{name.replace("_", " ")}</th><td>{_h(str(value))}</td></tr>'
        for name, value in facts.items())
    return _box(f"<table>{rows}</table>")
