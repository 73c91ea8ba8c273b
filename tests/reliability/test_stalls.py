"""Stall detection: repeated failing calls and re-reading without acting are told, then stopped."""

from __future__ import annotations

from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args


def test_the_same_failing_call_is_told_then_stopped(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(*[turn(tool_call=("shell", {"command": "false"})) for _ in range(6)])
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 1
    events = out.lines()
    results = [str(e["output"]) for e in events if e["type"] == "tool_result"]
    assert "same call" not in results[1]
    assert "[You have made this same call 3 times and it failed the same way" in results[2]
    assert '3. shell({"command": "false"}) -> exit code 1' in results[2]
    assert events[-1]["status"] == "stuck"
    assert 'kept repeating shell({"command": "false"})' in str(events[-1]["result"])
    assert out.stderr.startswith("qac: stopped: the model kept repeating a failing action")


def test_re_reading_without_acting_is_stopped_and_thresholds_are_configurable(
    qac, model_server: ScriptedServer, repo: Path
):
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text("stuck_warn_after = 2\nstuck_stop_after = 4\n")
    model_server.script(*[turn(tool_call=("read_file", {"path": "calc.py"})) for _ in range(4)])
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 1
    results = [str(e["output"]) for e in out.lines() if e["type"] == "tool_result"]
    assert "nothing changed in between" in results[1]
    assert out.lines()[-1]["status"] == "stuck"


def test_acting_between_reads_resets_the_count(qac, model_server: ScriptedServer, repo: Path):
    read = turn(tool_call=("read_file", {"path": "calc.py"}))
    touch = turn(tool_call=("shell", {"command": "echo x >> notes.txt"}))
    model_server.script(read, read, touch, read, read, touch, read, read, turn(text="done"))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    assert out.code == 0, out.stderr
    assert out.json()["status"] == "done"
