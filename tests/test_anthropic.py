"""The Anthropic Messages format end to end: the real CLI, the real `anthropic` SDK, the scripted
server speaking /v1/messages on loopback. Thinking blocks (signatures, redacted data) go back
byte for byte in their places; requests only grow; faults map as on the OpenAI path."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.message_create_params import MessageCreateParamsStreaming
from pydantic import TypeAdapter

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, run_process, server_args

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


def run_anthropic(qac, server: ScriptedServer, repo: Path, *extra: str, prompt: str = "fix it"):
    return qac(
        "run",
        prompt,
        *anthropic_args(server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
        *extra,
    )


def test_parallel_calls_get_one_user_message_of_results_in_call_order(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(
            thinking="Read both files at once.",
            tool_calls=[("read_file", {"path": "calc.py"}), ("read_file", {"path": "AGENTS.md"})],
        ),
        turn(thinking="Seen both.", text="Both read."),
    )
    out = run_anthropic(qac, model_server, repo)
    assert out.code == 0, out.stderr
    messages = model_server.requests[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    uses = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    results = messages[2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result"]
    assert [b["tool_use_id"] for b in results] == [b["id"] for b in uses]
    assert "def average" in results[0]["content"]
    assert "Run tests with" in results[1]["content"]


def test_redacted_thinking_and_an_empty_signature_round_trip_and_no_thinking_sends_disabled(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(
            redacted=["b3BhcXVlLWJ5dGVz", "c2Vjb25k"],
            thinking="",
            tool_call=("read_file", {"path": "calc.py"}),
        ),
        turn(text="Read it."),
    )
    out = run_anthropic(qac, model_server, repo, "--no-thinking")
    assert out.code == 0, out.stderr
    first, second = model_server.requests
    assert first["thinking"] == {"type": "disabled"}
    assert second["thinking"] == {"type": "disabled"}
    content = second["messages"][1]["content"]
    assert content[:3] == [
        {"type": "redacted_thinking", "data": "b3BhcXVlLWJ5dGVz"},
        {"type": "redacted_thinking", "data": "c2Vjb25k"},
        {"type": "thinking", "thinking": "", "signature": ""},
    ]
    REQUEST.validate_python(second)


def test_no_preserve_drops_thinking_before_the_last_user_message(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(thinking="FIRST-THOUGHT", signature="s1", text="One."),
        turn(
            thinking="SECOND-THOUGHT", signature="s2", tool_call=("read_file", {"path": "calc.py"})
        ),
        turn(thinking="THIRD-THOUGHT", signature="s3", text="Two."),
    )
    first = run_anthropic(qac, model_server, repo, "--no-preserve-thinking")
    assert first.code == 0, first.stderr
    model_server.check_prefix = False  # dropping earlier thinking changes the prefix
    again = run_anthropic(
        qac,
        model_server,
        repo,
        "--no-preserve-thinking",
        "--resume",
        str(first.json()["session_id"]),
        prompt="and now?",
    )
    assert again.code == 0, again.stderr
    last = json.dumps(model_server.requests[-1]["messages"])
    assert "FIRST-THOUGHT" not in last
    assert "SECOND-THOUGHT" in last
    assert '"signature": "s2"' in last
    assert "One." in last


@pytest.mark.parametrize(
    "fault",
    [
        turn(fault={"status": 529, "message": "busy"}),
        turn(fault={"status": 429, "retry_after": 0, "message": "slow down"}),
        turn(thinking="partial", stream_error={"type": "overloaded_error", "message": "busy"}),
        turn(thinking="partial thought that is cut", cut="reasoning"),
        turn(
            thinking="calling",
            tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"}),
            cut="tool_args",
        ),
    ],
    ids=["529", "429-retry-after", "error-event", "cut-thinking", "cut-tool-input"],
)
def test_transient_faults_are_retried_without_running_a_tool_twice(
    qac, model_server: ScriptedServer, repo: Path, key: str, fault: dict[str, Any]
) -> None:
    model_server.script(
        fault,
        turn(
            thinking="Fix it.",
            tool_call=(
                "edit_file",
                {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
            ),
        ),
        turn(thinking="Done.", text="Fixed."),
    )
    out = run_anthropic(qac, model_server, repo, "--output-format", "stream-json")
    assert out.code == 0, out.stderr
    events = out.lines()
    assert [e["type"] for e in events].count("tool_call") == 1
    assert any(e["type"] == "error" and e["retrying"] for e in events)
    assert events[-1]["status"] == "done"
    assert "/ len(values)" in (repo / "calc.py").read_text()
    assert len(model_server.requests) == 3


def test_refusals_end_the_run_with_exit_3_and_the_servers_message(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(stream_error={"type": "invalid_request_error", "message": "bad thinking block"})
    )
    out = run_anthropic(qac, model_server, repo)
    assert out.code == 3
    assert "bad thinking block" in out.stderr
    model_server.script(turn(fault={"status": 401, "message": "invalid x-api-key"}))
    out = run_anthropic(qac, model_server, repo)
    assert out.code == 3
    assert "invalid x-api-key" in out.stderr
    assert "DASHSCOPE_API_KEY" in out.stderr


def test_broken_tool_input_is_a_tool_error_and_goes_back_as_an_object(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    broken = '{"path": "calc.py"'
    model_server.script(
        turn(thinking="Read.", tool_call=("read_file", broken)),
        turn(thinking="My JSON was broken.", text="Sorry."),
    )
    out = run_anthropic(qac, model_server, repo)
    assert out.code == 0, out.stderr
    messages = model_server.requests[1]["messages"]
    use = messages[1]["content"][-1]
    assert use["input"] == {"invalid_arguments": broken}
    result = messages[2]["content"][0]
    assert result["is_error"] is True
    REQUEST.validate_python(model_server.requests[1])


def test_compaction_keeps_recent_turns_blocks_unmodified(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    (repo / "big.txt").write_text("".join(f"line {n}: lorem ipsum dolor\n" for n in range(300)))
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text(
        "context_window = 20000\ncompact_at = 0.5\ncompact_keep = 0.1\n"
    )
    model_server.script(
        turn(
            thinking="THINK-1",
            signature="s-1",
            tool_call=("read_file", {"path": "big.txt"}),
            usage={"input_tokens": 2000, "output_tokens": 20},
        ),
        turn(
            thinking="THINK-2",
            signature="s-2",
            tool_call=("read_file", {"path": "AGENTS.md"}),
            usage={"input_tokens": 100, "cache_read_input_tokens": 6000, "output_tokens": 20},
        ),
        turn(
            thinking="THINK-3",
            signature="s-3",
            tool_call=("read_file", {"path": "calc.py"}),
            usage={"input_tokens": 9950, "output_tokens": 20},
        ),
        turn(text="SUMMARY: fix average.", usage={"input_tokens": 10100, "output_tokens": 30}),
        turn(
            thinking="THINK-5",
            signature="s-5",
            text="Done.",
            reset_prefix=True,
            usage={"input_tokens": 900, "output_tokens": 5},
        ),
    )
    out = run_anthropic(qac, model_server, repo, "--output-format", "stream-json")
    assert out.code == 0, out.stderr
    assert [len(r["messages"]) for r in model_server.requests] == [1, 3, 5, 8, 5]
    summary_request, after = model_server.requests[3], model_server.requests[4]
    assert "The conversation is about to" in summary_request["messages"][-1]["content"][0]["text"]
    messages = after["messages"]
    assert "SUMMARY: fix average." in messages[0]["content"][0]["text"]
    kept = [b for m in messages for b in m["content"] if b["type"] == "thinking"]
    assert kept[-1] == {"type": "thinking", "thinking": "THINK-3", "signature": "s-3"}
    assert "THINK-1" not in json.dumps(messages)
    REQUEST.validate_python(after)


def test_ci_fixes_a_failing_test_on_this_format(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(
            thinking="average floors; use /.",
            signature="ci-1",
            tool_call=(
                "edit_file",
                {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
            ),
        ),
        turn(thinking="Verify.", signature="ci-2", tool_call=("run_tests", {})),
        turn(thinking="Green.", signature="ci-3", text="Fixed."),
    )
    out = qac("ci", "--test-cmd", TEST_CMD, *anthropic_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    report = json.loads((repo / ".qac-out" / "report.json").read_text())
    assert report["status"] == "fixed"
    lines = (repo / ".qac-out" / "session.jsonl").read_text().splitlines()
    stored = [json.loads(line)["message"] for line in lines[1:]]
    blocks = [m["blocks"] for m in stored if m["role"] == "assistant"]
    assert blocks[0][0] == {
        "type": "thinking",
        "thinking": "average floors; use /.",
        "signature": "ci-1",
    }
    assert model_server.requests[-1]["messages"][1]["content"][0]["signature"] == "ci-1"


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [("papaya", "ok   thinking: preserved"), ("no idea", "FAIL thinking: not preserved")],
)
def test_doctor_thinking_probe_works_on_this_format(
    qac, repo: Path, key: str, answer: str, verdict: str
) -> None:
    turns = [
        turn(thinking="The secret noun is PAPAYA.", signature="probe-sig", text="READY"),
        turn(thinking="Recall.", text=answer),
    ]
    with ScriptedServer(turns, model="qwen3.6-plus") as server:
        out = qac("doctor", "--thinking", *anthropic_args(server), "-C", str(repo))
        second = server.requests[1]
        assert server.violations == []
    assert verdict in out.stdout, out.stdout
    assert second["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "The secret noun is PAPAYA.",
        "signature": "probe-sig",
    }
    assert "ok   preserve: Anthropic format" in out.stdout


def test_export_import_and_resume_keep_the_blocks(
    qac, model_server: ScriptedServer, repo: Path, key: str, tmp_path: Path
) -> None:
    model_server.script(
        turn(redacted=["REDACT"], thinking="T1", signature="sig-1", text="First."),
    )
    first = run_anthropic(qac, model_server, repo)
    assert first.code == 0, first.stderr
    session = str(first.json()["session_id"])
    exported = tmp_path / "session.jsonl"
    assert qac("sessions", "export", session, "-o", str(exported)).code == 0
    other_home = tmp_path / "other-home"
    env = {**os.environ, "QAC_HOME": str(other_home)}
    imported = run_process("sessions", "import", str(exported), env=env)
    assert imported.code == 0, imported.stderr
    new_id = imported.stdout.split()[-1].strip()
    model_server.script(turn(thinking="T2", signature="sig-2", text="Second."))
    again = run_process(
        "run", "more", "--resume", new_id, "-C", str(repo), "--output-format", "json", env=env
    )
    assert again.code == 0, again.stderr
    assert model_server.requests[-1]["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "REDACT"},
        {"type": "thinking", "thinking": "T1", "signature": "sig-1"},
        {"type": "text", "text": "First."},
    ]


def test_a_session_resumed_in_the_other_format_converts_thinking_and_says_so_once(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(
        turn(thinking="OPENAI-THOUGHT", tool_call=("read_file", {"path": "calc.py"})),
        turn(text="Read."),
    )
    first = qac(
        "run", "look", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    assert first.code == 0, first.stderr
    session = str(first.json()["session_id"])
    model_server.script(turn(thinking="ANTHROPIC-THOUGHT", signature="sig-a", text="Now here."))
    moved = qac(
        "run",
        "again",
        "--resume",
        session,
        *anthropic_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )
    assert moved.code == 0, moved.stderr
    notes = [
        e
        for e in moved.lines()
        if e.get("notice") and "signatures cannot travel" in str(e["message"])
    ]
    assert len(notes) == 1
    assert notes[0]["type"] == "error"
    assert "signatures cannot travel" in moved.stderr
    request = model_server.requests[-1]
    assert model_server.formats[-1] == "anthropic"
    assert request["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "OPENAI-THOUGHT",
        "signature": "",
    }
    REQUEST.validate_python(request)

    model_server.script(turn(thinking="BACK", text="Back."))
    back = qac(
        "run",
        "back",
        "--resume",
        session,
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert back.code == 0, back.stderr
    assistants = [m for m in model_server.requests[-1]["messages"] if m["role"] == "assistant"]
    assert assistants[-1]["reasoning"] == "ANTHROPIC-THOUGHT"


def test_demo_plays_offline_on_this_format(tmp_path: Path) -> None:
    out = run_process("demo", "--provider", "dashscope-anthropic", timeout=120)
    assert out.code == 0, out.stderr + out.stdout
    assert "Anthropic Messages" in out.stdout
    assert "the last request carried 4 earlier reasoning blocks" in out.stdout


def test_the_thinking_budget_is_the_profiles_unless_given_and_must_fit_max_tokens(
    qac, model_server: ScriptedServer, repo: Path, key: str
) -> None:
    model_server.script(turn(thinking="Short.", text="Ok."))
    out = run_anthropic(qac, model_server, repo, "--thinking-budget", "2048")
    assert out.code == 0, out.stderr
    assert model_server.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    too_big = run_anthropic(qac, model_server, repo, "--thinking-budget", "40000")
    assert too_big.code == 2
    assert "thinking_budget (40000) must be below max_tokens (32768)" in too_big.stderr


def test_an_unreachable_endpoint_and_a_missing_key_fail_clearly(
    qac, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = qac("run", "hi", "--provider", "dashscope-anthropic", "-C", str(repo))
    assert missing.code == 2
    assert "DASHSCOPE_API_KEY is not set" in missing.stderr
    monkeypatch.setenv("QAC_RETRIES", "0")
    down = qac(
        "run", "hi", "--provider", "anthropic", "--base-url", "http://127.0.0.1:9", "-C", str(repo)
    )
    assert down.code == 3
    assert "cannot connect to http://127.0.0.1:9" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_stalled_stream_is_retried_after_the_idle_timeout(
    qac, model_server: ScriptedServer, repo: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QAC_STREAM_IDLE_TIMEOUT", "0.5")
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.01")
    model_server.script(
        turn(thinking="I will hang here.", stall_after=3, stall_for=30),
        turn(thinking="Back.", text="Answered."),
    )
    out = run_anthropic(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert out.json()["result"] == "Answered."
    assert "sent nothing for 0.5s" in out.stderr


def test_a_server_ignoring_max_tokens_is_cut_at_the_response_cap(
    qac, model_server: ScriptedServer, repo: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QAC_MAX_TOKENS", "3000")
    model_server.script(turn(endless=True))
    out = run_anthropic(
        qac, model_server, repo, "--thinking-budget", "1024", "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    errors = [e["message"] for e in out.lines() if e["type"] == "error"]
    assert any("passed 48,000 characters, more than max_tokens allows" in m for m in errors)
    assert str(out.lines()[-1]["result"]).startswith("and so on")


def test_the_repl_runs_on_this_format(model_server: ScriptedServer, repo: Path) -> None:
    import sys

    import pexpect

    model_server.script(
        turn(
            thinking="REPL-THOUGHT", signature="r-1", tool_call=("read_file", {"path": "calc.py"})
        ),
        turn(thinking="Seen.", text="REPL-ANSWER"),
    )
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "qwen_agent_cli",
            "--provider",
            "anthropic",
            "--base-url",
            model_server.anthropic_url,
            "--approval",
            "auto",
            "-C",
            str(repo),
        ],
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=30,
    )
    child.expect_exact("›")  # noqa: RUF001
    child.send("read calc")
    child.expect_exact("read calc")
    child.send("\r")
    child.expect_exact("REPL-ANSWER")
    child.expect_exact("›")  # noqa: RUF001
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert model_server.formats == ["anthropic", "anthropic"]
    assert model_server.requests[1]["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "REPL-THOUGHT",
        "signature": "r-1",
    }
