"""`report.md` and `report.html` from the records: the same tables in both (built once, as
plain rows), the HTML with inline SVG charts and no outside resource, so it opens offline.

Imports nothing above `evaluation.summary`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent_cli.evaluation.results import Record
from qwen_agent_cli.evaluation.summary import ArmSummary, Summary, summarize

SCRIPTED_NOTE = (
    "Scripted demo: every model turn here was written in advance, so these numbers show what "
    "the report looks like and say nothing about a real model."
)
DURATION_ROWS = ("time per task (s)", "time per verified fix (s)")
"""Rows that differ from run to run of the same evaluation (wall-clock times)."""


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    intro: list[str]
    tables: list[Table]
    summary: Summary


def build(records: Sequence[Record], meta: dict[str, Any]) -> Report:
    """The report's content; `meta` is eval.json (the arms and whether it was the demo)."""
    arms = [str(a["name"]) for a in meta.get("arms", [])]
    summary = summarize(records, arms)
    flags = {str(a["name"]): " ".join(a.get("flags", [])) for a in meta.get("arms", [])}
    intro = [SCRIPTED_NOTE] if meta.get("demo") else []
    arm_list = "; ".join(f"{a.arm}: `{flags.get(a.arm) or '(no flags)'}`" for a in summary.arms)
    intro.append(
        f"{len(summary.tasks)} tasks, {len(summary.arms)} arms ({arm_list}), "
        f"{len(records)} runs. A task counts as fixed only when its hidden tests pass on a clean "
        "checkout with the run's patch applied."
    )
    tables = [_fixes(summary), _pairs(summary), _effort(summary), _per_task(summary)]
    return Report("qac eval report", intro, [t for t in tables if t.rows], summary)


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _fixes(summary: Summary) -> Table:
    rows = [
        [
            a.arm,
            str(a.tasks),
            str(a.verified),
            _pct(a.rate),
            f"{_pct(a.interval[0])} to {_pct(a.interval[1])}",
        ]
        for a in summary.arms
    ]
    header = ["arm", "tasks", "verified fixed", "rate", "95 % interval (Wilson)"]
    return Table("Verified fixes", header, rows)


def _pairs(summary: Summary) -> Table:
    rows = [
        [
            f"{p.a} vs {p.b}",
            str(p.tasks),
            str(p.both),
            str(p.only_a),
            str(p.only_b),
            str(p.neither),
            f"{p.p_value:.4g}",
        ]
        for p in summary.pairs
    ]
    header = [
        "arms",
        "tasks",
        "both fixed",
        "first only",
        "second only",
        "neither",
        "p (exact McNemar)",
    ]
    notes = [
        "Only tasks both arms ran are paired. The test uses the tasks fixed by one arm only; "
        "p is the chance of a split at least this uneven if the arms were equally good."
    ]
    return Table("Paired comparison", header, rows, notes)


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}"


EFFORT: list[tuple[str, Callable[[ArmSummary], str]]] = [
    ("turns per task", lambda a: _num(a.per_task(a.turns))),
    ("prompt tokens per task", lambda a: _num(a.per_task(a.prompt_tokens), 0)),
    (
        "cached share of prompt tokens",
        lambda a: "n/a" if a.cached_share is None else _pct(a.cached_share),
    ),
    ("completion tokens per task", lambda a: _num(a.per_task(a.completion_tokens), 0)),
    ("reasoning tokens per task", lambda a: _num(a.per_task(a.reasoning_tokens), 0)),
    ("reasoning tokens re-sent per task", lambda a: _num(a.per_task(a.reasoning_resent), 0)),
    ("prompt tokens per verified fix", lambda a: _num(a.per_fix(a.prompt_tokens), 0)),
    ("cost per task", lambda a: _money(a.per_task(a.cost_usd))),
    ("cost per verified fix", lambda a: _money(a.per_fix(a.cost_usd))),
    ("total cost", lambda a: _money(a.cost_usd)),
    (DURATION_ROWS[0], lambda a: _num(a.per_task(a.duration_s))),
    (DURATION_ROWS[1], lambda a: _num(a.per_fix(a.duration_s))),
    ("stuck", lambda a: str(a.stuck)),
    ("errors", lambda a: str(a.errors)),
    ("stopped by a budget", lambda a: str(a.budget_stops)),
    ("visible tests passed, hidden tests failed", lambda a: str(a.claimed_rejected)),
]


def _effort(summary: Summary) -> Table:
    header = ["", *(a.arm for a in summary.arms)]
    rows = [[name, *(cell(a) for a in summary.arms)] for name, cell in EFFORT]
    notes = [
        "Re-sent reasoning: each reply's reasoning counted once for every later request that "
        "carried it back (0 without preserved thinking). Cost is what the provider's price "
        "gives; $0 where the model has no price."
    ]
    return Table("Effort and cost", header, rows, notes)


def outcome(record: Record | None) -> str:
    """One cell of the per-task table."""
    if record is None:
        return "not run"
    verdict = "fixed" if record["verified"] else "not fixed"
    status = str(record["status"])
    detail = f"{record.get('turns', 0)} turns, {_money(float(record.get('cost_usd') or 0))}"
    if not record["verified"] and status not in ("fixed", "not_fixed"):
        detail = f"{status}; {detail}"
    elif status == "fixed" and not record["verified"]:
        detail = f"hidden tests failed; {detail}"
    return f"{verdict} ({detail})"


def _per_task(summary: Summary) -> Table:
    header = ["task", *(a.arm for a in summary.arms)]
    rows = [
        [task, *(outcome(summary.outcomes[task].get(a.arm)) for a in summary.arms)]
        for task in summary.tasks
    ]
    return Table("Per task", header, rows)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for paragraph in report.intro:
        lines += [f"> {paragraph}" if paragraph == SCRIPTED_NOTE else paragraph, ""]
    for table in report.tables:
        lines += [f"## {table.title}", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in table.header) + " |")
        lines.append("|" + "---|" * len(table.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        lines.append("")
        for note in table.notes:
            lines += [note, ""]
    return "\n".join(lines)


def write_reports(out: Path, records: Sequence[Record], meta: dict[str, Any]) -> Report:
    """Write report.md and report.html into out."""
    from qwen_agent_cli.evaluation.report_html import render_html

    report = build(records, meta)
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    return report
