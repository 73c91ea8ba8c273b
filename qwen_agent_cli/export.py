"""The session export format, both ways: JSON Lines, one header line and then one line per
message, lossless (reasoning included), so a session can be resumed on another machine.

Plain data in and out; the store reads and writes the rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from typing import Any

from qwen_agent_cli import jsonl
from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.text import encodable, encodable_message
from qwen_agent_cli.types import Image, Message, SessionInfo

EXPORT_FORMAT = "qac-session"
EXPORT_VERSION = 2
"""2 added `image` records (an attached image's bytes, once, before the first message using
it); version 1 files import as before."""


def export_lines(info: SessionInfo, rows: Iterable[tuple[int, Message, float]]) -> Iterator[str]:
    """The header, then each (sequence number, message, created_at) row."""
    header = {"type": "session", "format": EXPORT_FORMAT, "version": EXPORT_VERSION}
    header["session"] = asdict(info)
    yield jsonl.dumps(header)
    written: set[str] = set()
    for seq, message, created_at in rows:
        for image in message.images:
            if image.sha256 not in written:
                written.add(image.sha256)
                data = base64.b64encode(image.data).decode("ascii")
                yield jsonl.dumps(
                    {"type": "image", "sha256": image.sha256, "mime": image.mime, "data": data}
                )
        record = {"type": "message", "seq": seq, "created_at": created_at}
        record["message"] = message.to_dict()
        yield jsonl.dumps(record)


def parse_export(
    lines: Iterable[str], source: str
) -> tuple[SessionInfo, list[tuple[Message, float]]]:
    """The session and its (message, created_at) records; StoreError names the bad line."""
    header: SessionInfo | None = None
    records: list[tuple[Message, float]] = []
    images: dict[str, Image] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if number == 1 or header is None:
                header = _header(data)
                continue
            if data.get("type") == "image":
                image = _image(data)
                images[image.sha256] = image
                continue
            if data.get("type") != "message":
                raise ValueError(f"unexpected record type {data.get('type')!r}")
            message = encodable_message(Message.from_dict(data["message"]))
            if message.images:
                message = replace(message, images=tuple(images[i.sha256] for i in message.images))
            records.append((message, float(data["created_at"])))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise StoreError(f"{source} line {number} is not a qac session record: {exc}") from exc
    if header is None:
        raise StoreError(f"{source} is empty: nothing to import")
    return header, records


def _image(data: dict[str, Any]) -> Image:
    """An image record, checked against its hash: an edited export cannot smuggle in bytes
    under another image's name."""
    raw = base64.b64decode(str(data["data"]), validate=True)
    if hashlib.sha256(raw).hexdigest() != data["sha256"]:
        raise ValueError(f"image {str(data['sha256'])[:12]} does not match its hash")
    return Image(sha256=str(data["sha256"]), mime=str(data["mime"]), data=raw)


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
