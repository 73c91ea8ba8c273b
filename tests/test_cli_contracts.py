"""The command line's contracts as a new user meets them: `--help` shows the REPL's options, the
short forms (-p, -c, -r, -m, exec, resume), a JSON result on every headless exit, errors on
stderr only, timestamped stream-json, and `config show` in the starter file's layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pexpect

from qwen_agent_cli.cli.config import STARTER_CONFIG
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import run_process, server_args
from tests.test_run_cli import RESULT_KEYS

PROMPT = "›"  # noqa: RUF001


def test_top_level_help_lists_the_repl_options_short_forms_and_commands(qac):
    out = qac("--help")

    assert out.code == 0
    for shown in (
        "-p, --print PROMPT",
        "-c, --continue",
        "-r, --resume [ID]",
        "-m, --model NAME",
        "--sandbox [read-only|workspace-write|off]",
        "--approval [ask|auto-edit|auto]",
        "--output-format [text|json|stream-json]",
        "--max-cost USD",
        "--max-turns N",
        "[default: workspace-write]",
        "[default: 50]",
    ):
        assert shown in " ".join(out.stdout.split()), shown
    commands = out.stdout.split("Commands:")[1]
    for name in ("run", "exec", "ci", "resume", "sessions", "config", "doctor", "demo"):
        assert f"\n  {name} " in commands, name
    assert "<str>" not in out.stdout.split("Commands:")[0]


def test_run_help_shows_metavars_choices_and_defaults(qac):
    out = qac("run", "--help")

    assert "--timeout SECONDS" in out.stdout
    assert "--output-format [text|json|stream-json]" in out.stdout
    assert "[default: text]" in " ".join(out.stdout.split())
    assert "<float>" not in out.stdout
    assert "<int>" not in out.stdout


def test_dash_p_runs_headless_with_the_short_model_flag(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="Headless answer."))

    out = qac("-m", "my-model", "-p", "say hi", *server_args(model_server), "-C", str(repo))

    assert out.code == 0, out.stderr
    assert out.stdout == "Headless answer.\n"
    assert model_server.requests[0]["model"] == "my-model"
    assert model_server.requests[0]["messages"][-1]["content"] == "say hi"


def test_print_reads_the_prompt_from_stdin_when_none_is_given(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="From stdin."))

    out = run_process("-p", *server_args(model_server), "-C", str(repo), input="piped task\n")

    assert out.code == 0, out.stderr
    assert out.stdout == "From stdin.\n"
    assert model_server.requests[0]["messages"][-1]["content"] == "piped task\n"


def test_exec_is_run_and_dash_c_continues_the_latest_session(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="first"), turn(text="second"))

    first = qac(
        "exec", "one", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    second = qac(
        "-p", "two", "-c", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )

    assert (first.code, second.code) == (0, 0), second.stderr
    assert second.json()["session_id"] == first.json()["session_id"]
    contents = [m["content"] for m in model_server.requests[1]["messages"] if m["role"] == "user"]
    assert contents == ["one", "two"]


def test_dash_r_with_an_id_resumes_and_without_a_terminal_asks_for_one(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="first"), turn(text="again"))
    first = qac(
        "run", "one", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    session_id = str(first.json()["session_id"])

    resumed = qac("-p", "two", "-r", session_id, *server_args(model_server), "-C", str(repo))
    no_id = run_process("exec", "three", "-r", *server_args(model_server), "-C", str(repo))
    before_p = run_process("--resume", "-p", "four", *server_args(model_server), "-C", str(repo))

    assert resumed.code == 0, resumed.stderr
    assert len(model_server.requests[1]["messages"]) > len(model_server.requests[0]["messages"])
    assert no_id.code == 2
    assert "give the id" in no_id.stderr
    assert "qac sessions list" in no_id.stderr
    assert no_id.stdout == ""
    assert (before_p.code, before_p.stderr) == (no_id.code, no_id.stderr)


def test_the_picker_lists_this_repositorys_sessions_and_resumes_the_chosen_one(
    model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(
        turn(text="older"),
        turn(text="newer", reset_prefix=True),
        turn(text="RESUMED-OK", reset_prefix=True),
    )
    for prompt in ("OLDER-TASK", "NEWER-TASK"):
        done = run_process("run", prompt, *server_args(model_server), "-C", str(repo))
        assert done.code == 0, done.stderr
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    older = next(info for info in store.list() if info.title.startswith("OLDER"))
    store.close()

    env = {**os.environ, "TERM": "xterm-256color"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_agent_cli", "resume", *server_args(model_server), "-C", str(repo)],
        env=env,
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=20,
    )
    child.expect_exact("Resume which session")
    child.expect_exact("NEWER-TASK")
    child.expect_exact("OLDER-TASK")
    assert "1 turn " in child.before
    child.send("\x1b[B")  # down: the older one
    child.send("\r")
    child.expect_exact(PROMPT)
    child.send("continue please")
    child.send("\r")
    child.expect_exact("RESUMED-OK")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)

    last = model_server.requests[-1]["messages"]
    users = [m["content"] for m in last if m["role"] == "user"]
    assert users[0] == "OLDER-TASK"
    assert users[-1] == "continue please"
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    assert store.count_messages(older.id) >= 4
    store.close()


def test_every_headless_failure_ends_with_a_json_result(repo: Path):
    bad_flag = run_process("run", "x", "--max-turns", "lots", "--output-format", "json")
    bad_provider = run_process("-p", "x", "--provider", "nope", "--output-format", "json")
    no_key = run_process("exec", "x", "--output-format=json", "-C", str(repo))
    home = Path(os.environ["QAC_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("max_turns = [unclosed\n")
    bad_config = run_process("run", "x", env={**os.environ, "QAC_OUTPUT_FORMAT": "json"}, input="")

    for out in (bad_flag, bad_provider, no_key, bad_config):
        assert out.code == 2, out.stderr
        assert len(out.stdout.splitlines()) == 1
        result = out.json()
        assert set(result) >= RESULT_KEYS
        assert result["status"] == "error"
        assert result["result"]
        assert str(result["result"]) in out.stderr
    assert "DASHSCOPE_API_KEY" in str(no_key.json()["result"])
    assert "config.toml" in str(bad_config.json()["result"])


def test_stream_json_failures_and_events_carry_timestamps(
    qac, model_server: ScriptedServer, repo: Path
):
    failed = qac("run", "x", "--provider", "nope", "--output-format", "stream-json")
    model_server.script(turn(text="ok"))
    (repo / "CLAUDE.md").write_text("Prefer small diffs.\n")
    ran = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )

    assert [e["type"] for e in failed.lines()] == ["error", "result"]
    assert failed.lines()[-1]["status"] == "error"
    events = ran.lines()
    assert all(str(e["timestamp"]).endswith("Z") and "T" in str(e["timestamp"]) for e in events)
    session = events[0]
    assert session["type"] == "session"
    assert session["cwd"] == str(repo)
    assert session["sandbox"] == "workspace-write"
    assert session["approval"] == "auto"
    assert {"read_file", "edit_file", "shell"} <= set(session["tools"])
    assert {Path(str(i["path"])).name for i in session["instructions"]} >= {"AGENTS.md"}


def test_text_mode_errors_go_to_stderr_only(qac, repo: Path, monkeypatch):
    monkeypatch.setenv("QAC_RETRIES", "0")  # the refusal at once, not after the backoff
    out = qac(
        "run",
        "x",
        "--provider",
        "vllm",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "-C",
        str(repo),
        "--max-turns",
        "1",
    )

    assert out.code == 3
    assert out.stdout == ""
    assert "qac:" in out.stderr


def test_config_show_uses_the_starter_files_tables_and_loads_back(qac, tmp_path: Path):
    out = qac("config", "show")
    shown = tomllib.loads(out.stdout)
    starter = tomllib.loads(
        "\n".join(
            line.removeprefix("# ")
            for line in STARTER_CONFIG.splitlines()
            if line.startswith("# [")
        )
    )

    assert out.code == 0
    assert set(starter) <= set(shown) | {"providers", "models"}
    assert shown["sandbox"]["mode"] == "workspace-write"
    assert "allow" in shown["approval"]
    assert "deny" in shown["approval"]
    assert shown["tools"]["web_fetch"] is True
    assert "sandbox_network" not in shown
    assert "network" in shown["sandbox"]

    home = Path(os.environ["QAC_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(out.stdout.replace("tmp_size_mb = 1024", "tmp_size_mb = 512"))
    again = qac("config", "show")
    assert again.code == 0, again.stderr
    assert tomllib.loads(again.stdout)["sandbox"]["tmp_size_mb"] == 512


def blocked_reading_stdin(pid: int) -> bool:
    """The process sits in read(0, ...) (x86-64 read is 0, arm64's 63)."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] in ("0", "63") and fields[1] == "0x0"


def test_a_signal_before_the_run_began_is_said_and_ends_with_a_json_result(repo: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_agent_cli", "-p", "--output-format", "json", "-C", str(repo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not blocked_reading_stdin(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 143, stderr
    assert stderr == "qac: terminated (SIGTERM)\n"
    result = json.loads(stdout)
    assert (result["status"], result["result"]) == ("interrupted", "terminated (SIGTERM)")
