"""The import rules of STYLE.md §2, checked by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_agent_cli"
OWNERS = {
    "openai": {"provider.py"},
    "sqlite3": {"store.py"},
    "subprocess": {"sandbox.py"},
    "git": {"context.py", "ci.py"},
    "typer": {"cli.py"},
    "rich": {"ui/render.py", "ui/repl.py"},
    "prompt_toolkit": {"ui/repl.py"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "demo/repo" not in str(p)]


def test_side_effect_libraries_have_one_owner():
    for path in modules():
        name = str(path.relative_to(PACKAGE))
        for library, owners in OWNERS.items():
            if library in imports_of(path):
                assert name in owners, f"{name} imports {library}; only {owners} may"


def test_only_cli_reads_the_environment():
    for path in modules():
        name = str(path.relative_to(PACKAGE))
        if name == "cli.py":
            continue
        assert "os.environ" not in path.read_text(), f"{name} reads os.environ"


def test_agent_reads_in_one_sitting():
    assert len((PACKAGE / "agent.py").read_text().splitlines()) < 250
