"""Stall detection: repeated failing calls and re-reading without acting are told, then stopped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


LOOPING_TEST = """import os
import tempfile
import time

from calc import average


def test_average():
    with tempfile.TemporaryDirectory() as scratch:
        assert average([1, 2, 3, 4]) == 2.5, f"pid {os.getpid()} in {scratch} at {time.time()}"
"""


def stream(qac, server: ScriptedServer, repo: Path, *extra: str) -> list[dict[str, object]]:
    out = qac(
        "run", "x", *server_args(server), "-C", str(repo), "--output-format", "stream-json", *extra
    )
    events: list[dict[str, object]] = out.lines()
    return events


def tool_outputs(events: list[dict[str, object]]) -> list[str]:
    return [str(e["output"]) for e in events if e["type"] == "tool_result"]


def test_run_tests_on_real_pytest_with_changing_output_is_stopped(
    qac, model_server: ScriptedServer, repo: Path
):
    """The issue's case: pytest's timing (here also a pid and a temp dir) made each failure new."""
    (repo / "test_loop.py").write_text(LOOPING_TEST)
    test_cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider test_loop.py"
    model_server.script(*[turn(tool_call=("run_tests", {})) for _ in range(6)])
    events = stream(qac, model_server, repo, "--test-cmd", test_cmd)
    outputs = tool_outputs(events)
    varying = [
        line
        for o in outputs
        for line in o.splitlines()
        if line.startswith("E   ") and " pid " in line
    ]
    assert len(set(varying)) == len(varying) == 6, varying
    assert "Stop repeating" not in outputs[1]
    assert "[You have made this same call 3 times and it failed the same way" in outputs[2]
    assert len(outputs) == 6
    assert events[-1]["status"] == "stuck"
    assert "kept repeating run_tests({}) -> tests FAILED" in str(events[-1]["result"])


def test_two_failing_commands_alternating_with_near_repeat_spellings_are_stopped(
    qac, model_server: ScriptedServer, repo: Path
):
    spellings = [
        "ls ./missing/",
        "python3 -m unittest -q",
        "ls missing/ ",
        "python3  -m unittest -q",
    ]
    model_server.script(
        *[turn(tool_call=("shell", {"command": spellings[i % 4]})) for i in range(6)]
    )
    events = stream(qac, model_server, repo)
    outputs = tool_outputs(events)
    assert "Stop repeating" not in outputs[2]
    assert "[You have gone round the same 2 calls 2 times (4 calls)" in outputs[3]
    assert events[-1]["status"] == "stuck"
    assert events[-1]["result"] == (
        'stopped: the model kept repeating the cycle shell({"command": "ls ./missing/"}) '
        'then shell({"command": "python3 -m unittest -q"})'
    )


def test_re_reading_one_file_with_cat_and_read_file_is_stopped(
    qac, model_server: ScriptedServer, repo: Path
):
    reads: list[tuple[str, dict[str, Any]]] = [
        ("read_file", {"path": "./calc.py"}),
        ("shell", {"command": "cat calc.py"}),
        ("read_file", {"path": "calc.py"}),
        ("shell", {"command": "cat ./calc.py "}),
        ("read_file", {"path": "calc.py", "offset": 1}),
        ("shell", {"command": "cat  calc.py"}),
    ]
    model_server.script(*[turn(tool_call=read) for read in reads])
    events = stream(qac, model_server, repo)
    outputs = tool_outputs(events)
    assert "nothing changed in between" not in outputs[1]
    assert "[You have made this same call 3 times and nothing changed in between" in outputs[2]
    assert events[-1]["status"] == "stuck"


def test_real_progress_is_never_stopped(qac, model_server: ScriptedServer, repo: Path):
    """A failing check whose output changes in its words after each edit is work, not a loop."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    check = ("shell", {"command": "cat notes.txt && false"})
    model_server.script(
        *[
            turn(tool_calls=[("write_file", {"path": "notes.txt", "content": word}), check])
            for word in words
        ],
        turn(text="done"),
    )
    events = stream(qac, model_server, repo)
    outputs = tool_outputs(events)
    assert len(outputs) == 16
    assert not [o for o in outputs if "Stop repeating" in o]
    assert events[-1]["status"] == "done"
