"""Start-up on a large repository: `qac run` to its first model request with an empty map
cache, a warm one, and a warm one after one file changed, and the session-start snapshot
(git listing, tree, repository map) alone, in this process.

    python tools/bench/startup.py [--files 50000] [--runs 3] [--repo DIR] [--profile]

Generates the repository with tools/bench/bigrepo.py in a temporary directory (or reuses --repo,
a repository bigrepo.py wrote), runs `qac run` as a whole process against the scripted server,
and prints a Markdown table for docs/BENCHMARKS.md. `--profile` prints a cProfile of one warm
snapshot and one after a change instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwen_agent_cli import context
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.tokens import estimate_tokens

sys.path.insert(0, str(Path(__file__).parent))
from bigrepo import PYTHON_SHARE, generate, module_path

QAC = str(Path(sys.executable).with_name("qac"))
MAP_TOKENS = 2000


def first_request(repo: Path, home: Path) -> tuple[float, int]:
    """Seconds from starting `qac run` to its first request, and the process's peak RSS in KB."""
    env = {**os.environ, "QAC_HOME": str(home)}
    with ScriptedServer([turn(text="ok")]) as server:
        args = ["run", "x", "--provider", "vllm", "--base-url", server.url, "-C", str(repo)]
        started = time.monotonic()
        proc = subprocess.Popen([QAC, *args], env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"qac run failed with {os.waitstatus_to_exitcode(status)}")
        return server.timings[0][0] - started, usage.ru_maxrss


def take_snapshot(repo: Path, cache: Path) -> context.Snapshot:
    return context.snapshot(
        repo,
        Repository.find(repo),
        map_tokens=MAP_TOKENS,
        map_cache=cache,
        count_tokens=estimate_tokens,
    )


def timed_snapshot(repo: Path, cache: Path) -> tuple[float, context.Snapshot]:
    started = time.perf_counter()
    taken = take_snapshot(repo, cache)
    return time.perf_counter() - started, taken


def heap_peak(repo: Path, cache: Path) -> int:
    """tracemalloc's peak over one snapshot, in bytes (traced apart: tracing slows it down)."""
    tracemalloc.start()
    take_snapshot(repo, cache)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@contextmanager
def one_file_changed(repo: Path, files: int) -> Iterator[None]:
    """One source file edited, the common case between two sessions; put back afterwards (which
    is a change too, as far as stamps go)."""
    target = repo / module_path(int(files * PYTHON_SHARE) // 2)
    before = target.read_text()
    target.write_text(before + "\ndef bench_added():\n    return 1\n")
    try:
        yield
    finally:
        target.write_text(before)


def median_ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:,.0f} ms ({low:,.0f}-{high:,.0f})"


def profile(repo: Path, cache: Path, files: int) -> None:
    take_snapshot(repo, cache)
    for title in ("warm", "one file changed"):
        profiler = cProfile.Profile()
        if title == "warm":
            profiler.runcall(take_snapshot, repo, cache)
        else:
            with one_file_changed(repo, files):
                profiler.runcall(take_snapshot, repo, cache)
        print(f"## {title}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", type=Path, help="a repository bigrepo.py wrote, reused as is")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="qac-startup-"))
    try:
        repo = args.repo or generate(scratch / "repo", args.files)
        if args.profile:
            profile(repo, scratch / "profile-cache", args.files)
            return
        times: dict[str, list[float]] = {"cold": [], "warm": [], "changed": []}
        peaks: dict[str, list[int]] = {"cold": [], "warm": [], "changed": []}
        for run in range(args.runs):
            home = scratch / f"home{run}"
            for kind in times:
                if kind == "changed":
                    with one_file_changed(repo, args.files):
                        seconds, peak = first_request(repo, home)
                else:
                    seconds, peak = first_request(repo, home)
                times[kind].append(seconds)
                peaks[kind].append(peak)
        cache = scratch / "phase"
        phase = {"cold": [timed_snapshot(repo, cache)]}
        phase["warm"] = [timed_snapshot(repo, cache) for _ in range(args.runs)]
        heap = heap_peak(repo, cache)
        with one_file_changed(repo, args.files):
            phase["changed"] = [timed_snapshot(repo, cache)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    maps = {kind: taken[-1][1].map for kind, taken in phase.items()}
    print(
        f"{args.files:,} files, {os.cpu_count()} CPUs, median (min-max) of {args.runs} runs; "
        + "; ".join(
            f"{kind}: {m.files_parsed} parsed, {m.files_cached} cached, "
            f"reused {getattr(m, 'reused', False)}"
            for kind, m in maps.items()
            if m is not None
        )
        + "\n"
    )
    print("| measure | cold | warm | one file changed |\n|---|---|---|---|")
    print("| `qac run` start to first request |", " | ".join(map(median_ms, times.values())), "|")
    print(
        "| peak RSS of that `qac run` |",
        " | ".join(f"{max(p) / 1024:,.0f} MB" for p in peaks.values()),
        "|",
    )
    print(
        "| snapshot phase alone (in-process) |",
        " | ".join(median_ms([t for t, _ in taken]) for taken in phase.values()),
        "|",
    )
    print(f"\nPython heap peak of a warm snapshot (tracemalloc): {heap / 1e6:,.1f} MB")


if __name__ == "__main__":
    main()
