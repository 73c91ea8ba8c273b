"""Real projects' test suites run directly and through `qac ci` (issue 13): the same counts and
about the same time inside the sandbox, or a regression in sandbox compatibility shows.

    python tools/bench/real_projects.py --venv VENV NAME=DIR:COMMAND [NAME=DIR:COMMAND ...]

DIR is a project's source (an unpacked sdist or a checkout; it is copied and committed into a
fresh repository); COMMAND its test command, run with VENV's bin first on PATH (install the
project's test dependencies there first). A passing suite is `already_passing` for `qac ci`,
which then never calls a model. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.tools.shell import describe_counts, parse_test_counts

QAC = str(Path(sys.executable).with_name("qac"))


def timed(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - started, done


def one(name: str, source: Path, command: str, env: dict[str, str], root: Path) -> str:
    project = root / name
    ignore = shutil.ignore_patterns(".git", "__pycache__")
    shutil.copytree(source, project, symlinks=True, ignore=ignore)
    init_repository(project, "bench")
    direct_s, direct = timed(["bash", "-c", command], project, env)
    direct_counts = describe_counts(
        parse_test_counts(direct.stdout + direct.stderr, direct.returncode)
    )
    out = root / f"{name}-ci"
    ci_argv = [QAC, "ci", "--test-cmd", command, "-C", str(project), "--out", str(out)]
    ci_s, ci = timed(
        [*ci_argv, "--provider", "vllm", "--base-url", "http://127.0.0.1:9/v1"], project, env
    )
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    before = report.get("before") or {}
    ci_counts = describe_counts(before.get("counts") or {})
    return (
        f"| {name} | `{command}` | exit {direct.returncode}, {direct_counts}, {direct_s:.1f} s | "
        f"{report.get('status', f'exit {ci.returncode}')}, {ci_counts}, "
        f"test run {before.get('duration_s', 0):.1f} s, whole `qac ci` {ci_s:.1f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("projects", nargs="+", help="NAME=DIR:COMMAND")
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{args.venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    root = Path(tempfile.mkdtemp(prefix="qac-bench-real-"))
    env["QAC_HOME"] = str(root / "home")
    rows = []
    try:
        for spec in args.projects:
            name, _, rest = spec.partition("=")
            source, _, command = rest.partition(":")
            rows.append(one(name, Path(source), command, env, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| project | test command | run directly | through `qac ci` (sandboxed) |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
