"""Stall detection (DESIGN §5): a model repeating the same failing call, going round a short
cycle of calls that fail, or re-reading the same thing without acting, is told so with its
earlier attempts listed, then stopped. Bookkeeping only; no I/O. What counts as "the same" is
`fingerprints.py`'s business."""

from __future__ import annotations

from dataclasses import dataclass, field

from qwen_agent_cli.fingerprints import Fingerprint, fingerprint
from qwen_agent_cli.types import Message, ToolCall, ToolResult

MISPLACED_CALL = (
    "Your last reply wrote a tool call inside your reasoning, so it was not run. To use a tool, "
    "issue it as a real tool call (not as text); otherwise give your answer."
)
MAX_NUDGES = 2
SHOWN = 200
CYCLE_PERIODS = (2, 3)
ADVICE = "take a different approach, or explain what blocks you."


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded call, as the cycle check sees it: equal keys did the same and got the same."""

    key: str
    failed: bool
    call: str
    attempt: str


@dataclass(slots=True)
class Stalls:
    """Counts repeats; `record` returns the tool output to send, with a warning when due.

    Three counts, each warned at `warn_after` and stopped at `stop_after` calls:
    - a failing call: the same call failing the same way, whatever comes in between, until that
      call fails differently or succeeds;
    - a read: the same file or listing read again with nothing acted on in between;
    - a cycle of 2 or 3 calls, at least one failing, repeated back to back. It is told only after
      the cycle has come round twice and stopped after three times, so a 3-call cycle is not told
      and stopped at once.
    """

    warn_after: int
    stop_after: int
    failures: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    reads: dict[str, list[str]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    stuck_on: str | None = None

    def record(self, call: ToolCall, result: ToolResult) -> str:
        """Count this call; the output to send back, told to stop repeating when due."""
        mark = fingerprint(call, result)
        shown = f"{call.name}({call.arguments[:SHOWN]})"
        attempt = f"{shown} -> {result.output[:SHOWN]}"
        attempts, what = self._count(mark, result.is_error, attempt)
        key = mark.read if mark.read is not None else f"{mark.call}\n{mark.outcome}"
        self.steps.append(Step(key, result.is_error, shown, attempt))
        del self.steps[: -max(self.stop_after, 3 * CYCLE_PERIODS[-1])]
        period, loop = self._cycle()
        if len(loop) > len(attempts):
            count, warn_at = len(loop), max(self.warn_after, 2 * period)
            stop_at = max(self.stop_after, 3 * period)
            stuck = "the cycle " + " then ".join(s.call for s in loop[-period:])
            note = (
                f"You have gone round the same {period} calls {count // period} times "
                f"({count} calls) and got the same results each time:\n"
                f"{_listed([s.attempt for s in loop])}\nStop repeating them"
            )
        else:
            count, warn_at, stop_at = len(attempts), self.warn_after, self.stop_after
            stuck = attempts[-1] if attempts else ""
            note = (
                f"You have made this same call {count} times and {what}:\n"
                f"{_listed(attempts)}\nStop repeating it"
            )
        if (count and count >= stop_at) or (attempts and len(attempts) >= self.stop_after):
            self.stuck_on = stuck
        if not count or count < warn_at:
            return result.output
        return f"{result.output}\n\n[{note}: {ADVICE}]"

    def _count(self, mark: Fingerprint, failed: bool, attempt: str) -> tuple[list[str], str]:
        """The attempts this call repeats, itself included, and what they have in common."""
        if failed:
            outcome, attempts = self.failures.get(mark.call, (mark.outcome, []))
            attempts = [*attempts, attempt] if outcome == mark.outcome else [attempt]
            self.failures[mark.call] = (mark.outcome, attempts)
            return attempts, "it failed the same way each time"
        self.failures.pop(mark.call, None)
        if mark.read is None:
            self.reads.clear()
            return [], ""
        attempts = self.reads.setdefault(mark.read, [])
        attempts.append(attempt)
        return attempts, "nothing changed in between"

    def _cycle(self) -> tuple[int, list[Step]]:
        """The longest run at the end of the steps that repeats with period 2 or 3; a constant
        run is period 1, left to the repeat count."""
        for period in CYCLE_PERIODS:
            cycle = self.steps[-period:]
            if len(self.steps) < 2 * period or len({s.key for s in cycle}) == 1:
                continue
            if not any(s.failed for s in cycle):
                continue
            start = len(self.steps) - period
            while start > 0 and self.steps[start - 1].key == self.steps[start - 1 + period].key:
                start -= 1
            if len(self.steps) - start >= 2 * period:
                return period, self.steps[start:]
        return 0, []


def _listed(attempts: list[str]) -> str:
    return "\n".join(f"{i}. {a}" for i, a in enumerate(attempts, 1))


def misplaced_call(reply: Message) -> bool:
    """A known Qwen3.6 symptom: the tool call written inside the reasoning, none issued."""
    text = reply.reasoning or ""
    return "<tool_call>" in text or "<function=" in text
