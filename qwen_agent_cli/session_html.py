"""One stored session as a self-contained HTML page a person can read: the conversation with
each turn's thinking folded, tool calls with readable arguments, edits as coloured diffs, tool
output folded, usage and cost per turn.

Every string on the page came from the model, a tool, the repository or the store, so each goes
through `safe` (control sequences stripped, HTML escaped); the page loads nothing (a strict CSP,
inline CSS, images as data: URIs) and needs no script (<details> folds). Pure: stored records in,
a str out; it writes nothing.
"""

from __future__ import annotations

import base64
import difflib
import json
import time
from collections.abc import Sequence
from typing import Any

from qwen_agent_cli import __version__
from qwen_agent_cli.catalogue import Catalogue
from qwen_agent_cli.html_text import CSP, safe
from qwen_agent_cli.images import describe, sniff
from qwen_agent_cli.session_html_style import STYLE
from qwen_agent_cli.stream import cost_of
from qwen_agent_cli.types import Image, Message, SessionInfo, ToolCall, Usage
from qwen_agent_cli.words import plural

SUMMARY_CHARS = 120
DIFF_ARGUMENTS = {"edit_file": ("old", "new"), "write_file": ("content",)}
"""The arguments of tools/files.py's edit tools that the diff shows in place of their text."""


def render_session(
    info: SessionInfo, messages: Sequence[Message], catalogue: Catalogue | None = None
) -> str:
    """The whole page; `catalogue` prices turns whose stored cost is 0 (an imported session,
    a model priced since)."""
    costs = [_cost(message, info, catalogue) for message in messages]
    body = _header(info, messages, costs) + "<main>\n" + _turns(messages, costs) + "</main>\n"
    title = f"qac session {info.id}" + (f" · {info.title}" if info.title else "")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{safe(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}"
        f"<footer>written by qac {safe(__version__)}</footer>\n</body>\n</html>\n"
    )


def _cost(message: Message, info: SessionInfo, catalogue: Catalogue | None) -> float:
    usage = message.usage
    if usage is None:
        return 0.0
    if usage.cost_usd or catalogue is None:
        return usage.cost_usd
    return cost_of(usage, catalogue.price(message.model or info.model))


def _header(info: SessionInfo, messages: Sequence[Message], costs: Sequence[float]) -> str:
    total = sum((m.usage for m in messages if m.usage is not None), Usage())
    turns = sum(1 for m in messages if m.role == "assistant")
    calls = sum(len(m.tool_calls) for m in messages)
    rows = [
        ("session", info.id),
        ("model", info.model),
        ("provider", info.provider),
        ("repository", info.repository),
        ("directory", info.workdir),
        ("status", info.status),
        ("created", _when(info.created_at)),
        ("updated", _when(info.updated_at)),
        ("turns", f"{turns} model turns, {len(messages)} messages, {calls} tool calls"),
        ("tokens", _tokens(total)),
        ("cost", f"${sum(costs):.4f}"),
    ]
    cells = "".join(f'<dt>{name}</dt><dd class="{name}">{safe(value)}</dd>' for name, value in rows)
    heading = safe(info.title) if info.title else "qac session"
    return f'<header>\n<h1>{heading}</h1>\n<dl class="session">{cells}</dl>\n</header>\n'


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) if stamp else "unknown"


def _tokens(usage: Usage) -> str:
    def count(value: int | None) -> str:
        return "n/a" if value is None else f"{value:,}"

    return (
        f"prompt {count(usage.prompt_tokens)} · cached {count(usage.cached_tokens)} · "
        f"completion {count(usage.completion_tokens)} · "
        f"reasoning {count(usage.reasoning_tokens)}"
    )


def _turns(messages: Sequence[Message], costs: Sequence[float]) -> str:
    """Each message in order, a tool result shown under the call it answers (matched among the
    tool messages that follow the call's turn: ids may repeat from turn to turn)."""
    parts: list[str] = []
    index = 0
    while index < len(messages):
        number, message = index + 1, messages[index]
        index += 1
        if message.role != "assistant":
            parts.append(_message(number, message))
            continue
        results: dict[str, tuple[int, Message]] = {}
        leftovers: list[tuple[int, Message]] = []
        while index < len(messages) and messages[index].role == "tool":
            result = messages[index]
            index += 1  # now the result's own 1-based number
            if result.tool_call_id and result.tool_call_id not in results:
                results[result.tool_call_id] = (index, result)
            else:
                leftovers.append((index, result))
        parts.append(_assistant(number, message, results, costs[number - 1]))
        parts += [_message(n, r) for n, r in sorted([*leftovers, *results.values()], key=_first)]
    return "".join(parts)


def _message(number: int, message: Message) -> str:
    """A user message, a tool result no call claimed, a compaction mark, or anything else."""
    if message.role == "compaction":
        return (
            f'<div class="compaction" id="m{number}">compacted here: '
            f"{safe(message.name or 'a new segment')} starts; earlier turns are summarized for "
            "the model (and all kept here)</div>\n"
        )
    role = message.role if message.role in ("user", "tool", "system") else "other"
    inner = _text(message.content) + _images(message.images)
    if message.role == "tool":
        inner = _output(message)
    return _section(number, role, safe(message.role), message, inner)


def _section(number: int, role: str, heading: str, message: Message, inner: str) -> str:
    flags = "".join(
        f' <span class="flag">{flag}</span>'
        for flag, on in (("interrupted", message.interrupted), ("error", message.is_error))
        if on
    )
    return (
        f'<section class="turn {role}" id="m{number}">\n'
        f'<h2><span class="number">{number}</span> {heading}{flags}</h2>\n{inner}</section>\n'
    )


def _assistant(
    number: int, message: Message, results: dict[str, tuple[int, Message]], cost: float
) -> str:
    """The turn; each result it claims from `results` is shown under its call."""
    inner = _thinking(message) + _text(message.content) + _images(message.images)
    for call in message.tool_calls:
        claimed = results.pop(call.id, None)
        inner += _call(call, claimed[1] if claimed else None)
    if message.usage is not None:
        inner += f'<p class="usage">{safe(_tokens(message.usage))} · ${cost:.4f}</p>\n'
    heading = "assistant" + (f" · {safe(message.model)}" if message.model else "")
    return _section(number, "assistant", heading, message, inner)


def _thinking(message: Message) -> str:
    """Anthropic-format blocks one by one (redacted ones as such), else the reasoning text."""
    if message.blocks:
        pieces = [
            (b.get("thinking") or "", False) if b.get("type") == "thinking" else ("", True)
            for b in message.blocks
            if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
        ]
    else:
        pieces = [(message.reasoning, False)] if message.reasoning else []
    folded = []
    for thought, redacted in pieces:
        if redacted:
            folded.append(
                '<details class="thinking redacted"><summary>thinking (redacted)</summary>'
                "<pre>[redacted]</pre></details>\n"
            )
            continue
        words = len(str(thought).split())
        folded.append(
            f'<details class="thinking"><summary>thinking ({plural(words, "word")})</summary>'
            f"<pre>{safe(thought)}</pre></details>\n"
        )
    return "".join(folded)


def _text(content: str | None) -> str:
    return f'<div class="content">{safe(content)}</div>\n' if content else ""


def _images(images: Sequence[Image]) -> str:
    """Embedded by their bytes' own type; one that is not a known image is only named."""
    shown = []
    for image in images:
        mime = sniff(image.data)
        label = safe(describe(image))
        if mime is None:
            shown.append(f'<p class="image">{label}</p>')
            continue
        data = base64.b64encode(image.data).decode("ascii")
        shown.append(f'<img class="image" src="data:{mime};base64,{data}" alt="{label}">')
    return "".join(shown) + ("\n" if shown else "")


def _call(call: ToolCall, result: Message | None) -> str:
    arguments = _arguments(call.arguments)
    if arguments is None:
        shown = (
            '<p class="note">arguments as the model wrote them (not a JSON object):</p>'
            f'<pre class="arguments raw">{safe(call.arguments)}</pre>\n'
        )
    else:
        diff = _edit_diff(call.name, arguments)
        hidden = DIFF_ARGUMENTS.get(call.name, ()) if diff else ()
        shown = _argument_list({k: v for k, v in arguments.items() if k not in hidden}) + diff
    output = _output(result) if result else '<p class="note">no result stored</p>\n'
    return (
        f'<div class="call">\n<div class="call-head">&rarr; <span class="tool">'
        f"{safe(call.name)}</span></div>\n{shown}{output}</div>\n"
    )


def _arguments(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _argument_list(arguments: dict[str, Any]) -> str:
    """Each argument by name: a one-line string as code, a multi-line one as text, anything
    else as indented JSON."""
    if not arguments:
        return ""
    rows = []
    for name, value in arguments.items():
        if isinstance(value, str) and "\n" not in value:
            shown = f"<code>{safe(value)}</code>"
        elif isinstance(value, str):
            shown = f"<pre>{safe(value)}</pre>"
        else:
            shown = f"<pre>{safe(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"
        rows.append(f"<dt>{safe(name)}</dt><dd>{shown}</dd>")
    return f'<dl class="arguments">{"".join(rows)}</dl>\n'


def _edit_diff(name: str, arguments: dict[str, Any]) -> str:
    """edit_file's old → new, or write_file's content as all new, as a coloured unified diff;
    empty for any other call or for arguments of the wrong shape."""
    keys = DIFF_ARGUMENTS.get(name)
    path = arguments.get("path")
    if keys is None or not all(isinstance(arguments.get(k), str) for k in (*keys, "path")):
        return ""
    before, after = (
        ("", arguments["content"])
        if name == "write_file"
        else (
            arguments["old"],
            arguments["new"],
        )
    )
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
    )
    rows = [
        f'<span class="{"meta" if n < 2 else _diff_class(line)}">{safe(line)}</span>'
        for n, line in enumerate(lines)
    ]
    note = " (the whole new content)" if name == "write_file" else ""
    return (
        f'<p class="note">diff{note}:</p><pre class="diff">{"".join(rows)}</pre>\n'
        if rows
        else '<p class="note">no change</p>\n'
    )


def _diff_class(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "context")


def _output(result: Message) -> str:
    """Folded, behind one line: the output's first line and how many lines it has."""
    content = str(result.content or "")  # an edited import may hold anything
    lines = content.splitlines()
    first = lines[0] if lines else "(empty)"
    if len(first) > SUMMARY_CHARS:
        first = first[:SUMMARY_CHARS] + "…"
    kind = "error" if result.is_error else "output"
    css = "output error" if result.is_error else "output"
    return (
        f'<details class="{css}"><summary><span class="kind">{kind}:</span> '
        f'{safe(first)} <span class="count">({plural(len(lines), "line")})</span></summary>'
        f"<pre>{safe(content)}</pre>{_images(result.images)}</details>\n"
    )


def _first(pair: tuple[int, Message]) -> int:
    return pair[0]
