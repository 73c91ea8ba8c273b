"""The history stays a valid conversation: every tool call has exactly one answer, even when a
run was killed between a call and its result."""

from __future__ import annotations

from collections.abc import Sequence

from qwen_agent_cli.types import Message, ToolResult

NOT_RUN = "no result: the previous run ended before this call finished (it may not have run)"


def tool_message(result: ToolResult, output: str) -> Message:
    """The tool message answering a call, carrying the output the model is shown."""
    return Message(
        role="tool",
        content=output,
        tool_call_id=result.call_id,
        name=result.name,
        is_error=result.is_error,
        images=result.images,
    )


def unanswered_calls(messages: Sequence[Message]) -> list[Message]:
    """Results for tool calls a crashed or stopped run never answered, so the history is valid."""
    if not messages or messages[-1].role not in ("assistant", "tool"):
        return []
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    last = next((m for m in reversed(messages) if m.role == "assistant"), None)
    if last is None:
        return []
    return [
        Message(role="tool", content=NOT_RUN, tool_call_id=c.id, name=c.name, is_error=True)
        for c in last.tool_calls
        if c.id not in answered
    ]
