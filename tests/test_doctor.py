"""`qac doctor` against the scripted server: a line per check, non-zero when one fails."""

from __future__ import annotations

from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn


def test_all_checks_pass_against_a_working_server(qac, repo: Path):
    with ScriptedServer(model="qwen3.6-plus") as server:
        out = qac(
            "doctor",
            "--provider",
            "vllm",
            "--base-url",
            server.url,
            "--model",
            "qwen3.6-plus",
            "-C",
            str(repo),
        )
    assert out.code == 0, out.stdout
    names = [line.split()[1].rstrip(":") for line in out.stdout.splitlines()]
    assert names == [
        "key",
        "endpoint",
        "model",
        "catalogue",
        "window",
        "price",
        "catalogue",
        "catalogue",
        "preserve",
        "sandbox",
        "git",
        "store",
    ]
    assert all(line.startswith("ok") for line in out.stdout.splitlines())
    assert "ok   window: window 1,000,000 tokens (catalogue)" in out.stdout
    assert "ok   price: no price known for qwen3.6-plus" in out.stdout


def test_problems_are_reported_with_their_fix(qac, repo: Path):
    out = qac(
        "doctor", "--provider", "ollama", "--base-url", "http://127.0.0.1:9/v1", "-C", str(repo)
    )
    assert out.code == 1
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split()[1] for line in failed] == ["endpoint:", "preserve:"]
    assert "check --base-url" in failed[0]
    assert "no preserve_thinking switch" in failed[1]
    assert out.stderr == "qac: 2 check(s) failed; see the FAIL lines above for the fix\n"


def test_missing_key_and_unknown_model(qac, repo: Path):
    with ScriptedServer(model="qwen3.6-plus") as server:
        out = qac(
            "doctor",
            "--provider",
            "dashscope",
            "--base-url",
            server.url,
            "--model",
            "qwen-nonexistent",
            "-C",
            str(repo),
        )
    assert out.code == 1
    assert "FAIL key: DASHSCOPE_API_KEY is not set" in out.stdout
    assert "FAIL model: qwen-nonexistent is not in the endpoint's model list" in out.stdout


def test_thinking_probe_passes_when_the_server_preserves_reasoning(qac, repo: Path):
    turns = [
        turn(thinking="The secret noun is PAPAYA. I must not say it.", text="READY"),
        turn(thinking="Looking back at my reasoning: papaya.", text="papaya"),
    ]
    with ScriptedServer(turns, model="qwen3.6-plus") as server:
        out = qac(
            "doctor",
            "--thinking",
            "--provider",
            "vllm",
            "--base-url",
            server.url,
            "--model",
            "qwen3.6-plus",
            "-C",
            str(repo),
        )
        second = server.requests[1]
    assert out.code == 0, out.stdout
    assert "ok   thinking: preserved: the model recalled 'papaya'" in out.stdout
    assert second["messages"][2]["reasoning"] == "The secret noun is PAPAYA. I must not say it."
    assert second["chat_template_kwargs"]["preserve_thinking"] is True


def test_thinking_probe_fails_when_the_model_cannot_recall(qac, repo: Path):
    turns = [
        turn(thinking="The secret noun is PAPAYA.", text="READY"),
        turn(thinking="I have no record of an earlier word.", text="unknown"),
    ]
    with ScriptedServer(turns, model="qwen3.6-plus") as server:
        out = qac(
            "doctor",
            "--thinking",
            "--provider",
            "vllm",
            "--base-url",
            server.url,
            "--model",
            "qwen3.6-plus",
            "-C",
            str(repo),
        )
    assert out.code == 1
    assert "FAIL thinking: not preserved: the model could not recall" in out.stdout


def test_thinking_probe_fails_without_reasoning(qac, repo: Path):
    with ScriptedServer([turn(text="READY")], model="qwen3.6-plus") as server:
        out = qac(
            "doctor",
            "--thinking",
            "--provider",
            "vllm",
            "--base-url",
            server.url,
            "--model",
            "qwen3.6-plus",
            "-C",
            str(repo),
        )
    assert out.code == 1
    assert "FAIL thinking: the server returned no reasoning" in out.stdout


def test_the_test_commands_program_is_started_where_the_agent_will_run_it(qac, repo: Path):
    """A runner the sandbox cannot start is named with the fix; one it can is ok."""
    with ScriptedServer(model="qwen3.6-plus") as server:
        common = ["--provider", "vllm", "--base-url", server.url, "--model", "qwen3.6-plus"]
        good = qac("doctor", *common, "-C", str(repo), "--test-cmd", "python3 -m unittest -q")
        bad = qac("doctor", *common, "-C", str(repo), "--test-cmd", "CI=1 no-such-runner-x --all")
    assert good.code == 0, good.stdout
    assert "ok   tests: python3 starts in the sandbox" in good.stdout
    assert bad.code == 1
    (line,) = [ln for ln in bad.stdout.splitlines() if ln.startswith("FAIL")]
    assert line.startswith("FAIL tests: no-such-runner-x is not found in the sandbox")
    assert "[sandbox] env" in line


def test_a_projects_own_test_script_is_checked_not_run(qac, repo: Path):
    """`./run-tests.sh --version` could run the whole suite: a script in the project is only
    checked for being there and executable."""
    script = repo / "run-tests.sh"
    script.write_text("#!/bin/sh\ntouch ran-the-suite\n")
    script.chmod(0o755)
    with ScriptedServer(model="qwen3.6-plus") as server:
        common = ["--provider", "vllm", "--base-url", server.url, "--model", "qwen3.6-plus"]
        out = qac("doctor", *common, "-C", str(repo), "--test-cmd", "./run-tests.sh -q")
    assert out.code == 0, out.stdout
    assert "ok   tests: ./run-tests.sh starts in the sandbox" in out.stdout
    assert not (repo / "ran-the-suite").exists()
