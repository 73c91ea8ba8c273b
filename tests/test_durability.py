"""Retries never run a tool twice; a killed process loses at most the message in flight."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import run_process, server_args, spawn_qac

APPEND = ("shell", {"command": "echo ran >> log.txt"})


@pytest.mark.parametrize("cut", ["reasoning", "content", "tool_args"])
def test_429_then_a_cut_stream_is_retried_and_the_tool_runs_once(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch, cut: str
):
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.01")
    thinking = "Append to the log exactly once, then stop."
    model_server.script(
        turn(fault={"status": 429, "retry_after": 0, "message": "slow down"}),
        turn(thinking=thinking, text="Appending now.", tool_call=APPEND, cut=cut),
        turn(thinking=thinking, text="Appending now.", tool_call=APPEND),
        turn(text="Appended."),
    )
    out = qac(
        "run",
        "append",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )

    assert out.code == 0, out.stderr
    assert (repo / "log.txt").read_text() == "ran\n"
    retries = [e for e in out.lines() if e["type"] == "error"]
    assert [e["retrying"] for e in retries] == [True, True]
    assert "429" in str(retries[0]["message"])
    assert "cut off" in str(retries[1]["message"])
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    session_id = str(out.lines()[-1]["session_id"])
    roles = [m.role for m in store.messages(session_id)]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert store.messages(session_id)[1].reasoning == thinking
    store.close()


def test_retry_after_header_is_honoured(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(fault={"status": 503, "retry_after": 1}), turn(text="up again"))
    started = time.monotonic()
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert (out.code, out.stdout) == (0, "up again\n")
    assert time.monotonic() - started >= 1.0


def test_kill_9_during_a_response_keeps_every_completed_message(
    model_server: ScriptedServer, repo: Path
):
    slow = "thinking slowly " * 40
    model_server.script(
        turn(thinking="first look", tool_call=("read_file", {"path": "calc.py"})),
        turn(thinking="second look", tool_call=("read_file", {"path": "test_calc.py"})),
        turn(thinking=slow, text="never finished", pieces=40, chunk_delay=0.25),
    )
    proc = spawn_qac(
        "run", "fix", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert proc.stdout is not None
    session_id = str(json.loads(proc.stdout.readline())["session_id"])
    for line in proc.stdout:
        if json.loads(line)["type"] == "thinking" and json.loads(line)["text"] in slow:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()

    store_file = Path(os.environ["QAC_HOME"]) / "sessions.db"
    with contextlib.closing(sqlite3.connect(store_file)) as db, db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    shown = run_process("sessions", "show", session_id, "--thinking")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.count("\n[") == 5  # user, assistant, tool, assistant, tool
    assert "second look" in shown.stdout
    assert "never finished" not in shown.stdout

    with ScriptedServer([turn(text="continuing")]) as server:
        resumed = run_process(
            "run",
            "go on",
            "--resume",
            session_id,
            *server_args(server),
            "-C",
            str(repo),
            "--output-format",
            "json",
        )
        assert resumed.code == 0, resumed.stderr
        roles = [m["role"] for m in server.requests[0]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "user"]


def test_a_crash_between_a_tool_call_and_its_result_is_repaired_on_resume(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="first"))
    first = qac(
        "run", "one", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    session_id = str(first.json()["session_id"])
    from qwen_agent_cli.types import Message, ToolCall

    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    call = ToolCall("call_x", "shell", '{"command": "echo hi"}')
    store.append_message(session_id, Message(role="assistant", tool_calls=(call,)))
    store.close()

    model_server.script(turn(text="second"))
    out = qac("run", "two", "--resume", session_id, *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    tail = model_server.requests[-1]["messages"][-2:]
    assert tail[0]["role"] == "tool"
    assert tail[0]["tool_call_id"] == "call_x"
    assert "no result: the previous run ended" in tail[0]["content"]
    assert tail[1] == {"role": "user", "content": "two"}


def test_timeout_budget_ends_the_run_with_its_status(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking="slow " * 20, text="late", pieces=20, chunk_delay=0.2))
    started = time.monotonic()
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--timeout",
        "1",
        "--output-format",
        "json",
    )
    assert out.code == 1
    assert out.json()["status"] == "timeout"
    assert "--timeout" in out.stderr
    assert time.monotonic() - started < 4


def test_ctrl_c_stores_what_arrived_marked_interrupted_and_exits_130(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(thinking="partial thought " * 30, pieces=30, chunk_delay=0.2))
    proc = spawn_qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert proc.stdout is not None
    session_id = str(json.loads(proc.stdout.readline())["session_id"])
    while json.loads(proc.stdout.readline())["type"] != "thinking":
        pass
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.stderr is not None
    errors = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.wait(timeout=10) == 130, errors
    assert json.loads(rest.splitlines()[-1])["status"] == "interrupted"
    assert errors.strip().startswith("qac: interrupted")
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    last = store.messages(session_id)[-1]
    store.close()
    assert last.interrupted
    assert last.reasoning is not None
    assert last.reasoning.startswith("partial thought")
