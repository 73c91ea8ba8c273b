"""Client cost per step over a long session (issue 12): does the gap between a response and the
next request stay flat as the history grows?

    python tools/bench/long_session.py [--steps 200] [--runs 3] [--provider vllm|anthropic]

One whole `qac run` process against the scripted server: every step is a `read_file` of a
200-line file with some reasoning, so the history grows by a few KB a step. Prints the median
gap of the first and the last 20 steps, their ratio, the process's CPU time and peak memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer, turn

QAC = str(Path(sys.executable).with_name("qac"))
WINDOW = 20
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
errors = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
if os.waitstatus_to_exitcode(status):
    sys.exit(errors.decode(errors="replace"))
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""
FILES = 400


def sample_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    for number in range(FILES):
        body = "".join(f"def f{number}_{line}(x):\n    return x + {line}\n" for line in range(60))
        (repo / f"module_{number}.py").write_text(body)
    init_repository(repo, "bench")
    return repo


def one_run(repo: Path, env: dict[str, str], steps: int, provider: str) -> dict[str, float]:
    thought = "Reading the next module to see how the helpers fit together. " * 8
    turns = [
        turn(thinking=thought, tool_call=("read_file", {"path": f"module_{n % FILES}.py"}))
        for n in range(steps)
    ]
    with ScriptedServer([*turns, turn(text="done")]) as server:
        args = ["run", "read them", "--provider", provider, "--base-url", server.url]
        args += ["-C", str(repo), "--max-turns", str(steps + 1)]
        # Through a small Python that waits for qac: Linux carries a process's peak memory
        # across fork and exec, so qac started straight from this (large) process would
        # report this process's peak as its own.
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, QAC, *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"qac run failed: {proc.stderr}")
        peak_kb, cpu_s = proc.stdout.split()
        gaps = [server.timings[i + 1][0] - server.timings[i][1] for i in range(steps)]
    first = statistics.median(gaps[:WINDOW])
    last = statistics.median(gaps[-WINDOW:])
    return {
        "first_ms": first * 1000,
        "last_ms": last * 1000,
        "ratio": last / first,
        "cpu_s": float(cpu_s),
        "peak_mb": int(peak_kb) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--provider", default="vllm", choices=("vllm", "anthropic"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="qac-bench-long-"))
    try:
        repo = sample_repo(root)
        env = {**os.environ, "QAC_HOME": str(root / "home")}
        results = [one_run(repo, env, args.steps, args.provider) for _ in range(args.runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    pick = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(f"| measure ({args.steps} steps, median of {args.runs} runs) | result | target |")
    print("|---|---|---|")
    print(f"| median gap, steps 1-{WINDOW} | {pick['first_ms']:.1f} ms | |")
    last = f"steps {args.steps - WINDOW + 1}-{args.steps}"
    print(f"| median gap, {last} | {pick['last_ms']:.1f} ms | < 25 ms |")
    print(f"| ratio last/first | {pick['ratio']:.2f}x | <= 1.5x |")
    print(f"| client CPU, whole run | {pick['cpu_s']:.2f} s | < 5 s |")
    print(f"| peak memory | {pick['peak_mb']:.0f} MB | < 150 MB |")


if __name__ == "__main__":
    main()
