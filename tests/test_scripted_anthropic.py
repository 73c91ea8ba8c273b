"""The scripted server's Anthropic Messages side, through the real `anthropic` SDK: what a client
built on it sees for content, faults and cut streams, and what the request checks flag."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.scripted_anthropic import check_request

USER: Any = {"role": "user", "content": "fix the failing test"}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(check_prefix=False) as scripted:
        yield scripted


def client_for(server: ScriptedServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0)


def create(client: anthropic.Anthropic, messages: list[Any] | None = None, **extra: Any) -> Any:
    return client.messages.create(
        model="qwen3.6-plus", max_tokens=1024, messages=messages or [USER], **extra
    )


def drain(stream: Any, seen: list[str]) -> None:
    """Iterate a stream to its end, noting each event's type, so a test sees how far it got."""
    for event in stream:
        seen.append(event.type)


def test_thinking_signature_text_and_tool_use_arrive_intact(server: ScriptedServer):
    server.script(
        turn(
            thinking="The test fails because add subtracts.",
            signature="sig-123",
            redacted=["opaque-blob"],
            text="Reading calc.py.",
            tool_call=("read_file", {"path": "calc.py"}),
            pieces=4,
        )
    )
    client = client_for(server)
    with client.messages.stream(model="qwen3.6-plus", max_tokens=1024, messages=[USER]) as stream:
        message = stream.get_final_message()
    blocks = [block.to_dict() for block in message.content]
    assert blocks[0] == {"type": "redacted_thinking", "data": "opaque-blob"}
    assert blocks[1] == {
        "type": "thinking",
        "thinking": "The test fails because add subtracts.",
        "signature": "sig-123",
    }
    assert blocks[2]["type"] == "text"
    assert blocks[2]["text"] == "Reading calc.py."
    assert blocks[3]["type"] == "tool_use"
    assert blocks[3]["name"] == "read_file"
    assert blocks[3]["input"] == {"path": "calc.py"}
    assert str(blocks[3]["id"]).startswith("toolu_")
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 1
    assert server.formats == ["anthropic"]
    assert server.credentials == ["Bearer k"]
    assert server.violations == []


def test_raw_events_and_an_empty_signature(server: ScriptedServer):
    server.script(turn(thinking="hm", text="done", pieces=1))
    events = list(create(client_for(server), stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    signatures = [e.delta for e in events if e.type == "content_block_delta"]
    assert signatures[1].type == "signature_delta"
    assert signatures[1].signature == ""
    assert events[-2].delta.stop_reason == "end_turn"


def test_broken_tool_json_arrives_raw(server: ScriptedServer):
    broken = '{"path": "calc.py", "content": "unterminated'
    server.script(turn(tool_call=("write_file", broken), pieces=3))
    events = list(create(client_for(server), stream=True))
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert partial == broken


def test_plain_request_gets_a_message(server: ScriptedServer):
    server.script(turn(text="hello", usage={"input_tokens": 7, "prompt_tokens": 99}))
    message = create(client_for(server))
    assert message.content[0].text == "hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 7


def test_529_is_an_overloaded_status_error(server: ScriptedServer):
    server.script(turn(fault={"status": 529, "message": "busy"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        create(client_for(server), stream=True)
    assert caught.value.status_code == 529
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


def test_429_carries_retry_after(server: ScriptedServer):
    server.script(turn(fault={"status": 429, "retry_after": 7}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(client_for(server), stream=True)
    assert caught.value.response.headers["retry-after"] == "7"


def test_stream_error_raises_while_iterating(server: ScriptedServer):
    server.script(turn(text="x", stream_error={"type": "overloaded_error", "message": "busy"}))
    seen: list[str] = []
    stream = create(client_for(server), stream=True)
    with pytest.raises(anthropic.APIStatusError, match="busy"):
        drain(stream, seen)
    assert seen == ["message_start", "content_block_start"]


@pytest.mark.parametrize("cut", ["reasoning", "content", "tool_args"])
def test_a_cut_drops_the_connection(server: ScriptedServer, cut: str):
    server.script(
        turn(thinking="long thought", text="some text", tool_call=("t", {"a": 1}), cut=cut)
    )
    seen: list[str] = []
    stream = create(client_for(server), stream=True)
    with pytest.raises(anthropic.APIConnectionError):
        drain(stream, seen)
    assert "message_stop" not in seen
    assert "content_block_delta" in seen


def test_the_prefix_check_ignores_cache_control_but_not_edits():
    with ScriptedServer() as server:
        server.script(turn(text="a"), turn(text="b"), turn(text="c"))
        client = client_for(server)
        marker = {"type": "ephemeral"}
        system = [{"type": "text", "text": "SYS", "cache_control": marker}]
        create(client, [{"role": "user", "content": "one"}], system=system)
        second = [
            {"role": "user", "content": [{"type": "text", "text": "one"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
            {"role": "user", "content": [{"type": "text", "text": "two", "cache_control": marker}]},
        ]
        create(client, second, system=[{"type": "text", "text": "SYS"}])
        assert server.violations == []
        edited = [dict(second[0], content="ONE"), *second[1:]]
        create(client, edited, system=[{"type": "text", "text": "SYS"}])
        assert server.violations == ["request 3 does not extend request 2"]


def test_request_checks():
    use = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    good = [
        USER,
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "", "signature": ""}, use],
        },
        {"role": "user", "content": [result]},
    ]
    assert check_request({"messages": good}, None, 1) == []
    unanswered = [USER, {"role": "assistant", "content": [use]}, USER]
    assert check_request({"messages": unanswered}, None, 1) == [
        "request 1: tool_use without a tool_result in the next message"
    ]
    orphan = [USER, {"role": "assistant", "content": "hi"}, {"role": "user", "content": [result]}]
    assert check_request({"messages": orphan}, None, 1) == [
        "request 1: tool_result without a tool_use just before it"
    ]
    unsigned = [USER, {"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}]
    assert check_request({"messages": unsigned}, None, 1) == [
        "request 1: a thinking block without its signature"
    ]
    system_inside = [{"role": "system", "content": "S"}, USER]
    assert check_request({"messages": system_inside}, None, 1) == [
        "request 1: a system or developer role inside messages",
        "request 1: messages must start with a user message",
    ]
    tools = {"messages": [USER], "tools": [{"name": "t", "input_schema": {}}]}
    assert check_request({"messages": [USER]}, tools, 2) == ["request 2 changed the tools"]


def test_x_api_key_is_recorded_without_authorization(server: ScriptedServer):
    server.script(turn(text="ok"))
    body = {"model": "m", "max_tokens": 5, "messages": [USER]}
    request = urllib.request.Request(
        server.anthropic_url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"x-api-key": "secret", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["content"] == [{"type": "text", "text": "ok"}]
    assert server.credentials == ["secret"]


def test_models_list_parses_in_both_sdks(server: ScriptedServer):
    assert [m.id for m in client_for(server).models.list().data] == [server.model]
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        assert [m.id for m in client.models.list().data] == [server.model]


def test_the_openai_path_still_works_on_the_same_server():
    with ScriptedServer() as server:
        server.script(turn(text="via anthropic"), turn(thinking="r", text="via openai"))
        assert create(client_for(server)).content[0].text == "via anthropic"
        with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
            stream = client.chat.completions.create(
                model="qwen3.6-plus", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "via openai"
        assert server.formats == ["anthropic", "openai"]
        assert server.violations == []


def test_empty_endless_and_stall(server: ScriptedServer):
    server.script(
        turn(empty=True),
        turn(text="more ", endless=True),
        turn(text="never finished", pieces=5, stall_after=4, stall_for=0.2),
    )
    client = client_for(server)
    with client.messages.stream(model="m", max_tokens=9, messages=[USER]) as stream:
        message = stream.get_final_message()
    assert message.content == []
    assert message.stop_reason == "end_turn"
    with create(client, stream=True) as endless:
        texts = []
        for event in endless:
            if event.type == "content_block_delta":
                texts.append(event.delta.text)
            if len(texts) == 50:
                break
    assert set(texts) == {"more "}
    seen: list[str] = []
    stalled = create(client, stream=True)
    with pytest.raises(anthropic.APIConnectionError):
        drain(stalled, seen)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
