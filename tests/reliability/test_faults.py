"""The fault suite: every fault the scripted server can inject, each ending done or with its
defined status, exit code and one clear line; no tool runs twice; the store stays consistent.
docs/RELIABILITY.md records the cases and their results."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import server_args

APPEND = ("shell", {"command": "echo ran >> log.txt"})
SUCCESS = [turn(thinking="append once", tool_call=APPEND), turn(text="done")]
RETRIES = 3


def fault(status: int, retry_after: float | None = None, message: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"status": status, "message": message or f"scripted {status}"}
    if retry_after is not None:
        data["retry_after"] = retry_after
    return turn(fault=data)


CASES: dict[str, tuple[list[dict[str, Any]], int, str, str]] = {
    # name: (turns, exit code, status, a phrase of the stderr line or "" for none)
    "429 with Retry-After": ([fault(429, 0), *SUCCESS], 0, "done", ""),
    "429 without Retry-After": ([fault(429), *SUCCESS], 0, "done", ""),
    "500": ([fault(500), *SUCCESS], 0, "done", ""),
    "502": ([fault(502), *SUCCESS], 0, "done", ""),
    "503": ([fault(503, 0), *SUCCESS], 0, "done", ""),
    "429 on every attempt": ([fault(429, 0)] * (RETRIES + 1), 3, "error", "after 4 attempts"),
    "read timeout": ([turn(text="late", delay=2.5), *SUCCESS], 0, "done", "retrying"),
    "stream cut in reasoning": (
        [turn(thinking="append once", tool_call=APPEND, cut="reasoning"), *SUCCESS],
        0,
        "done",
        "",
    ),
    "stream cut in content": (
        [turn(text="appending", tool_call=APPEND, cut="content"), *SUCCESS],
        0,
        "done",
        "",
    ),
    "stream cut in tool-call arguments": (
        [turn(tool_call=APPEND, cut="tool_args"), *SUCCESS],
        0,
        "done",
        "",
    ),
    "empty response": ([turn(empty=True), *SUCCESS], 0, "done", ""),
    "empty response on every attempt": (
        [turn(empty=True)] * (RETRIES + 1),
        3,
        "error",
        "empty response",
    ),
    "broken tool-call JSON": (
        [turn(tool_call=("shell", '{"command": "echo ran >> log.txt"')), *SUCCESS],
        0,
        "done",
        "",
    ),
    "unknown tool": ([turn(tool_call=("teleport", {"to": "mars"})), *SUCCESS], 0, "done", ""),
    "tool call inside the reasoning": (
        [
            turn(
                thinking="<tool_call>\n<function=shell>\n<parameter=command>echo ran</parameter>"
                "\n</function>\n</tool_call>"
            ),
            *SUCCESS,
        ],
        0,
        "done",
        "",
    ),
    "400 bad request": ([fault(400, message="bad field")], 3, "error", "HTTP 400"),
    "401 unauthorized": ([fault(401, message="invalid key")], 3, "error", "check"),
    "404 model not found": ([fault(404, message="no such model")], 3, "error", "served there"),
}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAC_RETRIES", str(RETRIES))
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("QAC_RETRY_MAX_DELAY", "0.2")
    monkeypatch.setenv("QAC_REQUEST_TIMEOUT", "1")


def check_store(session_id: str) -> list[str]:
    """Integrity, and every tool result answering a stored call; returns the roles."""
    path = Path(os.environ["QAC_HOME"]) / "sessions.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = SessionStore(path)
    messages = store.messages(session_id)
    store.close()
    called = {c.id for m in messages for c in m.tool_calls}
    assert all(m.tool_call_id in called for m in messages if m.role == "tool")
    return [m.role for m in messages]


@pytest.mark.parametrize("name", list(CASES))
def test_fault(qac, model_server: ScriptedServer, repo: Path, name: str):
    turns, code, status, phrase = CASES[name]
    model_server.script(*turns)
    out = qac(
        "run", "append", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    assert out.code == code, out.stderr
    result = out.json()
    assert result["status"] == status
    if phrase:
        assert out.stderr.count("\n") == 1, out.stderr
        assert phrase in out.stderr, out.stderr
    else:
        assert out.stderr == ""
    log = repo / "log.txt"
    assert (log.read_text() if log.exists() else "") == ("ran\n" if code == 0 else "")
    check_store(str(result["session_id"]))
    if name == "tool call inside the reasoning":
        nudge = model_server.requests[1]["messages"][-1]
        assert nudge["role"] == "user"
        assert "inside your reasoning" in nudge["content"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_then_the_server_comes_up(
    qac, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QAC_RETRIES", "6")
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.3")
    monkeypatch.setenv("QAC_RETRY_MAX_DELAY", "1")  # up to 4 s of retrying in all
    port = free_port()
    started: list[ScriptedServer] = []

    def come_up() -> None:
        time.sleep(0.5)  # until then every connection is refused: nothing listens on the port
        started.append(ScriptedServer([*SUCCESS], port=port).start())

    riser = threading.Thread(target=come_up, daemon=True)
    riser.start()
    try:
        out = qac(
            "run",
            "append",
            "--provider",
            "vllm",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "-C",
            str(repo),
            "--output-format",
            "json",
        )
    finally:
        riser.join()
        (server,) = started
        server.stop()
    assert out.code == 0, out.stderr
    assert (repo / "log.txt").read_text() == "ran\n"
    assert server.violations == []
    assert server.remaining == 0
