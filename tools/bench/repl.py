"""REPL benchmarks (issue 5): start-up to an accepting prompt, and how fast the renderer takes
streamed thinking compared with 200 tokens a second.

    python tools/bench/repl.py [--runs 10]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect
from rich.console import Console

from qwen_agent_cli.events import Text, Thinking
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.ui.render import Renderer

TOKENS = 4000
TARGET_RATE = 200


def startup(runs: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="qac-bench-repl-"))
    repo = root / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    init_repository(repo, "bench")
    env = {**os.environ, "TERM": "xterm-256color", "QAC_HOME": str(root / "home")}
    qac = str(Path(sys.executable).with_name("qac"))
    times = []
    for _ in range(runs):
        started = time.monotonic()
        child = pexpect.spawn(
            qac,
            ["--provider", "vllm", "-C", str(repo)],
            env=env,
            encoding="utf-8",
            dimensions=(40, 120),
            timeout=10,
        )
        child.expect_exact("›")  # noqa: RUF001
        times.append(time.monotonic() - started)
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
    return statistics.median(times)


def render_rate(mode: str) -> tuple[float, bool]:
    """Thinking pieces (one token each) the renderer takes per second, and whether the text
    came out whole and in order (checked in full mode, where every piece is printed)."""
    out = io.StringIO()
    renderer = Renderer(
        Console(file=out, width=120, force_terminal=True, color_system=None), thinking=mode
    )
    pieces = [f"t{n} " for n in range(TOKENS)]
    started = time.monotonic()
    for piece in pieces:
        renderer.write(Thinking(text=piece))
    renderer.write(Text(text="done"))
    renderer.end_block()
    elapsed = time.monotonic() - started
    whole = "".join(pieces) in out.getvalue() if mode == "full" else True
    return TOKENS / elapsed, whole


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    start = startup(args.runs)
    live_rate, _ = render_rate("show")
    full_rate, whole = render_rate("full")
    print("| measure | result | target |\n|---|---|---|")
    print(
        f"| `qac` start to an accepting prompt (median of {args.runs}) | "
        f"{start * 1000:.0f} ms | < 500 ms |"
    )
    print(
        f"| renderer, thinking shown live (tail, folded) | {live_rate:,.0f} tokens/s | "
        f"> {TARGET_RATE} tokens/s |"
    )
    print(
        f"| renderer, `/thinking full` | {full_rate:,.0f} tokens/s, text whole and in order: "
        f"{'yes' if whole else 'NO'} | > {TARGET_RATE} tokens/s |"
    )


if __name__ == "__main__":
    main()
