"""A large, reproducible git repository for start-up and repository-map benchmarks.

    python tools/bench/bigrepo.py DIR [--files 50000] [--seed 1]

Writes DIR/repo (never inside this checkout): nested packages of Python modules with classes,
methods, functions and constants that import and call each other, some JavaScript, and some
Markdown and JSON, all committed in one commit. The same seed and count give the same bytes.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from qwen_agent_cli.repository import init_repository

VERBS = [
    "load",
    "save",
    "parse",
    "render",
    "build",
    "check",
    "merge",
    "split",
    "fetch",
    "store",
    "apply",
    "index",
    "scan",
    "sort",
]
NOUNS = [
    "order",
    "invoice",
    "cart",
    "user",
    "price",
    "token",
    "record",
    "batch",
    "report",
    "ledger",
    "account",
    "event",
]
PYTHON_SHARE = 0.80
JS_SHARE = 0.15


def module_path(number: int) -> str:
    """Where the generated Python module `number` lives: 50 packages of 20 subpackages."""
    return f"src/pkg{number % 50}/sub{(number // 50) % 20}/mod{number}.py"


def _name(rng: random.Random, number: int) -> str:
    return f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{number}"


def _python(rng: random.Random, number: int, modules: list[str]) -> str:
    """A module that imports two others' functions and defines classes and functions of its own."""
    lines = ['"""Generated module."""', ""]
    for _ in range(2):
        other = rng.randrange(len(modules))
        lines.append(f"from {modules[other]} import func_{other}_0, Model{other}")
    lines += ["", f"LIMIT_{number} = {rng.randrange(1000)}", ""]
    for cls in range(rng.randint(1, 2)):
        lines += ["", f"class Model{number}{'' if cls == 0 else cls}:"]
        lines.append(f'    """A {rng.choice(NOUNS)} model."""')
        for method in range(rng.randint(2, 4)):
            lines += [
                "",
                f"    def {_name(rng, method)}(self, value: int) -> int:",
                f"        return func_{number}_0(value) + LIMIT_{number}",
            ]
        lines.append("")
    for func in range(rng.randint(3, 5)):
        callee = rng.randrange(len(modules))
        lines += [
            "",
            f"def func_{number}_{func}(value: int) -> int:",
            f"    total = value * {rng.randrange(1, 9)}",
            f"    if total > LIMIT_{number}:",
            f"        return Model{callee}().check_order_0(total) if False else total",
            "    return total",
            "",
        ]
    return "\n".join(lines) + "\n"


def _javascript(rng: random.Random, number: int) -> str:
    return (
        f"export class Widget{number} {{\n  render(props) {{\n"
        f"    return formatValue{number}(props);\n  }}\n}}\n\n"
        f"export function formatValue{number}(value) {{\n"
        f"  return String(value * {rng.randrange(1, 9)});\n}}\n\n"
        f"export const handler{number} = (event) => formatValue{number}(event.detail);\n"
    )


def generate(repo: Path, files: int, seed: int = 1) -> Path:
    """Write and commit the repository; returns its root."""
    rng = random.Random(seed)
    python_count = int(files * PYTHON_SHARE)
    js_count = int(files * JS_SHARE)
    dotted = [module_path(n).removesuffix(".py").replace("/", ".") for n in range(python_count)]
    for number in range(python_count):
        path = repo / module_path(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_python(rng, number, dotted))
    for number in range(js_count):
        path = repo / f"web/app{number % 25}/part{(number // 25) % 10}/widget{number}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_javascript(rng, number))
    for number in range(files - python_count - js_count):
        suffix = ".md" if number % 2 else ".json"
        path = repo / f"docs/area{number % 30}/note{number}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Note {number}\n" if suffix == ".md" else f'{{"note": {number}}}\n')
    (repo / "README.md").write_text("A generated repository for benchmarks.\n")
    init_repository(repo, "generated")
    return repo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    repo = generate(args.directory / "repo", args.files, args.seed)
    print(f"{repo}: {args.files + 1} files in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
