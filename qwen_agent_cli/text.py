"""Text that can always be stored and sent. File names and command output may hold bytes that
are not UTF-8; Python keeps them as lone surrogates, which neither SQLite nor a JSON request
can carry, so one such name would poison every later request of a session."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from qwen_agent_cli.types import Message, ToolCall

_SURROGATE = re.compile("[\ud800-\udfff]")
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erases
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, links, clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]|\x1b[ -/][0-~]"  # two-character escapes
)
_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def _shown(match: re.Match[str]) -> str:
    point = ord(match.group())
    if 0xDC80 <= point <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
        return f"\\x{point - 0xDC00:02x}"
    return "\ufffd"


def encodable(text: str) -> str:
    r"""`text` with every lone surrogate replaced: an undecodable byte of a file name becomes
    `\xNN` (which the file tools accept back), anything else U+FFFD. Unchanged text is
    returned as is, so valid reasoning stays byte for byte."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(_shown, text)


def strip_ansi(text: str) -> str:
    """Text without terminal escape sequences: colour codes a project forces on (pytest
    `--color=yes`, npm scripts) cost the model tokens and carry nothing."""
    if "\x1b" not in text and "\x9b" not in text and "\x9d" not in text:
        return text
    return _ANSI.sub("", text)


def unescape_bytes(path: str) -> str:
    r"""A name as `encodable` showed it, with each `\xNN` (NN from 80 to ff) turned back into
    the undecodable byte it stands for."""
    if "\\x" not in path:
        return path
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), path)


def encodable_message(message: Message) -> Message:
    """The message with any text UTF-8 cannot carry repaired, so it can be stored and sent; the
    message itself when nothing needed it (the common case, checked cheaply)."""

    def fix(value: str | None) -> str | None:
        return None if value is None else encodable(value)

    repaired = dataclasses.replace(
        message,
        content=fix(message.content),
        reasoning=fix(message.reasoning),
        reasoning_details=_encodable_items(message.reasoning_details),
        blocks=_encodable_items(message.blocks),
        tool_calls=tuple(
            ToolCall(id=encodable(c.id), name=encodable(c.name), arguments=encodable(c.arguments))
            for c in message.tool_calls
        ),
        tool_call_id=fix(message.tool_call_id),
        name=fix(message.name),
    )
    return message if repaired == message else repaired


def _encodable_items(
    items: tuple[dict[str, Any], ...] | None,
) -> tuple[dict[str, Any], ...] | None:
    """Structured reasoning (OpenRouter's details, Anthropic's blocks), repaired as one JSON
    text; the same tuple when nothing needed it."""
    if items is None:
        return None
    dumped = json.dumps(list(items), ensure_ascii=False)
    repaired = encodable(dumped)
    return items if repaired is dumped else tuple(json.loads(repaired))
