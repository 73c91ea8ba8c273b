"""The HTML report: one file with its style and charts inline (SVG drawn here, no plotting
library, no script, no outside resource), every string from a task, an arm or a model escaped.

Imports nothing above `evaluation.report`.
"""

from __future__ import annotations

from qwen_agent_cli.evaluation.report import SCRIPTED_NOTE, Report, Table
from qwen_agent_cli.evaluation.summary import Summary
from qwen_agent_cli.html_text import CSP, safe

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.note{color:#555}
.scripted{background:#fff4d6;border-left:4px solid #e0a800;padding:.5rem 1rem}
svg text{font:12px system-ui,sans-serif}
"""
COLOURS = {
    "fixed": "#2e9d4a",
    "rejected": "#e0a800",
    "not fixed": "#d64545",
    "error": "#888888",
    "not run": "#eeeeee",
}
LEGEND = {
    "fixed": "fixed (hidden tests pass)",
    "rejected": "visible tests passed, hidden tests failed",
    "not fixed": "not fixed",
    "error": "error",
    "not run": "not run",
}
CELL, LABEL_W, HEAD_H = 22, 220, 28


def render_html(report: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{safe(report.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{safe(report.title)}</h1>",
    ]
    for paragraph in report.intro:
        kind = ' class="scripted"' if paragraph == SCRIPTED_NOTE else ""
        parts.append(f"<p{kind}>{safe(paragraph)}</p>")
    if report.summary.tasks:
        parts += ["<h2>Outcomes per task</h2>", outcome_chart(report.summary)]
        parts += ["<h2>Fix rate and cost per arm</h2>", arm_chart(report.summary)]
    parts += [_table(t) for t in report.tables]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _table(table: Table) -> str:
    head = "".join(f"<th>{safe(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{safe(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    notes = "".join(f'<p class="note">{safe(n)}</p>' for n in table.notes)
    return f"<h2>{safe(table.title)}</h2><table><tr>{head}</tr>{body}</table>{notes}"


def _kind(record: dict[str, object] | None) -> str:
    if record is None:
        return "not run"
    if record["verified"]:
        return "fixed"
    if record["status"] == "fixed":
        return "rejected"
    return "error" if record["status"] == "error" else "not fixed"


def outcome_chart(summary: Summary) -> str:
    """A grid: a row per task, a column per arm, coloured by verdict."""
    arms = [a.arm for a in summary.arms]
    width = LABEL_W + CELL * 4 * len(arms) + 10
    legend_y = HEAD_H + CELL * len(summary.tasks) + 16
    height = legend_y + 18 * len(COLOURS)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for column, arm in enumerate(arms):
        x = LABEL_W + column * CELL * 4
        out.append(f'<text x="{x}" y="{HEAD_H - 8}">{safe(arm[:14])}</text>')
    for row, task in enumerate(summary.tasks):
        y = HEAD_H + row * CELL
        out.append(f'<text x="0" y="{y + 15}">{safe(task[:32])}</text>')
        for column, arm in enumerate(arms):
            record = summary.outcomes[task].get(arm)
            kind = _kind(record)
            x = LABEL_W + column * CELL * 4
            out.append(
                f'<rect x="{x}" y="{y + 2}" width="{CELL * 3}" height="{CELL - 4}" '
                f'fill="{COLOURS[kind]}"><title>{safe(f"{task} [{arm}]: {LEGEND[kind]}")}'
                "</title></rect>"
            )
    for index, (kind, colour) in enumerate(COLOURS.items()):
        y = legend_y + 18 * index
        out.append(f'<rect x="0" y="{y}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="18" y="{y + 11}">{safe(LEGEND[kind])}</text>')
    out.append("</svg>")
    return "".join(out)


def arm_chart(summary: Summary) -> str:
    """Per arm: the fix rate with its 95 % interval, and the total cost, as bars."""
    bar_w, gap, plot_h, top = 46, 40, 160, 20
    arms = summary.arms
    width = 60 + (bar_w * 2 + gap) * len(arms) + 20
    height = top + plot_h + 50
    most = max((a.cost_usd for a in arms), default=0.0) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    base = top + plot_h
    out.append(f'<line x1="50" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>')
    for index, arm in enumerate(arms):
        x = 60 + index * (bar_w * 2 + gap)
        rate_h = plot_h * arm.rate
        low, high = (plot_h * v for v in arm.interval)
        out.append(
            f'<rect x="{x}" y="{base - rate_h:.1f}" width="{bar_w}" height="{rate_h:.1f}" '
            f'fill="#2e9d4a"><title>{safe(f"{arm.arm}: {100 * arm.rate:.1f} % fixed")}'
            "</title></rect>"
        )
        centre = x + bar_w / 2
        out.append(
            f'<line x1="{centre}" y1="{base - high:.1f}" x2="{centre}" y2="{base - low:.1f}" '
            'stroke="#222" stroke-width="2"/>'
        )
        cost_h = plot_h * arm.cost_usd / most
        out.append(
            f'<rect x="{x + bar_w}" y="{base - cost_h:.1f}" width="{bar_w}" height="{cost_h:.1f}" '
            f'fill="#4a78c2"><title>{safe(f"{arm.arm}: ${arm.cost_usd:.4f} in all")}'
            "</title></rect>"
        )
        out.append(f'<text x="{x}" y="{base + 16}">{safe(arm.arm[:16])}</text>')
        label = f"{100 * arm.rate:.0f} % · ${arm.cost_usd:.3f}"
        out.append(f'<text x="{x}" y="{base + 32}">{safe(label)}</text>')
    out.append(
        f'<text x="50" y="{top - 6}">green: fixed share with its 95 % interval; '
        "blue: total cost</text>"
    )
    out.append("</svg>")
    return "".join(out)
