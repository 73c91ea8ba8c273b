"""The Anthropic Messages format end to end: the real CLI, the real `anthropic` SDK, the scripted
server speaking /v1/messages on loopback. Thinking blocks (signatures, redacted data) go back
byte for byte in their places; requests only grow; faults map as on the OpenAI path."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.message_create_params import MessageCreateParamsStreaming
from pydantic import TypeAdapter

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, run_process

REQUEST = TypeAdapter(MessageCreateParamsStreaming)

LOOP = [
    turn(
        thinking="  The test fails in calc.\nRead calc.py first.\n\n",
        signature="sig-one/+==",
        tool_call=("read_file", {"path": "calc.py"}),
    ),
    turn(
        thinking="average uses // - floor division.\n\tUse `/`.  ",
        signature="",
        redacted=["REDACTED-OPAQUE-DATA=="],
        tool_call=(
            "edit_file",
            {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
        ),
    ),
    turn(thinking="\nEdited. Run the tests.\n", signature="sig-three", tool_call=("run_tests", {})),
    turn(thinking="All green; summarise.\n", signature="sig-four", text="Fixed average."),
]


def anthropic_args(server: ScriptedServer, provider: str = "dashscope-anthropic") -> list[str]:
    return ["--provider", provider, "--base-url", server.anthropic_url, "--model", "qwen3.6-plus"]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-anthropic-test")
    return "sk-anthropic-test"


def assistant_contents(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [m["content"] for m in request["messages"] if m["role"] == "assistant"]


def without_cache_marks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_cache_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [without_cache_marks(v) for v in value]
    return value


def streamed_blocks(script_turn: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks a scripted turn streams, as the server sends them."""
    blocks: list[dict[str, Any]] = [
        {"type": "redacted_thinking", "data": data} for data in script_turn.get("redacted", [])
    ]
    if script_turn.get("thinking"):
        blocks.append(
            {
                "type": "thinking",
                "thinking": script_turn["thinking"],
                "signature": script_turn.get("signature", ""),
            }
        )
    if script_turn.get("text"):
        blocks.append({"type": "text", "text": script_turn["text"]})
    return blocks


def check_extends(requests: list[dict[str, Any]]) -> None:
    for before, after in itertools.pairwise(requests):
        old, new = without_cache_marks(before), without_cache_marks(after)
        assert new["system"] == old["system"]
        assert new["tools"] == old["tools"]
        assert new["messages"][: len(old["messages"])] == old["messages"]


def test_a_tool_loop_a_second_turn_and_a_resume_send_every_block_back(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(*LOOP)
    out = qac(
        "run",
        "fix the failing test",
        *anthropic_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    result = out.json()
    assert result["status"] == "done"
    assert result["result"] == "Fixed average."
    assert "/ len(values)" in (repo / "calc.py").read_text()
    session = str(result["session_id"])

    second = turn(thinking="A second question; the fix stands.", signature="sig-5", text="Yes.")
    model_server.script(second)
    again = run_process(
        "run", "is it fixed?", "--resume", session, "-C", str(repo), "--output-format", "json"
    )
    assert again.code == 0, again.stderr
    assert again.json()["result"] == "Yes."

    requests = model_server.requests
    assert model_server.formats == ["anthropic"] * 5
    assert model_server.credentials[0] in (f"Bearer {key}", key)
    for request in requests:
        REQUEST.validate_python(request)
        assert request["thinking"] == {"type": "enabled", "budget_tokens": 16384}
        assert request["max_tokens"] == 32768
    check_extends(requests)
    played = [*LOOP, second]
    for number, request in enumerate(requests):
        contents = assistant_contents(request)
        assert len(contents) == number
        for index, content in enumerate(contents):
            kept = [b for b in content if b["type"] in ("thinking", "redacted_thinking")]
            expected = [b for b in streamed_blocks(played[index]) if b["type"] != "text"]
            assert kept == expected, f"request {number + 1}, assistant turn {index + 1}"
    last = requests[-1]["messages"]
    roles = [m["role"] for m in last]
    assert roles == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    tool_use = last[1]["content"][-1]
    assert tool_use["type"] == "tool_use"
    assert tool_use["input"] == {"path": "calc.py"}
    assert last[2]["content"][0]["type"] == "tool_result"
    assert last[2]["content"][0]["tool_use_id"] == tool_use["id"]
    assert "def average" in last[2]["content"][0]["content"]
    assert last[8]["content"][0]["text"].startswith("is it fixed?")
    assert last[-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert requests[0]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert requests[0]["tools"][-1]["cache_control"] == {"type": "ephemeral"}
