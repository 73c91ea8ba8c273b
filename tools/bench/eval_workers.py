"""`qac eval --demo` (8 tasks x 2 arms = 16 `qac ci` jobs, scripted model, real sandbox) with
--workers 1 and --workers 2 (issue 18): the evaluation's wall time, and per job the eval's own
overhead beyond the `qac ci` process and the task's commands (worktree, patch, verdict set-up,
record), as `overhead_s` in results.jsonl says.

    python tools/bench/eval_workers.py [--runs 3]

Prints a Markdown table of medians (min-max); docs/BENCHMARKS.md records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(workers: int, root: Path) -> tuple[float, list[dict[str, float]]]:
    """One whole demo evaluation as a process: its wall time and its records."""
    out = Path(tempfile.mkdtemp(dir=root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QAC_")}
    env["QAC_HOME"] = str(out / "home")
    argv = [sys.executable, "-m", "qwen_agent_cli", "eval", "--demo"]
    argv += ["--out", str(out / "eval"), "--workers", str(workers)]
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    wall = time.monotonic() - started
    lines = (out / "eval" / "results.jsonl").read_text().splitlines()
    return wall, [json.loads(line) for line in lines]


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    walls: dict[int, list[float]] = {1: [], 2: []}
    overheads: list[float] = []
    ci: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(runs):
            for workers in (1, 2):  # alternated, so a change in the machine's load hits both
                wall, records = run_demo(workers, Path(scratch))
                walls[workers].append(wall)
                overheads += [float(r["overhead_s"]) for r in records]
                ci += [float(r["wall_s"]) - float(r["overhead_s"]) for r in records]
    ratio = [two / one for one, two in zip(walls[1], walls[2], strict=True)]
    load = os.getloadavg()[0]
    print(f"{runs} runs of each, {os.cpu_count()} cores, load average {load:.1f}\n")
    print("| measure | median (min-max) |")
    print("|---|---|")
    print(f"| demo evaluation, --workers 1 | {spread(walls[1])} |")
    print(f"| demo evaluation, --workers 2 | {spread(walls[2])} |")
    print(f"| workers 2 / workers 1 | {spread(ratio, unit='x')} |")
    print(f"| per job: qac ci process and task commands | {spread(ci)} |")
    over = sorted(overheads)
    p90 = over[int(0.9 * (len(over) - 1))]
    print(f"| per job: eval overhead beyond them | {spread(overheads)}, p90 {p90:.2f} s |")


if __name__ == "__main__":
    main()
