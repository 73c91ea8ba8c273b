"""What qac makes of an MCP server's declarations and answers: the data the hub hands out, tool
names the providers accept, input schemas in the shape Qwen's tool-call parsers read, and
results as text and images. Plain functions over plain data, so the tools array is the same
bytes every run.

Imports nothing from qac and never the MCP SDK (`mcp_client` hands over dumped results).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

TOOL_NAME_LIMIT = 64
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
RESULT_LIMIT = 100_000
"""Characters of one tool result kept; the rest is cut with a note."""
State = Literal["ready", "failed", "disabled", "starting"]


@dataclass(frozen=True, slots=True)
class McpTool:
    """A remote tool as the model sees it; `name` is `mcp__SERVER__TOOL` (see `tool_name`)."""

    name: str
    server: str
    tool: str
    description: str
    parameters: dict[str, Any]
    allowed: bool
    """In the server's allow list: runs without asking."""


@dataclass(frozen=True, slots=True)
class McpResult:
    text: str
    images: list[tuple[str, bytes]] = field(default_factory=list)
    """(mime type, raw bytes) of each image the tool returned."""
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    state: State
    tools: tuple[str, ...]
    """The tools as the server names them."""
    error: str
    source: str


def tool_name(server: str, tool: str) -> str:
    """`mcp__SERVER__TOOL`. A tool name with characters outside `[A-Za-z0-9_-]`, or one that
    makes the whole longer than 64, has those characters replaced by `_`, is cut to fit, and
    ends in `_` and the first 8 hex digits of the SHA-256 of the server's own name for it, so
    the name is the same every run and two tools never share one."""
    prefix = f"mcp__{server}__"
    clean = UNSAFE.sub("_", tool)
    if clean == tool and tool and len(prefix) + len(tool) <= TOOL_NAME_LIMIT:
        return prefix + tool
    digest = hashlib.sha256(tool.encode()).hexdigest()[:8]
    return f"{prefix}{clean[: TOOL_NAME_LIMIT - len(prefix) - 9]}_{digest}"


def parameters_of(schema: Any) -> dict[str, Any]:
    """A tool's input schema in the shape Qwen's tool-call parsers read: an object with
    `properties` at the top, `required` naming only existing properties, no null values, local
    `$ref`s inlined unless recursive (then `$defs` stay), and `anyOf [X, null]` read as X (an
    optional parameter is one that is not required)."""
    schema = schema if isinstance(schema, dict) else {}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    kept: set[str] = set()
    body = _clean(schema, defs, frozenset(), kept)
    properties = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    properties = {k: v if isinstance(v, dict) else {} for k, v in properties.items()}
    out: dict[str, Any] = {"type": "object", "properties": properties}
    required = body.get("required")
    if isinstance(required, list):
        names = [r for r in dict.fromkeys(required) if isinstance(r, str) and r in properties]
        if names:
            out["required"] = names
    for key, value in body.items():
        if key not in ("type", "properties", "required", "title", "$schema"):
            out[key] = value
    for key in ("definitions", "$defs") if kept else ():
        if isinstance(schema.get(key), dict):
            out[key] = {n: _clean(d, defs, frozenset({n}), kept) for n, d in schema[key].items()}
    return out


def _clean(node: Any, defs: dict[str, Any], seen: frozenset[str], kept: set[str]) -> Any:
    if isinstance(node, list):
        return [_clean(item, defs, seen, kept) for item in node if item is not None]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/").removeprefix("#/definitions/")
        if name != ref and name in defs and name not in seen and isinstance(defs[name], dict):
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return _clean(merged, defs, seen | {name}, kept)
        kept.add(ref)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if value is None or key in ("$defs", "definitions"):
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {k: _clean(v, defs, seen, kept) for k, v in value.items() if v is not None}
        else:
            out[key] = _clean(value, defs, seen, kept)
    return _without_null(out)


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` becomes X and `type: [T, "null"]` becomes T."""
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        node = {**node, "type": rest[0] if len(rest) == 1 else rest}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            if len(rest) == 1 and isinstance(rest[0], dict):
                others = {k: v for k, v in node.items() if k != key}
                return {**rest[0], **others}
            node = {k: v for k, v in node.items() if k != key} | ({key: rest} if rest else {})
    return node


def shaped_result(content: list[dict[str, Any]], structured: Any, is_error: bool) -> McpResult:
    """A tool result's content blocks (as JSON) as text and (mime, bytes) images: text joined,
    embedded resources as their text or a line naming them, structured content as JSON when
    there is no text, all cut at RESULT_LIMIT characters."""
    parts: list[str] = []
    images: list[tuple[str, bytes]] = []
    for block in content:
        kind, mime = block.get("type"), str(block.get("mimeType") or "unknown type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind in ("image", "audio"):
            try:
                data = base64.b64decode(str(block.get("data", "")), validate=True)
            except (binascii.Error, ValueError):
                parts.append(f"[{kind} ({mime}) that could not be decoded]")
                continue
            if kind == "image":
                images.append((mime, data))
            else:
                parts.append(f"[audio ({mime}, {len(data)} bytes) not shown]")
        elif kind == "resource":
            resource = block.get("resource") or {}
            if "text" in resource:
                parts.append(str(resource["text"]))
            else:
                blob = str(resource.get("blob", "")).strip()
                size = len(blob) * 3 // 4 - blob[-2:].count("=")
                mime = str(resource.get("mimeType") or "unknown type")
                parts.append(f"[binary resource {resource.get('uri')} ({mime}, {size} bytes)]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.get('uri')} ({block.get('name', '')})]")
    if not any(parts) and structured is not None:
        parts = [json.dumps(structured, ensure_ascii=False, indent=2)]
    text = "\n".join(parts)
    if len(text) > RESULT_LIMIT:
        text = f"{text[:RESULT_LIMIT]}\n[cut: the tool returned {len(text)} characters]"
    return McpResult(text, images, is_error)
