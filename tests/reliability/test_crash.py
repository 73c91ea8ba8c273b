"""Crash safety: `kill -9` of `qac run` at 50 points spread over model streaming, tool execution
and store writes; after each the store is intact, shows every completed message, and resumes.
Two processes writing one store at once do not corrupt it."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import server_args, spawn_qac

KILLS = 50
STEPS = 8


def script() -> list[dict[str, object]]:
    steps = [
        turn(
            thinking=f"step {n}: think a little before acting. " * 3,
            pieces=4,
            chunk_delay=0.015,
            tool_call=("shell", {"command": f"sleep 0.03; echo {n} >> steps.log"}),
        )
        for n in range(STEPS)
    ]
    return [*steps, turn(text="all steps done")]


def start(server: ScriptedServer, repo: Path) -> subprocess.Popen[str]:
    return spawn_qac(
        "run",
        "work",
        *server_args(server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
        stderr=subprocess.DEVNULL,
    )


def kill_after(proc: subprocess.Popen[str], seconds: float) -> list[dict[str, object]]:
    """Read events until `seconds` after the session event (start-up takes what it takes on a
    busy machine), then SIGKILL; returns the events seen before."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while b'"type": "session"' not in data:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    while chunk := os.read(fd, 65536):
        data += chunk
    proc.stdout.close()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_kill_9_at_50_points_loses_nothing_completed(qac, repo: Path):
    store_path = Path(os.environ["QAC_HOME"]) / "sessions.db"
    offsets = [1.0 * n / (KILLS - 1) for n in range(KILLS)]
    phases = {"streaming": 0, "tool": 0, "between": 0}
    for offset in offsets:
        with ScriptedServer(script()) as server:
            events = kill_after(start(server, repo), offset)
        sessions = [e for e in events if e["type"] == "session"]
        if not sessions:
            continue  # killed before the session existed: nothing to lose
        session_id = str(sessions[0]["session_id"])
        last = events[-1]["type"]
        phases[
            "streaming" if last == "thinking" else "tool" if last == "tool_call" else "between"
        ] += 1

        with contextlib.closing(sqlite3.connect(store_path)) as db, db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert qac("sessions", "show", session_id).code == 0
        store = SessionStore(store_path)
        stored = store.messages(session_id)
        store.close()
        stored_calls = {c.id for m in stored for c in m.tool_calls}
        stored_results = {m.tool_call_id for m in stored if m.role == "tool"}
        for event in events:
            if event["type"] == "tool_call":
                assert event["id"] in stored_calls
            if event["type"] == "tool_result":
                assert event["id"] in stored_results

        with ScriptedServer(
            [turn(text="resumed fine", reset_prefix=True)], check_prefix=False
        ) as again:
            resumed = qac(
                "run", "go on", "--resume", session_id, *server_args(again), "-C", str(repo)
            )
            (request,) = again.requests
        assert resumed.code == 0, resumed.stderr
        roles = [m["role"] for m in request["messages"][1:]]
        assert len(roles) >= len(stored) + 1
        assert roles[-1] == "user"
        (repo / "steps.log").unlink(missing_ok=True)
    assert sum(phases.values()) == KILLS
    assert phases["streaming"] >= 5, phases
    assert phases["tool"] + phases["between"] >= 5, phases


def test_two_processes_writing_one_store_at_once(repo: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    steps = [turn(tool_call=("read_file", {"path": "calc.py", "offset": n + 1})) for n in range(15)]
    with (
        ScriptedServer([*steps, turn(text="a done")]) as first_server,
        ScriptedServer([*steps, turn(text="b done")]) as second_server,
    ):
        first = spawn_qac(
            "run",
            "a",
            *server_args(first_server),
            "-C",
            str(repo),
            "--max-turns",
            "20",
            "--output-format",
            "json",
        )
        second = spawn_qac(
            "run",
            "b",
            *server_args(second_server),
            "-C",
            str(repo),
            "--max-turns",
            "20",
            "--output-format",
            "json",
        )
        outputs = [first.communicate(timeout=60), second.communicate(timeout=60)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    assert store.integrity_ok()
    for stdout, _ in outputs:
        session_id = json.loads(stdout)["session_id"]
        assert store.count_messages(session_id) == 1 + 15 * 2 + 1
    store.close()
