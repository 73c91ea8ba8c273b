"""Stall detection: a model repeating the same failing call is told so with its earlier
attempts, then stopped (DESIGN §5). Pure bookkeeping; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from qwen_agent_cli.types import ToolCall, ToolResult


@dataclass(slots=True)
class Stalls:
    """Counts identical failing calls, so a model repeating itself is told, then stopped."""

    warn_after: int
    stop_after: int
    seen: dict[str, list[str]] = field(default_factory=dict)
    stuck_on: str | None = None

    def record(self, call: ToolCall, result: ToolResult) -> str:
        if not result.is_error:
            return result.output
        key = f"{call.name}:{call.arguments.strip()}:{hash(result.output)}"
        attempts = self.seen.setdefault(key, [])
        attempts.append(f"{call.name}({call.arguments[:200]}) -> {result.output[:200]}")
        if len(attempts) >= self.stop_after:
            self.stuck_on = attempts[0]
        if len(attempts) >= self.warn_after:
            listed = "\n".join(f"{i}. {a}" for i, a in enumerate(attempts, 1))
            return (
                f"{result.output}\n\n[You have made this same call {len(attempts)} times and it "
                f"failed the same way each time:\n{listed}\nStop repeating it: take a different "
                "approach, or explain what blocks you.]"
            )
        return result.output
