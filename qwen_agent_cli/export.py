"""The session export format, both ways: JSON Lines, one header line and then one line per
message, lossless (reasoning included), so a session can be resumed on another machine.

Plain data in and out; the store reads and writes the rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from qwen_agent_cli import jsonl
from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.text import encodable, encodable_message
from qwen_agent_cli.types import Message, SessionInfo

EXPORT_FORMAT = "qac-session"
EXPORT_VERSION = 1


def export_lines(info: SessionInfo, rows: Iterable[tuple[int, Message, float]]) -> Iterator[str]:
    """The header, then each (sequence number, message, created_at) row."""
    header = {"type": "session", "format": EXPORT_FORMAT, "version": EXPORT_VERSION}
    header["session"] = asdict(info)
    yield jsonl.dumps(header)
    for seq, message, created_at in rows:
        record = {"type": "message", "seq": seq, "created_at": created_at}
        record["message"] = message.to_dict()
        yield jsonl.dumps(record)


def parse_export(
    lines: Iterable[str], source: str
) -> tuple[SessionInfo, list[tuple[Message, float]]]:
    """The session and its (message, created_at) records; StoreError names the bad line."""
    header: SessionInfo | None = None
    records: list[tuple[Message, float]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if number == 1 or header is None:
                header = _header(data)
                continue
            if data.get("type") != "message":
                raise ValueError(f"unexpected record type {data.get('type')!r}")
            message = encodable_message(Message.from_dict(data["message"]))
            records.append((message, float(data["created_at"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{source} line {number} is not a qac session record: {exc}") from exc
    if header is None:
        raise StoreError(f"{source} is empty: nothing to import")
    return header, records


def _header(data: dict[str, Any]) -> SessionInfo:
    if data.get("type") != "session" or data.get("format") != EXPORT_FORMAT:
        raise ValueError("the first line must be a qac session header")
    if int(data.get("version", 0)) > EXPORT_VERSION:
        raise ValueError(f"export version {data['version']} is newer than this qac understands")
    # An export is JSON: it can spell text SQLite cannot store (a lone surrogate); repair it.
    fields: dict[str, Any] = {
        k: encodable(v) if isinstance(v, str) else v for k, v in data["session"].items()
    }
    fields["tools"] = tuple(fields.get("tools") or ())
    return SessionInfo(**fields)
