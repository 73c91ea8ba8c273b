"""Signs of life: a spinner with the elapsed time on a terminal (REPL and `qac run`), one stderr
line per long wait off a terminal, and failures that say what to do. The scripted server holds
its answer on a gate the test opens once it has seen what qac shows meanwhile."""

from __future__ import annotations

import io
import os
import re
import select
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pexpect
import pytest
from rich.console import Console

from qwen_agent_cli.events import RequestEvent, Text, Thinking
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.ui.render import Renderer
from qwen_agent_cli.ui.spinner import Wait
from tests.conftest import server_args, spawn_qac

PROMPT = "›"  # noqa: RUF001
HELD = "while [ ! -e go ]; do sleep 0.05; done; echo released"
"""A command that runs until the test creates `go` in the workspace."""
UNREACHABLE = "check --base-url, that the server is running, or run `qac doctor`"
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw`: enough of a VT100 for what Rich writes (text,
    CR, LF, cursor up, erase line); other sequences are dropped."""
    lines, row, col, i = [""], 0, 0, 0
    while i < len(raw):
        char = raw[i]
        match = CSI.match(raw, i) if char == "\x1b" else None
        if match:
            args, command = match.groups()
            if command == "A":
                row = max(row - int(args or 1), 0)
            elif command == "K":
                lines[row] = "" if args == "2" else lines[row][:col]
            i = match.end()
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            lines.extend([""] * (row + 1 - len(lines)))
        elif char != "\x1b":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
        i += 1
    return [line.rstrip() for line in lines if line.strip()]


def spawn(*args: str) -> tuple[pexpect.spawn, io.StringIO]:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_agent_cli", *args],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=30,
    )
    log = io.StringIO()
    child.logfile_read = log
    return child, log


def test_run_on_a_terminal_shows_the_wait_the_thinking_and_the_tool_then_erases_them(
    model_server: ScriptedServer, repo: Path
):
    first, thinking = threading.Event(), threading.Event()
    model_server.script(
        turn(tool_call=("shell", {"command": HELD}), gate=first),
        turn(thinking="Weighing it. " * 40, text="THE-ANSWER", gate=thinking, gate_after=4),
    )
    child, log = spawn("run", "go", *server_args(model_server), "-C", str(repo))
    child.expect(r"waiting for the model… [1-9]\d*s")
    first.set()
    child.expect(r"running shell… [1-9]\d*s")
    (repo / "go").touch()
    child.expect(r"thinking… [1-9]\d*s · [1-9]\d* tokens")
    thinking.set()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    shown = "\n".join(screen(log.getvalue()))
    assert "THE-ANSWER" in shown
    assert "thought for" in shown
    for gone in ("waiting for the model", "running shell…", "thinking…"):
        assert gone not in shown, shown


def test_an_interrupt_erases_the_spinner(model_server: ScriptedServer, repo: Path):
    model_server.script(turn(text="never seen", gate=threading.Event()))
    child, log = spawn("run", "go", *server_args(model_server), "-C", str(repo))
    child.expect(r"waiting for the model… [1-9]\d*s")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    shown = "\n".join(screen(log.getvalue()))
    assert "interrupted" in shown
    assert "waiting for the model" not in shown, shown


def test_the_repl_shows_the_wait_and_resumes_the_tool_spinner_after_an_approval(
    model_server: ScriptedServer, repo: Path
):
    first = threading.Event()
    model_server.script(
        turn(tool_call=("shell", {"command": HELD}), gate=first),
        turn(text="REPL-ANSWER"),
    )
    child, log = spawn(*server_args(model_server), "-C", str(repo))
    child.expect_exact(PROMPT)
    child.send("run it")
    time.sleep(0.2)  # a paste arriving with its Enter is one message; typed text is not
    child.send("\r")
    child.expect(r"waiting for the model… [1-9]\d*s")
    start = log.getvalue().rindex("waiting for the model")
    first.set()
    child.expect("allow\\?")
    child.sendline("y")
    child.expect(r"running shell… [1-9]\d*s")
    (repo / "go").touch()
    child.expect_exact("REPL-ANSWER")
    child.expect_exact(PROMPT)
    turn_output = log.getvalue()[start:]
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    asked = turn_output.index("allow?")
    before, after = turn_output[:asked], turn_output[asked:]
    assert "wants to run" in "\n".join(screen(before))
    assert "waiting for the model" not in "\n".join(screen(before))
    shown = "\n".join(screen(after[after.index("running shell") :]))
    assert "REPL-ANSWER" in shown
    assert "running shell…" not in shown, shown


def read_line(stream: IO[str] | None, timeout: float = 30) -> str:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no line came"
    return stream.readline()


def test_off_a_terminal_a_long_wait_is_said_once_on_stderr(
    model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QAC_WAIT_NOTICE_S", "0.3")
    first, second = threading.Event(), threading.Event()
    model_server.script(
        turn(tool_call=("shell", {"command": HELD}), gate=first),
        turn(text="PIPED-ANSWER", gate=second),
    )
    proc = spawn_qac("run", "go", *server_args(model_server), "-C", str(repo))
    # Each wait is held until its line is seen, so each says itself exactly once.
    assert read_line(proc.stderr) == "qac: still waiting for the model (0.3s)\n"
    first.set()
    assert read_line(proc.stderr) == "qac: still running shell (0.3s)\n"
    (repo / "go").touch()
    assert read_line(proc.stderr) == "qac: still waiting for the model (0.3s)\n"
    second.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (out, err) == ("PIPED-ANSWER\n", "")
    assert "\x1b" not in out + err


def test_stream_json_carries_no_internal_event(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking="t", text="ok"))
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    kinds = [line["type"] for line in out.lines()]
    assert set(kinds) == {"session", "thinking", "text", "usage", "result"}, kinds
    assert out.stderr == ""


def test_a_bad_wait_notice_setting_is_a_usage_error(qac, model_server, repo: Path, monkeypatch):
    monkeypatch.setenv("QAC_WAIT_NOTICE_S", "soon")
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert out.code == 2
    assert out.stderr == (
        "qac: QAC_WAIT_NOTICE_S must be a number of seconds above 0, got 'soon'\n"
    )


def test_thought_for_counts_from_the_first_thinking_token():
    now = [100.0]
    console = Console(file=io.StringIO(), width=80, force_terminal=True, record=True)
    renderer = Renderer(console, live=True, thinking="hide", clock=lambda: now[0])
    renderer.write(RequestEvent())
    now[0] += 30  # the model is silent for half a minute, then thinks for two seconds
    renderer.write(Thinking(text="one\n"))
    now[0] += 2
    renderer.write(Thinking(text="two\n"))
    renderer.write(Text(text="done"))
    renderer.close()
    assert "thought for 2.0s (2 lines)" in console.export_text()


def test_the_spinner_line_reads_like_a_counter():
    assert Wait("thinking", 10.0, chars=1360).line(22.5) == "thinking… 12s · 340 tokens"
    assert Wait("running run_tests", 0.0).line(185.2) == "running run_tests… 3m 05s"


@pytest.mark.parametrize(
    ("provider", "url"),
    [("vllm", "http://127.0.0.1:9/v1"), ("anthropic", "http://127.0.0.1:9")],
)
def test_a_refused_connection_says_what_to_do(
    qac, repo: Path, monkeypatch: pytest.MonkeyPatch, provider: str, url: str
):
    monkeypatch.setenv("QAC_RETRIES", "0")
    out = qac("run", "hi", "--provider", provider, "--base-url", url, "-C", str(repo))
    assert out.code == 3
    assert out.stderr.endswith(
        f"cannot connect to {url} (connection refused); {UNREACHABLE} (status error)\n"
    ), out.stderr
    assert out.stderr.count("\n") == 1


def test_ci_and_the_repl_say_it_too(qac, repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QAC_RETRIES", "0")
    args = ("--provider", "vllm", "--base-url", "http://127.0.0.1:9/v1", "-C", str(repo))
    out = qac("ci", "--test-cmd", "python3 -m unittest -q", *args)
    assert out.code == 3
    assert UNREACHABLE in out.stderr
    child, _ = spawn(*args)
    child.expect_exact(PROMPT)
    child.send("hello")
    time.sleep(0.2)
    child.send("\r")
    child.expect_exact("(connection refused)")
    child.expect_exact("that the server is running")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


@pytest.mark.parametrize(
    ("fault", "hint"),
    [
        ({"status": 401, "message": "bad key"}, "check the API key in $MY_KEY, or pass"),
        ({"status": 404, "message": "no such model"}, "check --model (is 'm1' served there?)"),
        ({"status": 429, "message": "slow down"}, "rate-limiting requests: try again later"),
        ({"status": 503, "message": "down"}, "busy or failing: try again later"),
    ],
)
def test_each_api_error_says_what_to_do(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch, fault, hint
):
    monkeypatch.setenv("QAC_RETRIES", "0")
    monkeypatch.setenv("MY_KEY", "k")
    model_server.script(turn(fault=fault))
    args = ("--api-key-env", "MY_KEY", "--model", "m1", "-C", str(repo))
    out = qac("run", "x", *server_args(model_server), *args)
    assert out.code == 3
    assert f"HTTP {fault['status']}" in out.stderr
    assert hint in out.stderr, out.stderr
