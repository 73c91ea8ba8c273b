"""The import rules of STYLE.md §2, checked by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_agent_cli"
OWNERS = {
    "openai": {"provider.py"},
    "anthropic": {"anthropic_provider.py"},
    "sqlite3": {"store.py", "store_schema.py"},
    "subprocess": {"sandbox.py"},
    "git": {"repository.py"},
    "typer": {"cli/"},
    "rich": {"ui/"},
    "prompt_toolkit": {"ui/"},
    "mcp": {"mcp_client.py"},
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
                owned = name in owners or any(name.startswith(o) for o in owners if o[-1] == "/")
                assert owned, f"{name} imports {library}; only {owners} may"


def test_only_cli_reads_the_environment():
    for path in modules():
        name = str(path.relative_to(PACKAGE))
        if name.startswith("cli/"):
            continue
        assert "os.environ" not in path.read_text(), f"{name} reads os.environ"


def test_modules_stay_small():
    """STYLE: small modules with one job each (the aim is 400 lines; 500 is the limit)."""
    for path in modules():
        name = str(path.relative_to(PACKAGE))
        assert len(path.read_text().splitlines()) <= 500, f"{name} is over 500 lines"


def test_agent_reads_in_one_sitting():
    assert len((PACKAGE / "agent.py").read_text().splitlines()) < 250


def qac_imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("qwen_agent_cli."):
                found.add(node.module.removeprefix("qwen_agent_cli."))
            elif node.module == "qwen_agent_cli":
                found.update(alias.name for alias in node.names)
    return found


def test_the_trust_boundary_modules_sit_low():
    """The guard, the git runner and the workspace are used by everything above them, so they
    may import only plain data and each other, in this order."""
    allowed = {
        "guard.py": {"errors"},
        "repository.py": {"errors"},
        "workspace.py": {"atomic", "errors", "guard", "text"},
        "atomic.py": set(),
        "text.py": {"types"},
        "mounts.py": {"guard", "errors"},
        "trust.py": {"errors", "guard", "config"},
    }
    for name, permitted in allowed.items():
        path = PACKAGE / name
        if path.exists():
            assert qac_imports_of(path) <= permitted, (name, qac_imports_of(path) - permitted)
