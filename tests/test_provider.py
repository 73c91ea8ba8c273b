"""The wire rules and usage normalisation of the provider layer (wire-formats.md)."""

from __future__ import annotations

import json
from pathlib import Path

from qwen_agent_cli.profiles import Price, load_profiles
from qwen_agent_cli.provider import Provider
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.stream import cost_of
from qwen_agent_cli.types import Message, ToolCall, Usage
from qwen_agent_cli.wire import BodyEncoder, to_request

PROFILES = load_profiles()
HISTORY = [
    Message(role="user", content="fix"),
    Message(
        role="assistant",
        content="",
        reasoning="R1",
        reasoning_field="reasoning_content",
        tool_calls=(ToolCall("c1", "read_file", '{"path":"a"}'),),
    ),
    Message(role="tool", content="out", tool_call_id="c1", name="read_file"),
    Message(role="assistant", content="done", reasoning="R2"),
    Message(role="user", content="next"),
]


def test_dashscope_request_body():
    wire, extra = to_request("SYS", HISTORY, PROFILES["dashscope"], thinking=True, preserve=True)
    assert extra == {"enable_thinking": True, "preserve_thinking": True}
    assert wire[0] == {"role": "system", "content": "SYS"}
    assert wire[2] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "R1",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path":"a"}'},
            }
        ],
    }
    assert wire[3] == {"role": "tool", "tool_call_id": "c1", "content": "out"}


def test_thinking_off_and_preserve_off():
    _, extra = to_request("S", HISTORY, PROFILES["vllm"], thinking=False, preserve=False)
    assert extra == {"chat_template_kwargs": {"enable_thinking": False}}
    wire, _ = to_request("S", HISTORY, PROFILES["vllm"], thinking=True, preserve=False)
    assert "reasoning" not in wire[2]
    assert "reasoning" not in wire[4]
    _, ollama = to_request("S", HISTORY, PROFILES["ollama"], thinking=False, preserve=True)
    assert ollama == {"reasoning_effort": "none"}


def test_openrouter_sends_reasoning_details_unchanged():
    details = ({"type": "reasoning.text", "text": "R1", "format": "unknown", "index": 0},)
    history = [
        Message(role="user", content="x"),
        Message(role="assistant", content="a", reasoning="R1", reasoning_details=details),
    ]
    wire, extra = to_request("S", history, PROFILES["openrouter"], thinking=True, preserve=True)
    assert wire[2]["reasoning_details"] == list(details)
    assert "reasoning" not in wire[2]
    assert extra == {"reasoning": {"enabled": True}}


def test_cost_uses_the_price_table_and_cached_price():
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, cached_tokens=500_000)
    assert cost_of(usage, Price(input=1.30, output=7.80)) == 1.30 + 0.78
    cheaper = cost_of(usage, Price(input=1.0, output=1.0, cached_input=0.1))
    assert round(cheaper, 6) == round(0.5 + 0.05 + 0.1, 6)
    assert cost_of(usage, None, reported=0.002) == 0.002


def stream_once(server: ScriptedServer, turn_data: dict[str, object], profile: str = "vllm"):
    server.script(turn_data)
    profile_obj = PROFILES[profile]
    from dataclasses import replace

    provider = Provider(replace(profile_obj, base_url=server.url), "k", price=None)
    events = []
    generator = provider.stream("S", [Message(role="user", content="hi")], [])
    try:
        while True:
            events.append(next(generator))
    except StopIteration as stop:
        return events, stop.value


def test_usage_variants_are_normalised(tmp_path: Path):
    variants = {
        "dashscope": (
            {
                "prompt_tokens": 200,
                "completion_tokens": 75,
                "prompt_tokens_details": {"cached_tokens": 120, "cache_creation_input_tokens": 50},
                "completion_tokens_details": {"reasoning_tokens": 25},
            },
            (200, 75, 120, 25),
        ),
        "vllm": (
            {"prompt_tokens": 900, "completion_tokens": 50, "prompt_tokens_details": None},
            (900, 50, None, None),
        ),
        "sglang": (
            {
                "prompt_tokens": 900,
                "completion_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 640},
                "reasoning_tokens": 31,
            },
            (900, 50, 640, 31),
        ),
    }
    with ScriptedServer() as server:
        for raw, expected in variants.values():
            _, message = stream_once(server, turn(text="x", usage=raw))
            usage = message.usage
            assert (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens,
            ) == expected


def test_streamed_reasoning_is_kept_verbatim_with_its_field():
    thinking = "  line one\n\n\tline two  \n"
    with ScriptedServer(reasoning_field="reasoning") as server:
        events, message = stream_once(
            server, turn(thinking=thinking, pieces=7, tool_call=("grep", {"pattern": "x"}))
        )
    assert message.reasoning == thinking
    assert message.reasoning_field == "reasoning"
    assert "".join(e.text for e in events) == thinking
    assert message.tool_calls[0].name == "grep"
    assert message.tool_calls[0].arguments == '{"pattern": "x"}'


def test_the_body_encoder_sends_what_to_request_builds_as_the_history_grows_or_is_replaced():
    """The encoder keeps each message's JSON between requests; whatever the history does
    (grow, get a new user turn, be replaced by a compacted one), the body must say exactly what
    `to_request` says."""
    for preserve in (True, False):
        profile = PROFILES["vllm"]
        encoder = BodyEncoder(profile, thinking=True, preserve=preserve)
        history: list[Message] = []
        for message in HISTORY:
            history.append(message)  # the agent's one list, grown in place
            body = json.loads(encoder.encode("SYS", history, []))
            wire, extra = to_request("SYS", history, profile, thinking=True, preserve=preserve)
            assert body["messages"] == wire, (preserve, len(history))
            assert {k: body[k] for k in extra} == extra
        compacted = [Message(role="user", content="summary"), *HISTORY[-2:]]
        body = json.loads(encoder.encode("SYS", compacted, []))
        assert (
            body["messages"]
            == to_request("SYS", compacted, profile, thinking=True, preserve=preserve)[0]
        )
