"""The wire rules for the Anthropic Messages format (wire-formats.md, "Anthropic Messages").

An assistant turn that arrived in this format goes back as its stored content blocks, unmodified
and in arrival order: `thinking` with its signature (even an empty one), `redacted_thinking`
with its data, `text`, `tool_use`. One from the other format (a session resumed across formats)
is written as blocks from its text: its reasoning as a thinking block with an empty signature,
since a signature cannot travel. The results of one turn's calls go back as `tool_result`
blocks of one user message, in call order. Requests only grow: system, tools and every earlier
message are byte-stable, so the server's prefix cache hits; with `cache_control` on, the
system prompt, the tools and the newest message are marked for it (the marker moves to each new
newest message; servers key their cache on the content, not on the marker).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from qwen_agent_cli.images import anthropic_block
from qwen_agent_cli.profiles import Profile
from qwen_agent_cli.types import Message
from qwen_agent_cli.wire import json_bytes, keeps_reasoning

CACHE_MARK = {"type": "ephemeral"}
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
INTERRUPTED_TEXT = "(this answer was interrupted)"
"""What an interrupted turn with no finished text says: the format needs non-empty content."""


def tool_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions tool (`{"type": "function", "function": {...}}`) as an Anthropic tool."""
    function = tool.get("function", tool)
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = schema
    return out


def thinking_param(profile: Profile, thinking: bool) -> dict[str, Any]:
    if not thinking:
        return {"type": "disabled"}
    return {"type": "enabled", "budget_tokens": profile.thinking_budget}


def tool_input(raw: str) -> dict[str, Any]:
    """A call's arguments as the `input` object the format requires: the parsed object, or the
    raw text inside one when the model wrote broken JSON (the model still sees what it wrote,
    and a server cannot refuse the whole history over one bad call)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"invalid_arguments": raw}


def assistant_blocks(message: Message, keep_thinking: bool) -> list[dict[str, Any]]:
    """The content of one assistant message on this format."""
    if message.blocks is not None:
        out = [
            block
            for block in message.blocks
            if _sendable(block, keep_thinking and not message.interrupted)
        ]
    else:
        out = []
        if keep_thinking and message.reasoning and not message.interrupted:
            out.append({"type": "thinking", "thinking": message.reasoning, "signature": ""})
        if message.content:
            out.append({"type": "text", "text": message.content})
        for call in message.tool_calls:
            out.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": tool_input(call.arguments),
                }
            )
    if message.interrupted:
        out = [block for block in out if block.get("type") != "tool_use"]
    if not out:
        out = [{"type": "text", "text": INTERRUPTED_TEXT if message.interrupted else "(no text)"}]
    return out


def _sendable(block: dict[str, Any], keep_thinking: bool) -> bool:
    kind = block.get("type")
    if kind in THINKING_BLOCKS:
        return keep_thinking
    if kind == "text":
        return bool(block.get("text"))  # the API refuses empty text blocks
    return True


def user_content(message: Message) -> list[dict[str, Any]]:
    """The images first (as the format recommends), then the text."""
    text = {"type": "text", "text": message.content or "(empty message)"}
    return [*(anthropic_block(image) for image in message.images), text]


def tool_result(message: Message) -> dict[str, Any]:
    content: str | list[dict[str, Any]] = message.content or ""
    if message.images:
        content = [{"type": "text", "text": message.content or "(no text)"}]
        content += [anthropic_block(image) for image in message.images]
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": message.tool_call_id,
        "content": content,
    }
    if message.is_error:
        block["is_error"] = True
    return block


def to_messages(messages: Sequence[Message], preserve: bool) -> list[dict[str, Any]]:
    """The whole history as Anthropic messages (the encoder below does the same, cached)."""
    out: list[dict[str, Any]] = []
    for message, keep in zip(messages, keeps_reasoning(messages, preserve), strict=True):
        if message.role == "tool":
            if out and out[-1].get("_results"):
                out[-1]["content"].append(tool_result(message))
            else:
                out.append({"role": "user", "content": [tool_result(message)], "_results": True})
        elif message.role == "assistant":
            out.append({"role": "assistant", "content": assistant_blocks(message, keep)})
        else:
            out.append({"role": "user", "content": user_content(message)})
    for item in out:
        item.pop("_results", None)
    return out


class AnthropicBodyEncoder:
    """Serialises requests piece by piece: each message's JSON (each tool result's, for the
    grouped results) is kept while the same message object is in the same place with the same
    thinking rule. With preservation on, the agent's history only grows between requests, so
    the joined bytes of every finished wire message are kept too and only the new messages are
    encoded: a step costs about the same at step 300 as at step 3."""

    def __init__(self, profile: Profile, *, thinking: bool, preserve: bool) -> None:
        self.profile = profile
        self.thinking = thinking
        self.preserve = preserve
        self._pieces: dict[int, tuple[Message, bool, bytes]] = {}
        self._previous: dict[int, tuple[Message, bool, bytes]] = {}
        self._tools_key: tuple[int, int] | None = None
        self._tools_json = b""
        self._source: Sequence[Message] | None = None
        self._closed = bytearray()
        """The joined wire messages before the newest one of the last request: final, since
        a later request only adds messages after them."""
        self._closed_count = 0
        self._closed_last: Message | None = None

    def encode(
        self, system: str, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> bytes:
        start = self._closed_count if self._extends(messages) else 0
        if start == 0:  # a new history: keep only the pieces it still uses
            self._closed, self._previous, self._pieces = bytearray(), self._pieces, {}
        keeps = [True] * len(messages) if self.preserve else keeps_reasoning(messages, False)
        units: list[tuple[int, bytes]] = []  # (index of its first message, JSON)
        results: list[bytes] = []
        last = len(messages) - 1
        for index in range(start, len(messages)):
            message = messages[index]
            mark = self.profile.cache_control and index == last
            piece = self._piece(message, keeps[index], mark)
            if message.role != "tool":
                units.append((index, piece))
                continue
            results.append(piece)
            if index == last or messages[index + 1].role != "tool":
                first = index - len(results) + 1
                units.append(
                    (first, b'{"role": "user", "content": [' + b", ".join(results) + b"]}")
                )
                results = []
        joined = b", ".join(part for _, part in units)
        glue = b", " if self._closed and joined else b""
        head: dict[str, Any] = {"model": self.profile.model, "max_tokens": self.profile.max_tokens}
        head["stream"] = True
        if self.profile.cache_control:
            head["system"] = [{"type": "text", "text": system, "cache_control": CACHE_MARK}]
        else:
            head["system"] = system
        head["thinking"] = thinking_param(self.profile, self.thinking)
        prefix = json_bytes(head)[:-1]
        if tools:
            prefix += b', "tools": ' + self._tools(tools)
        body = b"".join((prefix, b', "messages": [', self._closed, glue, joined, b"]}"))
        if units:  # all but the newest wire message are final: keep their bytes
            finished = b", ".join(part for _, part in units[:-1])
            self._closed += (b", " if self._closed and finished else b"") + finished
            self._closed_count = units[-1][0]
            self._closed_last = messages[self._closed_count - 1] if self._closed_count else None
        self._source, self._previous = messages, {}
        return body

    def _extends(self, messages: Sequence[Message]) -> bool:
        """The same list as last time, grown only: its last finished message is still in
        place (without preservation a new user message changes earlier messages: rebuild)."""
        done = self._closed_count
        return (
            self.preserve
            and messages is self._source
            and len(messages) >= done
            and (done == 0 or messages[done - 1] is self._closed_last)
        )

    def _piece(self, message: Message, keep: bool, mark: bool) -> bytes:
        """One message's JSON (a tool result's block), from the cache when nothing changed;
        the newest message, when marked for the cache, is encoded afresh each time."""
        key = id(message)
        cached = self._pieces.get(key) or self._previous.get(key)
        if not mark and cached is not None and cached[0] is message and cached[1] == keep:
            self._pieces[key] = cached
            return cached[2]
        wire = self._wire(message, keep)
        if mark:
            if message.role == "tool":
                wire = {**wire, "cache_control": CACHE_MARK}
            else:
                blocks = list(wire["content"])
                blocks[-1] = {**blocks[-1], "cache_control": CACHE_MARK}
                wire = {**wire, "content": blocks}
            return json_bytes(wire)
        encoded = json_bytes(wire)
        self._pieces[key] = (message, keep, encoded)
        return encoded

    @staticmethod
    def _wire(message: Message, keep: bool) -> dict[str, Any]:
        if message.role == "tool":
            return tool_result(message)
        if message.role == "assistant":
            return {"role": "assistant", "content": assistant_blocks(message, keep)}
        return {"role": "user", "content": user_content(message)}

    def _tools(self, tools: Sequence[dict[str, Any]]) -> bytes:
        key = (id(tools), len(tools))
        if key != self._tools_key:
            converted = [tool_schema(tool) for tool in tools]
            if self.profile.cache_control and converted:
                converted[-1] = {**converted[-1], "cache_control": CACHE_MARK}
            self._tools_json = json_bytes(converted)
            self._tools_key = key
        return self._tools_json
