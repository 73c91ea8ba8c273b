"""A session's past as the REPL shows and tells it: on a resume, the earlier turns rendered the
way they looked live (the user's lines, tool calls folded to one line each, answers as
Markdown); and the note that tells the model, with the next message, that the user
interrupted its last answer."""

from __future__ import annotations

from collections.abc import Sequence

from qwen_agent_cli import compaction
from qwen_agent_cli.events import ToolCallEvent, ToolResultEvent
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message
from qwen_agent_cli.ui.prompt import PROMPT
from qwen_agent_cli.ui.render import Renderer
from qwen_agent_cli.visible import visible
from qwen_agent_cli.words import plural

INTERRUPTED = "[The previous answer was interrupted by the user.]"
HISTORY_TURNS = 10
"""The most recent turns a resume shows; `qac sessions show ID` has them all."""
USER_LINE = 100
SUMMARY_START = compaction.SUMMARY_MESSAGE.split("\n", 1)[0]


def interrupted_note(store: SessionStore, session_id: str) -> str:
    """INTERRUPTED when the session's last turn was interrupted. Read from the store, so a
    session closed right after the interrupt still tells the model on `--resume`; the next
    turn ends with another status, so the note is sent once."""
    return INTERRUPTED if store.get(session_id).status == "interrupted" else ""


def typed_text(content: str) -> str:
    """What the user typed: a message without the `[notes]` qac put before it."""
    paragraphs = content.strip().split("\n\n")
    while len(paragraphs) > 1 and paragraphs[0].startswith("[") and paragraphs[0].endswith("]"):
        paragraphs.pop(0)
    return "\n\n".join(paragraphs)


def show_history(renderer: Renderer, session_id: str, messages: Sequence[Message]) -> None:
    """The current segment's last HISTORY_TURNS turns, rendered like live output."""
    shown = compaction.active(messages)
    starts = [i for i, m in enumerate(shown) if m.role == "user"]
    renderer.say(f"resumed session {session_id}: {plural(len(starts), 'earlier turn')}", "dim")
    if len(starts) > HISTORY_TURNS:
        hidden = len(starts) - HISTORY_TURNS
        renderer.say(
            f"… {plural(hidden, 'earlier turn')} not shown (qac sessions show {session_id})",
            "dim",
        )
        shown = shown[starts[hidden] :]
    for message in shown:
        show_message(renderer, message)
    renderer.end_block()


def show_message(renderer: Renderer, message: Message) -> None:
    content = message.content or ""
    if message.role == "user":
        if content.startswith(SUMMARY_START):
            renderer.say("(earlier turns were compacted into a summary)", "dim")
            return
        lines = typed_text(content).splitlines() or [""]
        more = f" (+{plural(len(lines) - 1, 'line')})" if len(lines) > 1 else ""
        renderer.say(f"{PROMPT}{lines[0][:USER_LINE]}{more}", "bold")
    elif message.role == "assistant":
        reasoning = (message.reasoning or "").strip()
        if reasoning and renderer.thinking == "full":
            renderer.say(reasoning, "dim")
        elif reasoning and renderer.thinking == "show":
            renderer.say(f"▸ thought ({plural(len(reasoning.splitlines()), 'line')})", "dim italic")
        if content.strip():
            renderer.markdown(visible(content))
        for call in message.tool_calls:
            renderer.write(ToolCallEvent(id=call.id, name=call.name, arguments=call.arguments))
        if message.interrupted:
            renderer.say("(interrupted)", "yellow")
    elif message.role == "tool":
        renderer.write(
            ToolResultEvent(
                id=message.tool_call_id or "",
                name=message.name or "",
                output=content,
                is_error=message.is_error,
            )
        )
