"""format_item: one safe, readable line for every shape agents store, JSON for the rest."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions_dal import format_item
from sessions_dal._view import UNSAFE, safe

PNG = "iVBORw0KGgoAAAANSUhEUgAA" * 2_000  # 48,000 base64 characters: 36,000 bytes

SHAPES: list[tuple[Any, str]] = [
    ({"role": "user", "content": "Where to?\nRome"}, "user: Where to? Rome"),
    ({"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Rome"}, {"type": "refusal", "refusal": "not Paris"}]},
     "assistant: Rome [refused: not Paris]"),
    ({"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]},
     "user: What is this? [image png, 36 kB]"),
    ({"role": "user", "content": [
        {"type": "input_image", "file_id": "file-1"},
        {"type": "input_file", "filename": "plan.pdf", "file_data": PNG},
        {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}}]},
     "user: [image file-1] [file plan.pdf] [audio]"),
    ({"type": "function_call", "call_id": "c", "name": "book", "arguments": '{"to": "Rome"}'},
     'tool call: book({"to": "Rome"})'),
    ({"type": "function_call_output", "call_id": "c", "output": [
        {"type": "input_text", "text": "booked"}]}, "tool output: booked"),
    ({"type": "function_call", "call_id": "h", "name": "transfer_to_billing_agent",
      "arguments": "{}"}, "handoff: to billing_agent"),
    ({"type": "function_call_output", "call_id": "h", "output": '{"assistant": "Billing"}'},
     "handoff: Billing took over"),
    ({"type": "function_call_output", "call_id": "h", "output": '{"assistant": "B", "x": 1}'},
     'tool output: {"assistant": "B", "x": 1}'),
    ({"type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
     "reasoning: think"),
    ({"type": "reasoning", "summary": [], "encrypted_content": PNG}, "reasoning: (no summary)"),
    ({"type": "web_search_call", "id": "w", "status": "completed",
      "action": {"type": "search", "query": "rome weather"}}, 'web search: "rome weather"'),
    ({"type": "web_search_call", "action": {"type": "open_page", "url": "https://a.example"}},
     "web search: open https://a.example"),
    ({"type": "web_search_call", "action": {"type": "find_in_page", "url": "https://a.example",
                                            "pattern": "sun"}},
     'web search: find "sun" in https://a.example'),
    ({"type": "web_search_call", "id": "w", "status": "searching"}, "web search: searching"),
    ({"type": "file_search_call", "id": "f", "queries": ["refunds", "returns"],
      "status": "completed", "results": [{"file_id": "a"}, {"file_id": "b"}]},
     'file search: "refunds", "returns" → 2 results'),
    ({"type": "computer_call", "call_id": "c", "action": {"type": "click", "x": 1, "y": 2,
                                                          "button": "right"}},
     "computer: click right at (1, 2)"),
    ({"type": "computer_call", "action": {"type": "double_click", "x": 1, "y": 2}},
     "computer: double-click at (1, 2)"),
    ({"type": "computer_call", "action": {"type": "drag", "path": [
        {"x": 1, "y": 2}, {"x": 5, "y": 5}, {"x": 3, "y": 4}]}},
     "computer: drag from (1, 2) to (3, 4)"),
    ({"type": "computer_call", "action": {"type": "keypress", "keys": ["CTRL", "S"]}},
     "computer: keypress CTRL+S"),
    ({"type": "computer_call", "action": {"type": "scroll", "x": 1, "y": 2, "scroll_x": 0,
                                          "scroll_y": 300}},
     "computer: scroll by (0, 300) at (1, 2)"),
    ({"type": "computer_call", "action": {"type": "type", "text": "hello"}},
     'computer: type "hello"'),
    ({"type": "computer_call", "actions": [{"type": "move", "x": 1, "y": 2},
                                           {"type": "screenshot"}, {"type": "wait"}]},
     "computer: move to (1, 2); screenshot; wait"),
    ({"type": "computer_call", "action": {"type": "zoom", "level": 2}},
     'computer: {"type": "zoom", "level": 2}'),
    ({"type": "computer_call_output", "call_id": "c", "output": {
        "type": "computer_screenshot", "image_url": f"data:image/png;base64,{PNG}"}},
     "computer output: screenshot [image png, 36 kB]"),
    ({"type": "image_generation_call", "id": "i", "result": PNG, "status": "completed"},
     "image generation: [image base64, 36 kB]"),
    ({"type": "image_generation_call", "id": "i", "result": None, "status": "generating"},
     "image generation: generating"),
    ({"type": "code_interpreter_call", "id": "c", "code": "print(6 * 7)\n", "outputs": [
        {"type": "logs", "logs": "42\n"}, {"type": "image", "url": "https://a.example/p.png"}],
      "container_id": "k", "status": "completed"},
     "code interpreter: print(6 * 7) → 42 [image https://a.example/p.png]"),
    ({"type": "local_shell_call", "call_id": "l", "action": {"type": "exec",
                                                             "command": ["ls", "-l"]}},
     "shell: ls -l"),
    ({"type": "local_shell_call_output", "id": "l", "output": "total 0"},
     "shell output: total 0"),
    ({"type": "shell_call", "call_id": "s", "action": {"commands": ["cd /", "ls"]}},
     "shell: cd /; ls"),
    ({"type": "shell_call_output", "call_id": "s", "output": [
        {"stdout": "bin\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
     "shell output: bin"),
    ({"type": "mcp_list_tools", "id": "m", "server_label": "wiki", "tools": [
        {"name": "ask", "input_schema": {}}, {"name": "read"}]}, "MCP tools: wiki: ask, read"),
    ({"type": "mcp_approval_request", "id": "m", "server_label": "wiki", "name": "ask",
      "arguments": '{"q": "x"}'}, 'MCP approval asked: wiki.ask({"q": "x"})'),
    ({"type": "mcp_approval_response", "approval_request_id": "m", "approve": True},
     "MCP approval: approved"),
    ({"type": "mcp_approval_response", "approval_request_id": "m", "approve": False,
      "reason": "costly"}, "MCP approval: denied: costly"),
    ({"type": "mcp_call", "id": "m", "server_label": "wiki", "name": "ask",
      "arguments": "{}", "output": "an answer"}, "MCP call: wiki.ask({}) → an answer"),
    ({"type": "mcp_call", "id": "m", "server_label": "wiki", "name": "ask",
      "arguments": "{}", "error": "timeout"}, "MCP call: wiki.ask({}) failed: timeout"),
    ({"type": "custom_tool_call", "call_id": "c", "name": "grep", "input": "needle"},
     "tool call: grep(needle)"),
    ({"type": "custom_tool_call_output", "call_id": "c", "output": "found"},
     "tool output: found"),
    ({"type": "apply_patch_call", "call_id": "p", "operation": {
        "type": "update_file", "path": "a.py", "diff": "@@"}}, "patch: update file a.py"),
    ({"type": "item_reference", "id": "msg_1"}, "item reference: msg_1"),
    # Shapes it does not know, or known shapes with odd fields: their JSON.
    ({"type": "web_search_call", "action": "search"},
     '{"type": "web_search_call", "action": "search"}'),
    ({"type": "mcp_list_tools", "tools": [1]}, '{"type": "mcp_list_tools", "tools": [1]}'),
    ({"role": 1, "content": "x"}, '{"role": 1, "content": "x"}'),
    ({"role": "user", "content": []}, '{"role": "user", "content": []}'),
    ({"type": "function_call", "name": None}, '{"type": "function_call", "name": null}'),
    ({"type": "frobnicate"}, '{"type": "frobnicate"}'),
    ([1, "two", None], '[1, "two", null]'),
    ("just text", '"just text"'),
    (float("nan"), "NaN"),
]


@pytest.mark.parametrize(("item", "line"), SHAPES)
def test_each_shape_agents_store_gets_a_readable_line(item: Any, line: str) -> None:
    assert format_item(item) == line


def test_a_line_is_cut_at_its_width_and_never_carries_terminal_controls() -> None:
    item = {"role": "user", "content": "\x1b[2J\u202eevil\u2028" + "word " * 10_000}
    line = format_item(item, width=40)
    assert line == "user: \\x1b[2J\\u202eevil word word word …"  # \u2028 is a space
    assert len(line) == 40
    assert format_item(list(range(10)), width=2) == "[…"


class Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_a_value_that_is_not_json_is_still_shown() -> None:
    assert format_item({"when": {1, 2}}) == "{'when': {1, 2}}"
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert format_item(deep) == "(a value nested too deeply to show)"
    assert format_item({(1, 2): deep}) == "(a value nested too deeply to show)"  # repr too
    assert format_item(Unshowable()) == "(a Unshowable that cannot be shown)"


@pytest.mark.parametrize("item", [
    "\u202e" * 1_000_000,  # each one escaped would be six characters
    {"role": "\u202e" * 1_000_000, "content": "hi"},
    {"role": "user", "content": "\x1b" * 1_000_000},
])
def test_a_huge_value_is_cut_before_it_is_escaped(item: Any) -> None:
    line = format_item(item, width=30)
    assert len(line) <= 30 and line.endswith("…") and UNSAFE.search(line) is None


def test_invisible_format_characters_are_escaped() -> None:
    for character in "\u0600\u06dd\u070f\u0890\u08e2\U000110bd\U00013430\U0001bca0\U0001d173":
        line = format_item(f"a{character}b")
        assert character not in line and line.startswith('"a\\') and line.endswith('b"')


@pytest.mark.parametrize(("width", "error"), [("80", TypeError), (True, TypeError),
                                              (1, ValueError), (-5, ValueError)])
def test_a_bad_width_is_refused(width: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="width"):
        format_item("x", width=width)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "role", "content", "text", "name", "output", "action",
                         "summary", "arguments", "queries", "tools", "x", "url", "result"])
        | st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)
SHAPED = st.builds(lambda kind, rest: {**rest, "type": kind},
                   st.sampled_from(["message", "function_call", "function_call_output",
                                    "reasoning", "web_search_call", "file_search_call",
                                    "computer_call", "computer_call_output", "mcp_call",
                                    "image_generation_call", "code_interpreter_call",
                                    "shell_call", "shell_call_output", "mcp_list_tools"]),
                   st.dictionaries(st.sampled_from(["role", "content", "name", "output",
                                                    "action", "actions", "summary", "tools",
                                                    "queries", "outputs", "operation"]),
                                   JSON, max_size=4))


@given(item=JSON | SHAPED, width=st.integers(min_value=2, max_value=300))
def test_any_json_value_makes_one_safe_line_within_its_width(item: Any, width: int) -> None:
    line = format_item(item, width=width)
    assert len(line) <= width
    assert "\n" not in line and UNSAFE.search(line) is None
    whole = safe(json.dumps(item, ensure_ascii=False))
    if not isinstance(item, dict) and len(whole) <= width:
        assert line == whole  # not an agent's shape: its JSON, uncut
