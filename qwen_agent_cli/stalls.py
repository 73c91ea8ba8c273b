"""Stall detection (DESIGN §5): a model repeating the same failing call, or re-reading the same
thing without acting, is told so with its earlier attempts listed, then stopped. Bookkeeping
only; no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from qwen_agent_cli.types import Message, ToolCall, ToolResult

MISPLACED_CALL = (
    "Your last reply wrote a tool call inside your reasoning, so it was not run. To use a tool, "
    "issue it as a real tool call (not as text); otherwise give your answer."
)
MAX_NUDGES = 2
READ_ONLY_TOOLS = frozenset({"read_file", "list_files", "glob", "grep"})
SHOWN = 200


def _normal(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except (json.JSONDecodeError, TypeError):
        return arguments.strip()


@dataclass(slots=True)
class Stalls:
    """Counts repeats; `record` returns the tool output to send, with a warning when due."""

    warn_after: int
    stop_after: int
    failures: dict[str, list[str]] = field(default_factory=dict)
    reads: dict[str, list[str]] = field(default_factory=dict)
    stuck_on: str | None = None

    def record(self, call: ToolCall, result: ToolResult) -> str:
        key = f"{call.name}:{_normal(call.arguments)}"
        attempt = f"{call.name}({call.arguments[:SHOWN]}) -> {result.output[:SHOWN]}"
        if result.is_error:
            attempts = self.failures.setdefault(f"{key}:{result.output}", [])
            what = "it failed the same way each time"
        elif call.name in READ_ONLY_TOOLS:
            attempts = self.reads.setdefault(key, [])
            what = "nothing changed in between"
        else:
            self.reads.clear()
            return result.output
        attempts.append(attempt)
        if len(attempts) >= self.stop_after:
            self.stuck_on = attempt
        if len(attempts) < self.warn_after:
            return result.output
        listed = "\n".join(f"{i}. {a}" for i, a in enumerate(attempts, 1))
        return (
            f"{result.output}\n\n[You have made this same call {len(attempts)} times and "
            f"{what}:\n{listed}\nStop repeating it: take a different approach, or explain "
            "what blocks you.]"
        )


def misplaced_call(reply: Message) -> bool:
    """A known Qwen3.6 symptom: the tool call written inside the reasoning, none issued."""
    text = reply.reasoning or ""
    return "<tool_call>" in text or "<function=" in text
