"""Rendering golden files: each event kind at width 80, with and without color."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from qwen_agent_cli.events import (
    ErrorEvent,
    Event,
    Result,
    Session,
    Text,
    Thinking,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from qwen_agent_cli.ui.render import Renderer

DIFF = """--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def average(values):
-    return sum(values) // len(values)
+    return sum(values) / len(values)
"""
EVENTS: dict[str, list[Event]] = {
    "session": [
        Session(session_id="20261129-120000-abc123", model="qwen3.6-plus", provider="dashscope")
    ],
    "thinking": [Thinking(text="The test fails in calc.\n"), Thinking(text="Read it first.")],
    "text": [
        Text(text="# Fixed\n\nThe bug was **floor division**:\n\n"),
        Text(text="- `//` became `/`\n- tests pass\n"),
    ],
    "tool_call": [
        ToolCallEvent(
            id="c1", name="edit_file", arguments='{"path": "calc.py", "old": "//", "new": "/"}'
        )
    ],
    "tool_result": [ToolResultEvent(id="c1", name="read_file", output="a\nb\nc\n")],
    "tool_result_diff": [
        ToolResultEvent(id="c1", name="edit_file", output="edited calc.py at line 2", diff=DIFF)
    ],
    "tool_result_error": [
        ToolResultEvent(
            id="c1", name="shell", is_error=True, output="exit code 1\nTraceback ...\nValueError"
        )
    ],
    "usage": [
        UsageEvent(
            prompt_tokens=10,
            completion_tokens=5,
            cached_tokens=None,
            reasoning_tokens=None,
            cost_usd=0.0,
        )
    ],
    "error": [
        ErrorEvent(message="HTTP 429 from http://x/v1: slow down; retrying in 1.0s", retrying=True)
    ],
    "result": [
        Result(
            session_id="20261129-120000-abc123",
            status="done",
            result="ok",
            turns=3,
            usage={
                "prompt_tokens": 4000,
                "completion_tokens": 200,
                "cached_tokens": 3000,
                "reasoning_tokens": 50,
            },
            cost_usd=0.0123,
            duration_s=4.2,
        )
    ],
}


@pytest.mark.parametrize("kind", list(EVENTS))
@pytest.mark.parametrize("color", [True, False])
def test_render_golden(kind: str, color: bool, golden) -> None:
    console = Console(
        file=io.StringIO(),
        width=80,
        record=True,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )
    renderer = Renderer(console, live=False)
    for event in EVENTS[kind]:
        renderer.write(event)
    renderer.end_block()
    golden(f"render_{kind}_{'color' if color else 'plain'}.txt", console.export_text(styles=color))


@pytest.mark.parametrize("no_color", [True, False])
def test_no_color_or_a_non_terminal_gives_plain_text(
    monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    renderer = Renderer(Console(file=out, width=80, force_terminal=no_color))
    for events in EVENTS.values():
        for event in events:
            renderer.write(event)
    renderer.end_block()
    text = out.getvalue()
    assert "edited calc.py" in text
    assert "\x1b[3" not in text
    assert "\x1b[9" not in text
