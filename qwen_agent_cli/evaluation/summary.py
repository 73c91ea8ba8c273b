"""What the report says, as plain data: per arm, the verified fixes with their interval and
what they cost; per pair of arms, the paired comparison. A pure function of the records, so a
run and a merge of its shards summarise the same.

Imports nothing above `evaluation.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from qwen_agent_cli.evaluation.results import Record
from qwen_agent_cli.evaluation.stats import Paired, paired, wilson

BUDGET_STATUSES = ("max_turns", "max_cost", "timeout")


@dataclass(frozen=True, slots=True)
class ArmSummary:
    arm: str
    tasks: int
    verified: int
    interval: tuple[float, float]
    turns: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    reasoning_resent: int
    cost_usd: float
    duration_s: float
    stuck: int
    errors: int
    budget_stops: int
    claimed_rejected: int
    """Runs whose visible tests passed (`qac ci` said fixed) that the hidden tests rejected."""

    @property
    def rate(self) -> float:
        return self.verified / self.tasks if self.tasks else 0.0

    @property
    def cached_share(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def per_task(self, total: float) -> float | None:
        return total / self.tasks if self.tasks else None

    def per_fix(self, total: float) -> float | None:
        return total / self.verified if self.verified else None


@dataclass(frozen=True, slots=True)
class Summary:
    arms: list[ArmSummary]
    pairs: list[Paired]
    tasks: list[str]
    outcomes: dict[str, dict[str, Record]]
    """task id -> arm -> record."""


def summarize(records: Sequence[Record], arms: Sequence[str]) -> Summary:
    """The whole comparison; arms not named in `arms` come after, by name."""
    named = list(arms) + sorted({str(r["arm"]) for r in records} - set(arms))
    outcomes: dict[str, dict[str, Record]] = {}
    for record in records:
        outcomes.setdefault(str(record["task"]), {})[str(record["arm"])] = record
    tasks = sorted(outcomes)
    summaries = [_arm(arm, [r for r in records if r["arm"] == arm]) for arm in named]
    fixed = {
        arm: {
            task: bool(by_arm[arm]["verified"])
            for task, by_arm in outcomes.items()
            if arm in by_arm
        }
        for arm in named
    }
    pairs = [paired(a, b, fixed[a], fixed[b]) for a, b in combinations(named, 2)]
    return Summary(summaries, pairs, tasks, outcomes)


def _arm(arm: str, records: list[Record]) -> ArmSummary:
    verified = sum(1 for r in records if r["verified"])

    def total(key: str) -> int:
        return sum(int(r.get(key) or 0) for r in records)

    return ArmSummary(
        arm=arm,
        tasks=len(records),
        verified=verified,
        interval=wilson(verified, len(records)),
        turns=total("turns"),
        prompt_tokens=total("prompt_tokens"),
        cached_tokens=total("cached_tokens"),
        completion_tokens=total("completion_tokens"),
        reasoning_tokens=total("reasoning_tokens"),
        reasoning_resent=total("reasoning_resent_tokens"),
        cost_usd=sum(float(r.get("cost_usd") or 0) for r in records),
        duration_s=sum(float(r.get("duration_s") or 0) for r in records),
        stuck=sum(1 for r in records if r["status"] == "stuck"),
        errors=sum(1 for r in records if r["status"] == "error"),
        budget_stops=sum(1 for r in records if r["status"] in BUDGET_STATUSES),
        claimed_rejected=sum(1 for r in records if r["status"] == "fixed" and not r["verified"]),
    )
