"""The Anthropic wire rules in isolation: the cached encoder writes what the plain rules say for
any history (grown, compacted, thinking dropped), interrupted turns stay sendable, and usage
maps onto the same fields and cost as on the OpenAI path."""

from __future__ import annotations

import dataclasses
import json

import pytest
from anthropic.types.message_create_params import MessageCreateParamsStreaming
from pydantic import TypeAdapter

from qwen_agent_cli.anthropic_stream import BlockAccumulator, fold, usage_of
from qwen_agent_cli.anthropic_wire import (
    INTERRUPTED_TEXT,
    AnthropicBodyEncoder,
    assistant_blocks,
    to_messages,
    tool_schema,
)
from qwen_agent_cli.profiles import Price, load_profiles
from qwen_agent_cli.types import Message, ToolCall

PROFILE = dataclasses.replace(load_profiles()["anthropic"], cache_control=False)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
]


def reply(thought: str, call_id: str | None = None, text: str | None = None) -> Message:
    blocks: list[dict[str, object]] = [{"type": "thinking", "thinking": thought, "signature": "s"}]
    calls: tuple[ToolCall, ...] = ()
    if text:
        blocks.append({"type": "text", "text": text})
    if call_id:
        blocks.append({"type": "tool_use", "id": call_id, "name": "read_file", "input": {}})
        calls = (ToolCall(id=call_id, name="read_file", arguments="{}"),)
    return Message(role="assistant", reasoning=thought, blocks=tuple(blocks), tool_calls=calls)


HISTORY = [
    Message(role="user", content="fix it"),
    reply("one", "t1"),
    Message(role="tool", tool_call_id="t1", content="file"),
    reply("two", text="done"),
    Message(role="user", content="again"),
    reply("three", "t2"),
    Message(role="tool", tool_call_id="t2", content="out", is_error=True),
]


@pytest.mark.parametrize("preserve", [True, False])
def test_the_cached_encoder_says_what_the_rules_say_at_every_step(preserve: bool) -> None:
    encoder = AnthropicBodyEncoder(PROFILE, thinking=True, preserve=preserve)
    adapter = TypeAdapter(MessageCreateParamsStreaming)
    growing: list[Message] = []
    for message in HISTORY:
        growing.append(message)
        if message.role == "assistant":
            continue
        body = json.loads(encoder.encode("SYS", growing, TOOLS))
        assert body["messages"] == to_messages(growing, preserve)
        assert body["system"] == "SYS"
        assert body["tools"] == [tool_schema(t) for t in TOOLS]
        adapter.validate_python(body)
    compacted = [Message(role="user", content="summary"), *HISTORY[-2:]]
    body = json.loads(encoder.encode("SYS", compacted, TOOLS))
    assert body["messages"] == to_messages(compacted, preserve)
    thoughts = [b.get("thinking") for m in body["messages"] for b in m["content"]]
    assert thoughts.count("three") == 1


def test_without_preservation_thinking_before_the_last_user_message_is_dropped() -> None:
    messages = to_messages(HISTORY, preserve=False)
    kinds = [[b["type"] for b in m["content"]] for m in messages if m["role"] == "assistant"]
    assert kinds == [["tool_use"], ["text"], ["thinking", "tool_use"]]
    assert messages[-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "t2", "content": "out", "is_error": True}
    ]


def test_an_interrupted_turn_goes_back_as_its_finished_text_or_a_note() -> None:
    acc = BlockAccumulator()
    for event in [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "half"},
        },
    ]:
        list(fold(acc, event))
    cut = acc.message("m", None, interrupted=True)
    assert cut.blocks == ({"type": "thinking", "thinking": "half", "signature": ""},)
    assert cut.reasoning == "half"
    assert assistant_blocks(cut, keep_thinking=True) == [{"type": "text", "text": INTERRUPTED_TEXT}]
    list(
        fold(
            acc,
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": "So far"},
            },
        )
    )
    list(
        fold(
            acc,
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "x", "name": "shell", "input": {}},
            },
        )
    )
    cut = acc.message("m", None, interrupted=True)
    assert cut.tool_calls == ()
    assert assistant_blocks(cut, keep_thinking=True) == [{"type": "text", "text": "So far"}]


def test_the_cache_marks_move_to_the_newest_message_and_leave_the_rest_byte_stable() -> None:
    profile = dataclasses.replace(PROFILE, cache_control=True)
    encoder = AnthropicBodyEncoder(profile, thinking=True, preserve=True)
    first = json.loads(encoder.encode("SYS", HISTORY[:3], TOOLS))
    second = json.loads(encoder.encode("SYS", HISTORY[:5], TOOLS))
    assert first["system"] == [
        {"type": "text", "text": "SYS", "cache_control": {"type": "ephemeral"}}
    ]
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in json.dumps(second["messages"][:-1])
    unmarked = {
        k: v for k, v in first["messages"][-1]["content"][-1].items() if k != "cache_control"
    }
    assert second["messages"][2]["content"][-1] == unmarked


def test_usage_maps_cache_reads_and_writes_onto_the_prompt_and_prices_them() -> None:
    usage = usage_of(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 800,
            "cache_creation_input_tokens": 100,
            "output_tokens": 50,
        },
        Price(input=1.0, output=10.0, cached_input=0.1),
    )
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (1000, 800, 50)
    assert usage.cost_usd == pytest.approx((200 * 1.0 + 800 * 0.1 + 50 * 10.0) / 1_000_000)
    assert usage_of({"input_tokens": 5, "output_tokens": 1}, None).cached_tokens is None


def test_a_tool_with_no_parameters_gets_an_empty_object_schema() -> None:
    assert tool_schema({"type": "function", "function": {"name": "noop"}}) == {
        "name": "noop",
        "input_schema": {"type": "object", "properties": {}},
    }
