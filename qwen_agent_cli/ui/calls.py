"""A tool call's arguments as a person reads them: the values themselves, not Python reprs with
`\\n` escapes. One short line for the running transcript; `key: value` lines, multi-line values
indented and long ones cut with a note, for the approval question. Every string is sanitised
(`visible`): the model wrote it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qwen_agent_cli.visible import visible
from qwen_agent_cli.words import plural

SHORT_VALUE = 70
"""Characters of one value on the one-line form of a call."""
VALUE_LINES = 20
"""Lines of one value the approval question shows before it cuts the rest."""
VALUE_CHARS = 2000
"""Characters of one value the approval question shows before it cuts the rest."""
INDENT = "    "


def as_text(value: Any) -> str:
    """A string as it is; anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def short_value(value: Any) -> str:
    """One line: a string in quotes as it is, not escaped (its first line, and how many more),
    anything else as JSON. The caller makes it visible."""
    text = as_text(value)
    lines = text.removesuffix("\n").splitlines() or [""]
    first = lines[0]
    if len(first) > SHORT_VALUE:
        first = first[: SHORT_VALUE - 1] + "…"
    shown = f"'{first}'" if isinstance(value, str) else first
    more = len(lines) - 1
    return f"{shown} +{plural(more, 'line')}" if more > 0 else shown


def argument_lines(arguments: Mapping[str, Any]) -> list[str]:
    """`key: value` lines; a multi-line value on indented lines below its key, cut after
    VALUE_LINES lines or VALUE_CHARS characters with a note saying how much was left out."""
    shown: list[str] = []
    for key, value in arguments.items():
        text = visible(as_text(value)).removesuffix("\n")
        kept = "\n".join(text.split("\n")[:VALUE_LINES])[:VALUE_CHARS]
        left = text[len(kept) :]
        lines = kept.split("\n")
        if len(lines) == 1 and not left:
            shown.append(f"{visible(key)}: {kept}")
            continue
        shown.append(f"{visible(key)}:")
        shown.extend(INDENT + line for line in lines)
        if left:
            more = left.count("\n")
            cut = plural(more, "more line") if more else plural(len(left), "more character")
            shown.append(f"{INDENT}[… {cut} not shown]")
    return shown
