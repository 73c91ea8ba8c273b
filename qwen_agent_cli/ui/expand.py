"""The last tool output, folded to one line as it ran, shown whole on request: `/last`, and
Ctrl-O at the empty prompt. It is read back from the session store, so it is there after a
resume too, and it is what the model was shown (already cut to the tool output limit). A tool
wrote it: it is printed through `visible`, and a huge one is capped."""

from __future__ import annotations

from collections.abc import Sequence

from qwen_agent_cli.types import Message
from qwen_agent_cli.ui.render import Renderer, describe_call
from qwen_agent_cli.words import plural

HEAD_LINES = 600
TAIL_LINES = 200
"""A longer output shows its first HEAD_LINES and last TAIL_LINES lines, and how many between
were left out: enough to read, without flooding the terminal's scrollback."""


def show_last(renderer: Renderer, messages: Sequence[Message]) -> None:
    """Print the session's last tool output in full (capped), under the call that made it."""
    index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "tool"), None)
    if index is None:
        renderer.say("no tool output yet in this session", "dim")
        return
    result = messages[index]
    calls = (c for m in messages[:index] for c in m.tool_calls if c.id == result.tool_call_id)
    call = next(calls, None)
    heading = describe_call(call.name, call.arguments) if call else result.name or "tool"
    renderer.say(f"● {heading}", "bold cyan")
    lines = (result.content or "").rstrip("\n").split("\n")
    if len(lines) > HEAD_LINES + TAIL_LINES:
        left_out = len(lines) - HEAD_LINES - TAIL_LINES
        lines = [
            *lines[:HEAD_LINES],
            f"[… {plural(left_out, 'line')} not shown …]",
            *lines[-TAIL_LINES:],
        ]
    renderer.say("\n".join(lines) or "(no output)", "red" if result.is_error else "")
