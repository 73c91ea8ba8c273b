"""What ends a run before the model does: turns, cost and wall-clock budgets (DESIGN §3), and
the stall thresholds. Plain data and one check, so the loop stays short."""

from __future__ import annotations

from dataclasses import dataclass

from qwen_agent_cli.types import Status, Usage


@dataclass(frozen=True, slots=True)
class Budgets:
    max_turns: int = 50
    max_cost: float | None = None
    timeout: float | None = None
    stuck_warn_after: int = 3
    stuck_stop_after: int = 6

    def status(self, turns: int, usage: Usage, deadline: float | None, now: float) -> Status:
        """The budget this run has used up, or DONE while it may go on."""
        if turns >= self.max_turns:
            return Status.MAX_TURNS
        if self.max_cost is not None and usage.cost_usd >= self.max_cost:
            return Status.MAX_COST
        if deadline is not None and now >= deadline:
            return Status.TIMEOUT
        return Status.DONE
