"""The wire rules for thinking (DESIGN §4, wire-formats.md): how the history is written into a
chat-completions request for each provider profile, and the request body qac serialises itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from qwen_agent_cli.images import openai_part
from qwen_agent_cli.profiles import Profile
from qwen_agent_cli.text import encodable
from qwen_agent_cli.types import Message


def to_request(
    system: str,
    messages: Sequence[Message],
    profile: Profile,
    *,
    thinking: bool,
    preserve: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build the wire messages and the extra body fields for one request.

    With preservation on, every assistant message carries its reasoning in the profile's
    field(s) and the profile's switch is a JSON `true`. Off, reasoning before the last user
    message is dropped and no switch is sent, as the chat templates do by default.
    """
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for message, keep in zip(messages, keeps_reasoning(messages, preserve), strict=True):
        wire.append(wire_message(message, profile, keep))
    return wire, switches(profile, thinking=thinking, preserve=preserve)


def keeps_reasoning(messages: Sequence[Message], preserve: bool) -> list[bool]:
    """Per message, whether its reasoning goes on the wire: always with preservation, else only
    after the last user message (what the chat templates keep by default)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return [preserve or index > last_user for index in range(len(messages))]


def wire_message(message: Message, profile: Profile, keep_reasoning: bool) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": _content(message)}
    if message.role != "assistant":
        return {"role": message.role, "content": _content(message)}
    out: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if keep_reasoning:
        fields = profile.reasoning_fields
        if "reasoning_details" in fields and message.reasoning_details:
            out["reasoning_details"] = list(message.reasoning_details)
        elif message.reasoning is not None:
            for name in fields:
                if name != "reasoning_details":
                    out[name] = message.reasoning
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": wire_arguments(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return out


def _content(message: Message) -> str | list[dict[str, Any]]:
    """Text, or with images a list of parts: the images first, then the text."""
    if not message.images:
        return message.content or ""
    parts = [openai_part(image) for image in message.images]
    return [*parts, {"type": "text", "text": message.content or ""}]


@functools.lru_cache(maxsize=8192)
def wire_arguments(raw: str) -> str:
    """A call's arguments as sent back: always a JSON object. The raw text stays in the store
    and on screen, but a server may refuse a whole request whose earlier call holds broken JSON
    (SGLang answers 400), and that would end the session for good; the raw text goes along in
    the object so the model still sees what it wrote."""
    if not raw.strip():
        return "{}"
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return raw
    return json.dumps({"invalid_arguments": raw}, ensure_ascii=False)


def switches(profile: Profile, *, thinking: bool, preserve: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if profile.thinking_switch == "top_level":
        body["enable_thinking"] = thinking
    elif profile.thinking_switch == "chat_template_kwargs":
        body["chat_template_kwargs"] = {"enable_thinking": thinking}
    elif profile.thinking_switch == "reasoning_effort" and not thinking:
        body["reasoning_effort"] = "none"
    elif profile.thinking_switch == "openrouter":
        body["reasoning"] = {"enabled": thinking}
    if preserve and profile.honours_preserve(profile.model):
        if profile.preserve_switch == "top_level":
            body["preserve_thinking"] = True
        elif profile.preserve_switch == "chat_template_kwargs":
            body.setdefault("chat_template_kwargs", {})["preserve_thinking"] = True
    return body


def json_bytes(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # the agent repairs such text as it enters; this is a last line
        return encodable(text).encode("utf-8")


class BodyEncoder:
    """Serialises requests message by message: each message's JSON is kept while the history
    still starts with it, so a step costs about the same at step 300 as at step 3 (the SDK's
    own request-building pass walked every message of every request). Same rules as
    `to_request`. With preservation on, the agent's history list only grows between requests,
    so only its new messages are encoded and appended to the joined bytes."""

    def __init__(self, profile: Profile, *, thinking: bool, preserve: bool) -> None:
        self.profile = profile
        self.thinking = thinking
        self.preserve = preserve
        self._encoded: list[tuple[Message, bool, bytes]] = []
        self._source: Sequence[Message] | None = None
        self._joined = bytearray()

    def encode(
        self, system: str, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> bytes:
        if not self._extends(messages):
            self._rebuild(messages)
        for message in messages[len(self._encoded) :]:
            fragment = json_bytes(wire_message(message, self.profile, True))
            self._encoded.append((message, True, fragment))
            self._joined += b", " + fragment
        head: dict[str, Any] = {
            "model": self.profile.model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            head["tools"] = list(tools)
        if self.profile.max_tokens:
            head[self.profile.max_tokens_field] = self.profile.max_tokens
        head.update(switches(self.profile, thinking=self.thinking, preserve=self.preserve))
        system_part = json_bytes({"role": "system", "content": system})
        return b"".join(
            (b'{"messages": [', system_part, self._joined, b"], ", json_bytes(head)[1:])
        )

    def _extends(self, messages: Sequence[Message]) -> bool:
        """The same list as last time, grown only: its last known message is still in place."""
        done = len(self._encoded)
        return (
            self.preserve
            and messages is self._source
            and len(messages) >= done
            and (done == 0 or messages[done - 1] is self._encoded[-1][0])
        )

    def _rebuild(self, messages: Sequence[Message]) -> None:
        """Encode the whole history again, reusing each message still at its place."""
        cache = self._encoded
        encoded: list[tuple[Message, bool, bytes]] = []
        keeps = keeps_reasoning(messages, self.preserve)
        for index, (message, keep) in enumerate(zip(messages, keeps, strict=True)):
            if index < len(cache) and cache[index][0] is message and cache[index][1] == keep:
                encoded.append(cache[index])
            else:
                wire = wire_message(message, self.profile, keep)
                encoded.append((message, keep, json_bytes(wire)))
        self._encoded, self._source = encoded, messages
        self._joined = bytearray(b"".join(b", " + fragment for _, _, fragment in encoded))
