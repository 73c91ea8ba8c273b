"""One streamed Anthropic Messages response, folded event by event into a Message whose content
blocks are kept exactly as they arrived (thinking text and signature, redacted data, text,
tool input), plus the usage with its cost.

Events are the raw JSON objects of the stream (`message_start`, `content_block_start/delta/
stop`, `message_delta`, `message_stop`); `ping` carries nothing and `error` is raised by the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qwen_agent_cli.anthropic_wire import tool_input
from qwen_agent_cli.events import Event, Text, Thinking
from qwen_agent_cli.profiles import Price
from qwen_agent_cli.stream import cost_of
from qwen_agent_cli.types import Message, ToolCall, Usage

REASONING_FIELD = "thinking"
"""The `reasoning_field` of a message whose reasoning arrived as thinking blocks."""


@dataclass(slots=True)
class BlockAccumulator:
    """The blocks of one response by index, in arrival order, and what the stream said."""

    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    arguments: dict[int, list[str]] = field(default_factory=dict)
    stop_reason: str | None = None
    finish_reason: str | None = None
    """Set by message_stop only: a stream cut before it is incomplete, whatever else came."""
    usage: dict[str, Any] = field(default_factory=dict)
    size: int = 0

    def empty(self) -> bool:
        return not any(_has_content(block) for block in self.blocks.values())

    def message(self, model: str, usage: Usage | None, *, interrupted: bool = False) -> Message:
        blocks: list[dict[str, Any]] = []
        calls: list[ToolCall] = []
        seen: set[str] = set()
        for index, block in sorted(self.blocks.items()):
            if block.get("type") == "tool_use":
                if interrupted:
                    continue  # a call cut short is never run, nor sent back
                raw = self._raw_arguments(index, block)
                ident = str(block.get("id") or f"toolu_{index}")
                while ident in seen:
                    ident = f"{ident}_{index}"
                seen.add(ident)
                block = {**block, "id": ident, "input": tool_input(raw)}
                calls.append(ToolCall(id=ident, name=str(block.get("name", "")), arguments=raw))
            blocks.append(block)
        thinking = [b["thinking"] for b in blocks if b.get("type") == "thinking"]
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        return Message(
            role="assistant",
            content=text or None,
            reasoning="".join(thinking) if thinking else None,
            reasoning_field=REASONING_FIELD if thinking else None,
            blocks=tuple(blocks),
            tool_calls=tuple(calls),
            interrupted=interrupted,
            usage=usage,
            model=model,
        )

    def _raw_arguments(self, index: int, block: dict[str, Any]) -> str:
        """The call's input exactly as streamed; a server that sent it whole in the start
        event (no deltas) has it serialised."""
        pieces = self.arguments.get(index)
        if pieces:
            return "".join(pieces)
        given = block.get("input")
        return json.dumps(given, ensure_ascii=False) if given else "{}"

    def final_usage(self, price: Price | None) -> Usage | None:
        return usage_of(self.usage, price) if self.usage else None


def _has_content(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    if kind == "text":
        return bool(block.get("text"))
    if kind == "thinking":
        return bool(block.get("thinking") or block.get("signature"))
    return True


def fold(acc: BlockAccumulator, event: Any) -> Iterable[Event]:
    """Fold one stream event into the accumulator, yielding what the UI should see now."""
    if not isinstance(event, dict):
        return
    kind = event.get("type")
    if kind == "message_start":
        message = event.get("message") or {}
        _merge_usage(acc, message.get("usage"))
        for index, block in enumerate(message.get("content") or ()):
            if isinstance(block, dict):
                acc.blocks[index] = dict(block)
    elif kind == "content_block_start":
        yield from _start(acc, int(event.get("index", len(acc.blocks))), event)
    elif kind == "content_block_delta":
        yield from _delta(acc, int(event.get("index", 0)), event.get("delta") or {})
    elif kind == "message_delta":
        delta = event.get("delta") or {}
        if delta.get("stop_reason"):
            acc.stop_reason = str(delta["stop_reason"])
        _merge_usage(acc, event.get("usage"))
    elif kind == "message_stop":
        acc.finish_reason = acc.stop_reason or "end_turn"


def _start(acc: BlockAccumulator, index: int, event: dict[str, Any]) -> Iterable[Event]:
    block = dict(event.get("content_block") or {})
    kind = block.get("type")
    if kind == "thinking":
        block.setdefault("thinking", "")
        block.setdefault("signature", "")  # the format requires it back, even empty
        if block["thinking"]:
            acc.size += len(block["thinking"])
            yield Thinking(text=block["thinking"])
    elif kind == "text":
        block.setdefault("text", "")
        if block["text"]:
            acc.size += len(block["text"])
            yield Text(text=block["text"])
    elif kind == "tool_use":
        acc.arguments[index] = []
    acc.blocks[index] = block


def _delta(acc: BlockAccumulator, index: int, delta: dict[str, Any]) -> Iterable[Event]:
    kind = delta.get("type")
    if kind == "thinking_delta":
        block = acc.blocks.setdefault(index, {"type": "thinking", "thinking": "", "signature": ""})
        piece = str(delta.get("thinking") or "")
        block["thinking"] = block.get("thinking", "") + piece
        acc.size += len(piece)
        if piece:
            yield Thinking(text=piece)
    elif kind == "signature_delta":
        block = acc.blocks.setdefault(index, {"type": "thinking", "thinking": "", "signature": ""})
        block["signature"] = block.get("signature", "") + str(delta.get("signature") or "")
    elif kind == "text_delta":
        block = acc.blocks.setdefault(index, {"type": "text", "text": ""})
        piece = str(delta.get("text") or "")
        block["text"] = block.get("text", "") + piece
        acc.size += len(piece)
        if piece:
            yield Text(text=piece)
    elif kind == "input_json_delta":
        piece = str(delta.get("partial_json") or "")
        acc.arguments.setdefault(index, []).append(piece)
        acc.size += len(piece)
    elif kind == "citations_delta":
        block = acc.blocks.setdefault(index, {"type": "text", "text": ""})
        block.setdefault("citations", []).append(delta.get("citation"))


def _merge_usage(acc: BlockAccumulator, usage: Any) -> None:
    """message_start carries the input side, message_delta the (cumulative) output side; a
    later figure replaces an earlier one."""
    if isinstance(usage, dict):
        acc.usage.update({k: v for k, v in usage.items() if isinstance(v, int | float)})


def usage_of(raw: dict[str, Any], price: Price | None) -> Usage:
    """Anthropic usage in our fields: the prompt is the uncached input plus what was read from
    and written to the cache; the cached share is what was read."""
    fresh = int(raw.get("input_tokens") or 0)
    read = raw.get("cache_read_input_tokens")
    written = int(raw.get("cache_creation_input_tokens") or 0)
    usage = Usage(
        prompt_tokens=fresh + int(read or 0) + written,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=int(read) if read is not None else None,
    )
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cost_usd=cost_of(usage, price),
    )
