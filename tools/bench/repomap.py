"""Repository map benchmark: cold, warm and one-file-changed builds of a large installed code base.

    python tools/bench/repomap.py [--packages openai mypy] [--runs 5]

Copies the packages' sources from site-packages into a temporary directory (so one file can be
changed) and prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qwen_agent_cli.repomap import RepoMap, build_map, estimate_tokens
from qwen_agent_cli.tokens import count_tokens, exact

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])


def copy_sources(packages: list[str], into: Path) -> list[str]:
    """The packages' .py files under `into`, as the workspace-relative paths git would list."""
    files = []
    for package in packages:
        for source in sorted((SITE_PACKAGES / package).rglob("*.py")):
            rel = source.relative_to(SITE_PACKAGES)
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / rel)
            files.append(rel.as_posix())
    return files


def timed(build: Callable[[], RepoMap], runs: int) -> tuple[float, RepoMap]:
    """Median seconds over `runs` builds, and the last map."""
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = build()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", nargs="+", default=["openai", "mypy"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="qac-repomap-"))
    try:
        tree, caches = root / "tree", root / "caches"
        files = copy_sources(args.packages, tree)
        size = sum((tree / rel).stat().st_size for rel in files)
        fresh_caches = iter(range(args.runs))

        def cold() -> RepoMap:
            return build_map(tree, files, cache_dir=caches / str(next(fresh_caches)))

        def warm() -> RepoMap:
            return build_map(tree, files, cache_dir=caches / "0")

        def changed() -> RepoMap:
            target = tree / files[len(files) // 2]
            target.write_text(target.read_text() + "\ndef bench_added():\n    pass\n")
            return build_map(tree, files, cache_dir=caches / "0")

        def qwen() -> RepoMap:
            return build_map(tree, files, cache_dir=caches / "0", count_tokens=count_tokens)

        cold_s, first = timed(cold, args.runs)
        warm_s, again = timed(warm, args.runs)
        changed_s, incremental = timed(changed, args.runs)
        count_tokens("warm up")
        qwen_s, exact_map = timed(qwen, args.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    corpus = f"{len(files)} files, {size / 1e6:.1f} MB of Python ({', '.join(args.packages)})"
    tokenizer = "Qwen3.6 tokenizer" if exact() else "estimate: tokenizer missing"
    rows = [
        ("cold build (empty cache)", cold_s, "< 5 s", first, estimate_tokens),
        ("warm build (cache full)", warm_s, "< 0.3 s", again, estimate_tokens),
        ("one file changed", changed_s, "", incremental, estimate_tokens),
        (f"warm build, counted by the {tokenizer}", qwen_s, "", exact_map, count_tokens),
    ]
    print(f"Repository map of {corpus}, {os.cpu_count()} CPUs, median of {args.runs} runs\n")
    print("| build | median | target | parsed | cached | symbols | tokens (by its counter) |")
    print("|---|---|---|---|---|---|---|")
    for name, seconds, target, result, counter in rows:
        print(
            f"| {name} | {seconds * 1000:.0f} ms | {target} | {result.files_parsed} "
            f"| {result.files_cached} | {result.symbols} | {counter(result.text)} |"
        )


if __name__ == "__main__":
    main()
