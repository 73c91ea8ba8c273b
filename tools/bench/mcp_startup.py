"""Start to first model request with MCP servers configured (issue 15): none, and two stdio
servers from PyPI (`mcp-server-time`, `mcp-server-git`), as whole `qac run` processes against
the scripted server.

    python tools/bench/mcp_startup.py [--runs 10]

Prints a Markdown table of medians (min-max); docs/BENCHMARKS.md records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import run_qac, sample_repo

BIN = Path(sys.executable).parent
TWO_SERVERS = f"""
[mcp.servers.time]
command = {json.dumps(str(BIN / "mcp-server-time"))}
args = ["--local-timezone", "UTC"]

[mcp.servers.git]
command = {json.dumps(str(BIN / "mcp-server-git"))}
"""


def first_request(repo: Path, env: dict[str, str], runs: int, cold: bool = False) -> list[float]:
    delays = []
    for _ in range(runs):
        if cold:  # no tool list from an earlier run: qac waits for the servers
            (Path(env["QAC_HOME"]) / "mcp-tools.json").unlink(missing_ok=True)
        with ScriptedServer([turn(text="ok")]) as server:
            started, _ = run_qac(
                ["run", "hi", "--provider", "vllm", "--base-url", server.url, "-C", str(repo)], env
            )
            delays.append(server.timings[0][0] - started)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="qac-bench-mcp-"))
    try:
        repo = sample_repo(root)
        rows = []
        cases = (
            ("no MCP servers", "", False),
            ("two stdio servers, their tools known from an earlier run", TWO_SERVERS, False),
            ("two stdio servers, first run (no tool list yet)", TWO_SERVERS, True),
        )
        for number, (label, config, cold) in enumerate(cases):
            home = root / f"home-{number}"
            home.mkdir()
            (home / "config.toml").write_text(config)
            env = {**os.environ, "QAC_HOME": str(home)}
            first_request(repo, env, 1)  # warm the caches (map, bytecode, tool list)
            delays = first_request(repo, env, args.runs, cold)
            rows.append((label, delays))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"| `qac run` start to first request (median of {args.runs}, min-max) | result |")
    print("|---|---|")
    for label, delays in rows:
        median = statistics.median(delays) * 1000
        print(f"| {label} | {median:.0f} ms ({min(delays) * 1000:.0f}-{max(delays) * 1000:.0f}) |")
    base = statistics.median(rows[0][1])
    for label, delays in rows[1:]:
        added = (statistics.median(delays) - base) * 1000
        print(f"| added: {label} | {added:.0f} ms |")


if __name__ == "__main__":
    main()
