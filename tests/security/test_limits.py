"""Small things an attacker can trigger: a path deep enough to exhaust recursion, and scratch
space that would otherwise grow to half the machine's memory."""

from __future__ import annotations

import os
from pathlib import Path

from qwen_agent_cli.sandbox import make_executor
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args


def test_a_path_thousands_of_directories_deep_is_a_tool_error(
    qac, model_server: ScriptedServer, repo: Path
):
    deep = "/".join(["d"] * 2000) + "/x.txt"
    model_server.script(
        turn(tool_call=("write_file", {"path": deep, "content": "x"})),
        turn(tool_call=("read_file", {"path": deep})),
        turn(tool_call=("write_file", {"path": "a" * 5000, "content": "x"})),
        turn(text="still here"),
    )
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    results = [e for e in out.lines() if e["type"] == "tool_result"]
    assert all(
        r["is_error"] and "refused, a path may have at most" in str(r["output"]) for r in results
    )
    assert not (repo / "d").exists()


def test_the_sandbox_scratch_space_is_bounded(repo: Path):
    executor = make_executor(
        "workspace-write",
        workspace=repo,
        env={"PATH": os.environ["PATH"]},
        network=False,
        scratch_mb=4,
    )
    result = executor.run(
        "for d in /tmp /var/tmp /dev/shm; do "
        "head -c 6000000 /dev/zero > $d/fill 2>/dev/null && echo $d-unbounded || echo $d-full; "
        "done",
        cwd=repo,
        timeout=30,
    )
    assert result.output.split() == ["/tmp-full", "/var/tmp-full", "/dev/shm-full"], result.output
