"""The scripted server's OpenAI chat-completions side: the SSE chunks of one scripted turn
(streamed reasoning, content and tool calls, with cuts), the plain completion, and the usage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qwen_agent_cli import scripted_anthropic as anthropic

if TYPE_CHECKING:
    from qwen_agent_cli.scripted import ScriptedServer


def usage(server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]) -> Any:
    if "usage" in script_turn:
        return script_turn["usage"]
    thinking = script_turn.get("thinking") or ""
    produced = len(thinking) + len(script_turn.get("text") or "")
    produced += sum(len(c["arguments"]) for c in anthropic.tool_calls(script_turn, "call_"))
    prompt = len(json.dumps(body.get("messages"))) // 4
    return {
        "prompt_tokens": prompt,
        "completion_tokens": produced // 4 + 1,
        "total_tokens": prompt + produced // 4 + 1,
        "prompt_tokens_details": {"cached_tokens": server.cached_tokens(body)},
        "completion_tokens_details": {"reasoning_tokens": len(thinking) // 4},
    }


def chunks(
    server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]
) -> Iterator[str | None]:
    """The SSE data payloads of one turn; None means: cut the connection here."""
    field = script_turn.get("reasoning_field", server.reasoning_field)
    count = int(script_turn.get("pieces", 3))
    cut = script_turn.get("cut")
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created}
        return json.dumps(
            {**data, "model": body.get("model", server.model), "choices": [choice], **top}
        )

    def call_chunk(index: int, ident: str, function: dict[str, str]) -> str:
        call = {"index": index, "id": ident, "type": "function", "function": function}
        return chunk({"tool_calls": [call]})

    if script_turn.get("empty"):
        yield chunk({"role": "assistant", "content": ""}, "stop")
        return
    yield chunk({"role": "assistant", "content": None, field: ""})
    while script_turn.get("endless"):  # until the client hangs up or the server stops
        yield chunk({"content": script_turn.get("text") or "and so on " * 100})
    thinking = anthropic.pieces(script_turn.get("thinking") or "", count)
    for index, piece in enumerate(thinking):
        if cut == "reasoning" and index == len(thinking) // 2:
            yield None
        yield chunk({field: piece})
    text = anthropic.pieces(script_turn.get("text") or "", count)
    for index, piece in enumerate(text):
        if cut == "content" and index == len(text) // 2:
            yield None
        yield chunk({"content": piece})
    calls = anthropic.tool_calls(script_turn, "call_")
    for index, call in enumerate(calls):
        yield call_chunk(index, call["id"], {"name": call["name"], "arguments": ""})
        parts = anthropic.pieces(call["arguments"], count)
        for number, part in enumerate(parts):
            if cut == "tool_args" and number == len(parts) // 2:
                yield None
            yield call_chunk(index, "", {"arguments": part})
    if cut:
        yield None
    yield chunk({"content": ""}, "tool_calls" if calls else "stop")
    yield chunk({}, choices=[], usage=usage(server, body, script_turn))


def completion(
    server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]
) -> dict[str, Any]:
    field = script_turn.get("reasoning_field", server.reasoning_field)
    calls = anthropic.tool_calls(script_turn, "call_")
    message: dict[str, Any] = {"role": "assistant", "content": script_turn.get("text") or ""}
    if script_turn.get("thinking"):
        message[field] = script_turn["thinking"]
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", server.model),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": usage(server, body, script_turn),
    }
