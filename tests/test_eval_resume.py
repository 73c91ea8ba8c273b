"""`qac eval` killed mid-way and run again: finished pairs are kept and not re-run, a line torn
by the kill is dropped, nothing is counted twice, and the killed run's scratch is removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_eval import eval_env, results, run_eval

ONLY = "py-average,py-slug,bash-greet"


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    """Until results.jsonl holds `count` complete lines (the event), or the run ends."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {count} lines")


def start(args: list[str], home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_agent_cli", *args],
        env=eval_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_evaluation_resumes_without_rerunning_or_double_counting(tmp_path: Path):
    out = tmp_path / "out"
    args = ["eval", "--demo", "--only", ONLY, "--out", str(out), "--workers", "1"]
    proc = start(args, tmp_path / "home")
    try:
        wait_for_lines(out / "results.jsonl", 1, proc)
        os.kill(proc.pid, signal.SIGTERM)  # as a CI runner cancelling the job does
    finally:
        _, stderr = proc.communicate()
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM); " in stderr
    first = results(out)
    assert len(first) < 6
    assert (out / "report.md").exists()

    proc = start(args, tmp_path / "home")
    try:
        wait_for_lines(out / "results.jsonl", len(first) + 1, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate()
    before = results(out)
    assert before[: len(first)] == first
    assert len(first) < len(before) < 6
    scratch = Path((out / ".work").read_text().strip())
    # A write the kill tore in half: no newline, not JSON.
    with (out / "results.jsonl").open("a") as handle:
        handle.write('{"task": "py-slug", "arm": "no-pre')

    again = run_eval(*args[1:], home=tmp_path / "home")

    assert again.code == 0, again.stderr
    assert f"{6 - len(before)} of 6 runs to do ({len(before)} done before)" in again.stderr
    after = results(out)
    assert len(after) == 6
    assert len({(r["task"], r["arm"]) for r in after}) == 6
    assert after[: len(before)] == before  # the finished runs, untouched and not re-run
    sessions = {r["session_id"] for r in after}
    assert len(sessions) == 6
    for arm in ("preserve", "no-preserve"):
        lines = (out / f"predictions-{arm}.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["instance_id"] for line in lines) == sorted(ONLY.split(","))
    assert "| preserve | 3 |" in (out / "report.md").read_text()
    assert not scratch.exists()
    assert not (out / ".work").exists()
