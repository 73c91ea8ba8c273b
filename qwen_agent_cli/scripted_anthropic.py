"""The Anthropic Messages side of the scripted model server: the same scripted turns encoded as
Messages SSE events (or one Message JSON), Anthropic error bodies, and the request checks that
matter for this protocol (a cacheable prefix, tool_use/tool_result pairing, signed thinking).

Standard library only and free of server state, so `scripted.py` stays the one router. Turn keys
used only here: `redacted` (list of redacted_thinking data strings), `signature` (the thinking
block's signature, default ""), `stream_error` ({type, message}: an `event: error` after the first
block starts).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
USAGE_KEYS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
    }
)
"""The keys of a turn's `usage` that apply here (an OpenAI-style usage dict is ignored)."""

Frame = bytes | None
"""One encoded SSE event; None means: drop the connection here."""


def error_body(status: int, fault: dict[str, Any]) -> dict[str, Any]:
    """The body of an Anthropic HTTP error, typed from the status unless the fault names it."""
    kind = fault.get("type") or ERROR_TYPES.get(status, "api_error")
    message = fault.get("message", f"scripted fault {status}")
    return {"type": "error", "error": {"type": kind, "message": message}}


def pieces(text: str, count: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(count, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def tool_calls(script_turn: dict[str, Any], prefix: str = "toolu_") -> list[dict[str, str]]:
    """The turn's tool calls with raw JSON arguments, for both protocols; an id is the call's own,
    else `same_id`, else `prefix` + index + a hash of the arguments."""
    calls = []
    for index, call in enumerate(script_turn.get("tool_calls") or []):
        args = call.get("arguments", {})
        raw = args if isinstance(args, str) else json.dumps(args)
        ident = call.get("id") or script_turn.get("same_id")
        calls.append(
            {
                "id": ident or f"{prefix}{index}_{zlib.crc32(raw.encode()):08x}",
                "name": call["name"],
                "arguments": raw,
            }
        )
    return calls


def prompt_json(body: dict[str, Any]) -> str:
    """What the prompt estimate and the cache-hit estimate measure, in cache order."""
    return json.dumps([body.get("tools"), body.get("system"), body.get("messages")])


def usage(
    body: dict[str, Any], previous: dict[str, Any] | None, script_turn: dict[str, Any]
) -> dict[str, Any]:
    """A plausible usage object: the JSON prefix shared with the previous request, // 4, counts as
    read from the cache; a turn's `usage` overrides any of its keys (`output_tokens` included)."""
    now = prompt_json(body)
    shared = 0
    if previous is not None:
        for x, y in zip(prompt_json(previous), now, strict=False):
            if x != y:
                break
            shared += 1
    cached = shared // 4
    produced = len(script_turn.get("thinking") or "") + len(script_turn.get("text") or "")
    produced += sum(len(c["arguments"]) for c in tool_calls(script_turn))
    data: dict[str, Any] = {
        "input_tokens": max(0, len(now) // 4 - cached),
        "output_tokens": produced // 4 + 1,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }
    extra = script_turn.get("usage")
    if isinstance(extra, dict):
        data.update({k: v for k, v in extra.items() if k in USAGE_KEYS})
    return data


def _blocks(script_turn: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]], int]]:
    """(start block, deltas, index of the delta to cut before or -1) for each content block."""
    count = int(script_turn.get("pieces", 3))
    cut = script_turn.get("cut")
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]], int]] = []
    for data in script_turn.get("redacted") or []:
        blocks.append(({"type": "redacted_thinking", "data": data}, [], -1))
    if script_turn.get("thinking") is not None:
        parts = pieces(script_turn["thinking"], count)
        deltas = [{"type": "thinking_delta", "thinking": p} for p in parts]
        deltas.append({"type": "signature_delta", "signature": script_turn.get("signature", "")})
        start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        blocks.append((start, deltas, len(parts) // 2 if cut == "reasoning" and parts else -1))
    if script_turn.get("text"):
        parts = pieces(script_turn["text"], count)
        deltas = [{"type": "text_delta", "text": p} for p in parts]
        blocks.append(
            ({"type": "text", "text": ""}, deltas, len(parts) // 2 if cut == "content" else -1)
        )
    for call in tool_calls(script_turn):
        parts = pieces(call["arguments"], count)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
        start = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
        blocks.append((start, deltas, len(parts) // 2 if cut == "tool_args" and parts else -1))
    return blocks


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def events(
    body: dict[str, Any], script_turn: dict[str, Any], usage_data: dict[str, Any], model: str
) -> Iterator[Frame]:
    """The SSE events of one turn, as the Messages API streams them."""
    start_usage = {**usage_data, "output_tokens": 1}
    message = {
        "id": f"msg_scripted_{zlib.crc32(json.dumps(body).encode()):08x}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", model),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    yield _event("message_start", {"message": message})
    yield _event("ping", {})
    if script_turn.get("endless"):  # until the client hangs up or the server stops
        yield _event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        text = script_turn.get("text") or "and so on " * 100
        while True:
            yield _event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}}
            )
    failure = script_turn.get("stream_error")
    blocks = [] if script_turn.get("empty") else _blocks(script_turn)
    for index, (start, deltas, cut_at) in enumerate(blocks):
        yield _event("content_block_start", {"index": index, "content_block": start})
        if failure:
            break
        for number, delta in enumerate(deltas):
            if number == cut_at:
                yield None
            yield _event("content_block_delta", {"index": index, "delta": delta})
        yield _event("content_block_stop", {"index": index})
    if failure:
        kind = failure.get("type", "overloaded_error")
        error = {"type": kind, "message": failure.get("message", f"scripted {kind}")}
        yield _event("error", {"error": error})
        return
    if script_turn.get("cut"):
        yield None
    stop = "tool_use" if any(b[0]["type"] == "tool_use" for b in blocks) else "end_turn"
    delta = {"stop_reason": stop, "stop_sequence": None}
    yield _event(
        "message_delta", {"delta": delta, "usage": {"output_tokens": usage_data["output_tokens"]}}
    )
    yield _event("message_stop", {})


def message(
    body: dict[str, Any], script_turn: dict[str, Any], usage_data: dict[str, Any], model: str
) -> dict[str, Any]:
    """The whole Message of a non-streaming request. Broken scripted tool JSON is sent as the raw
    string in `input`, so a client that parses it sees the breakage."""
    content: list[dict[str, Any]] = []
    if not script_turn.get("empty"):
        for data in script_turn.get("redacted") or []:
            content.append({"type": "redacted_thinking", "data": data})
        if script_turn.get("thinking") is not None:
            signature = script_turn.get("signature", "")
            content.append(
                {"type": "thinking", "thinking": script_turn["thinking"], "signature": signature}
            )
        if script_turn.get("text"):
            content.append({"type": "text", "text": script_turn["text"]})
        for call in tool_calls(script_turn):
            try:
                args: Any = json.loads(call["arguments"])
            except json.JSONDecodeError:
                args = call["arguments"]
            content.append(
                {"type": "tool_use", "id": call["id"], "name": call["name"], "input": args}
            )
    stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": f"msg_scripted_{zlib.crc32(json.dumps(body).encode()):08x}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", model),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_data,
    }


def _plain(value: Any) -> Any:
    """`value` without any `cache_control` key: a client moves that marker to the newest turn."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _canonical(messages: list[Any]) -> list[str]:
    out = []
    for m in _plain(messages):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            m = {**m, "content": [{"type": "text", "text": m["content"]}]}
        out.append(json.dumps(m, sort_keys=True, ensure_ascii=False))
    return out


def _system(value: Any) -> Any:
    return [{"type": "text", "text": value}] if isinstance(value, str) else _plain(value)


def _blocks_of(message: Any, kind: str) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def check_request(body: dict[str, Any], previous: dict[str, Any] | None, number: int) -> list[str]:
    """The violations of Anthropic request `number`; `previous` (None: no prefix check) is the
    request it must extend with an unchanged system prompt and tools."""
    found: list[str] = []
    messages = body.get("messages") or []
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if "developer" in roles or "system" in roles:
        found.append(f"request {number}: a system or developer role inside messages")
    if not roles or roles[0] != "user":
        found.append(f"request {number}: messages must start with a user message")
    for index, m in enumerate(messages):
        results = {b.get("tool_use_id") for b in _blocks_of(m, "tool_result")}
        before = messages[index - 1] if index and roles[index - 1] == "assistant" else None
        asked = {b.get("id") for b in _blocks_of(before, "tool_use")}
        if results - asked:
            found.append(f"request {number}: tool_result without a tool_use just before it")
        if roles[index] == "assistant" and index + 1 < len(messages):
            answered = {
                b.get("tool_use_id") for b in _blocks_of(messages[index + 1], "tool_result")
            }
            if {b.get("id") for b in _blocks_of(m, "tool_use")} - answered:
                found.append(
                    f"request {number}: tool_use without a tool_result in the next message"
                )
        if any("signature" not in b for b in _blocks_of(m, "thinking")):
            found.append(f"request {number}: a thinking block without its signature")
    if previous is None:
        return found
    before_messages = _canonical(previous.get("messages") or [])
    if _canonical(messages)[: len(before_messages)] != before_messages:
        found.append(f"request {number} does not extend request {number - 1}")
    if _system(previous.get("system")) != _system(body.get("system")):
        found.append(f"request {number} changed the system prompt")
    if _plain(previous.get("tools")) != _plain(body.get("tools")):
        found.append(f"request {number} changed the tools")
    return found
