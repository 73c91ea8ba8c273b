"""`qac run` as scripts see it: output formats, exit codes, stdin prompts, budgets, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, run_process, server_args

RESULT_KEYS = {
    "session_id",
    "status",
    "result",
    "turns",
    "usage",
    "cost_usd",
    "duration_s",
    "files_changed",
}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"}


def test_json_output_carries_the_design_fields(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(thinking="t1", tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(thinking="t2", text="Done."),
    )
    out = qac("run", "fix", *server_args(model_server), "-C", str(repo), "--output-format", "json")

    assert out.code == 0, out.stderr
    result = out.json()
    assert set(result) >= RESULT_KEYS
    assert set(result["usage"]) == USAGE_KEYS
    assert (result["status"], result["result"], result["turns"]) == ("done", "Done.", 2)
    assert result["files_changed"] == ["calc.py"]
    assert result["usage"]["prompt_tokens"] > 0


def test_stream_json_emits_each_event_type_and_ends_with_the_result(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(thinking="look", tool_call=("read_file", {"path": "calc.py"})),
        turn(thinking="ok", text="All good."),
    )
    out = qac(
        "run",
        "check",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )

    assert out.code == 0, out.stderr
    events = out.lines()
    types = [e["type"] for e in events]
    assert types[0] == "session"
    assert {"thinking", "text", "tool_call", "tool_result", "usage"} <= set(types)
    assert types[-1] == "result"
    assert types.count("result") == 1
    assert set(events[-1]) >= RESULT_KEYS
    thinking = "".join(str(e["text"]) for e in events if e["type"] == "thinking")
    assert thinking == "lookok"
    call = next(e for e in events if e["type"] == "tool_call")
    assert (call["name"], json.loads(str(call["arguments"]))) == ("read_file", {"path": "calc.py"})


def test_text_output_prints_the_answer(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking="x", text="The answer is 42."))
    out = qac("run", "question", *server_args(model_server), "-C", str(repo))
    assert (out.code, out.stdout) == (0, "The answer is 42.\n")


def test_prompt_dash_reads_stdin(model_server: ScriptedServer, repo: Path):
    model_server.script(turn(text="read it"))
    out = run_process(
        "run",
        "-",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
        input="task from a pipe\n",
    )
    assert out.code == 0, out.stderr
    assert model_server.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "task from a pipe\n",
    }


def test_max_turns_exits_1_with_its_status(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(tool_call=("read_file", {"path": "calc.py"})),
        turn(tool_call=("read_file", {"path": "test_calc.py"})),
    )
    out = qac(
        "run",
        "loop",
        *server_args(model_server),
        "-C",
        str(repo),
        "--max-turns",
        "2",
        "--output-format",
        "json",
    )
    assert out.code == 1
    assert out.json()["status"] == "max_turns"
    assert "max-turns" in out.stderr
    assert out.stderr.count("\n") == 1


def test_an_unset_api_key_env_fails_before_any_request(
    qac, model_server: ScriptedServer, repo: Path
):
    out = qac(
        "run",
        "spend",
        "--provider",
        "dashscope",
        "--base-url",
        model_server.url,
        "--api-key-env",
        "FAKE_KEY_VAR",
        "-C",
        str(repo),
        "--max-cost",
        "1.0",
        "--output-format",
        "json",
    )
    assert out.code == 2
    assert "FAKE_KEY_VAR is not set" in out.stderr
    assert model_server.requests == []


def test_max_cost_stops_after_the_priced_response(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 0}
    model_server.script(turn(tool_call=("read_file", {"path": "calc.py"}), usage=usage))
    out = qac(
        "run",
        "spend",
        "--provider",
        "dashscope",
        "--base-url",
        model_server.url,
        "-C",
        str(repo),
        "--max-cost",
        "1.0",
        "--output-format",
        "json",
    )
    assert out.code == 1, out.stderr
    result = out.json()
    assert (result["status"], result["cost_usd"]) == ("max_cost", 1.3)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "x", "--no-such-flag"],
        ["run", "x", "--sandbox", "sometimes"],
        ["run", "x", "--approval", "maybe"],
        ["run", "x", "--output-format", "yaml"],
        ["run", "x", "--provider", "nowhere"],
        ["run", "x", "--max-turns", "zero"],
        ["run", "x", "-C", "/definitely/not/here"],
        ["run", ""],
    ],
)
def test_usage_errors_exit_2_with_one_line(qac, args: list[str]):
    out = qac(*args)
    assert out.code == 2
    assert out.stderr.startswith("qac: ")
    assert out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_401_from_the_server_exits_3_without_retrying(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(fault={"status": 401, "message": "invalid api key"}))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    assert out.code == 3
    assert out.json()["status"] == "error"
    assert "401" in out.stderr
    assert "invalid api key" in out.stderr
    assert len(model_server.requests) == 1


def test_unreachable_endpoint_exits_3_after_bounded_retries(qac, repo: Path, tmp_path: Path):
    config = repo / ".qac" / "config.toml"
    config.parent.mkdir()
    config.write_text("retries = 2\nretry_base_delay = 0.01\n")
    out = qac(
        "run", "x", "--provider", "vllm", "--base-url", "http://127.0.0.1:9/v1", "-C", str(repo)
    )
    assert out.code == 3
    assert "after 3 attempts" in out.stderr
    assert "cannot connect" in out.stderr


def test_missing_key_is_a_config_error(qac, repo: Path):
    out = qac("run", "x", "--provider", "dashscope", "-C", str(repo))
    assert out.code == 2
    assert out.stderr == (
        "qac: DASHSCOPE_API_KEY is not set: export DASHSCOPE_API_KEY=<your key> for provider "
        "'dashscope', or pick another with --provider / --api-key-env\n"
    )


def test_broken_tool_json_and_unknown_tool_go_back_to_the_model(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(tool_call=("read_file", '{"path": "calc.py"')),
        turn(tool_call=("teleport", {"to": "mars"})),
        turn(text="sorry"),
    )
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    results = [e for e in out.lines() if e["type"] == "tool_result"]
    assert [r["is_error"] for r in results] == [True, True]
    assert "not valid JSON" in str(results[0]["output"])
    assert "unknown tool 'teleport'" in str(results[1]["output"])


def test_version_and_module_entry_point():
    out = run_process("--version")
    assert (out.code, out.stdout.strip()) == (0, "qac 0.1.0")


def test_continue_picks_the_latest_session_for_the_directory(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="first"), turn(text="second"))
    first = qac(
        "run", "one", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    second = qac(
        "run",
        "two",
        "--continue",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert second.json()["session_id"] == first.json()["session_id"]
    contents = [m["content"] for m in model_server.requests[-1]["messages"][1:]]
    assert contents == ["one", "first", "two"]


def test_resume_of_an_unknown_session_exits_2(qac, repo: Path):
    out = qac("run", "x", "--resume", "nope", "--provider", "vllm", "-C", str(repo))
    assert out.code == 2
    assert "no session 'nope'" in out.stderr


def test_test_cmd_is_run_by_run_tests(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(tool_call=("run_tests", {})), turn(text="ok"))
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "stream-json",
    )
    result = next(e for e in out.lines() if e["type"] == "tool_result")
    assert str(result["output"]).startswith("tests FAILED (1 failed, 0 passed) running")


def test_options_before_the_subcommand_and_short_help(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="routed"))
    out = qac("-C", str(repo), "--provider", "vllm", "--base-url", model_server.url, "run", "x")
    assert (out.code, out.stdout) == (0, "routed\n")
    assert qac("-h").stdout.startswith("Usage: qac")


def test_resume_keeps_the_sessions_provider_and_model(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    model_server.script(turn(thinking="first thought", text="one"))
    first = qac(
        "run",
        "a",
        *server_args(model_server),
        "--model",
        "qwen3.6-27b-local",
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    model_server.script(turn(text="two"))
    again = qac("run", "b", "--continue", "-C", str(repo), "--output-format", "json")
    assert again.code == 0, again.stderr
    assert again.json()["session_id"] == first.json()["session_id"]
    second = model_server.requests[1]
    assert second["model"] == "qwen3.6-27b-local"
    assert second["chat_template_kwargs"] == {"enable_thinking": True, "preserve_thinking": True}
    assert second["messages"][2]["reasoning"] == "first thought"
