"""The file, search and command tools, called through the registry as the model calls them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_agent_cli.config import load_settings
from qwen_agent_cli.sandbox import DirectExecutor
from qwen_agent_cli.tools import BUILTIN_TOOLS, ToolContext, ToolRegistry
from qwen_agent_cli.tools.shell import parse_test_counts
from qwen_agent_cli.types import ToolCall, ToolResult
from qwen_agent_cli.workspace import Workspace


@pytest.fixture
def registry(tmp_path: Path) -> ToolRegistry:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 1\n")
    (root / ".git").mkdir()
    settings = load_settings(
        env={},
        user_file=None,
        project_dir=None,
        flags={"tool_output_limit": 2000, "test_cmd": "echo '3 passed in 0.1s'"},
    )
    executor = DirectExecutor(env={"PATH": "/usr/bin:/bin"})
    return ToolRegistry(BUILTIN_TOOLS, ToolContext(Workspace(root), executor, settings))


def call(registry: ToolRegistry, name: str, **args: object) -> ToolResult:
    tool_call = ToolCall("c1", name, json.dumps(args))
    try:
        found, parsed = registry.parse(tool_call)
    except Exception as exc:  # the agent turns ToolError into an error result the same way
        return ToolResult("c1", name, str(exc), is_error=True)
    return registry.invoke(found, tool_call, parsed)


def test_schemas_come_from_signatures(registry: ToolRegistry):
    schemas = {s["function"]["name"]: s["function"] for s in registry.schemas()}
    assert list(schemas) == [
        "read_file",
        "write_file",
        "edit_file",
        "list_files",
        "glob",
        "grep",
        "shell",
        "run_tests",
        "update_plan",
        "web_fetch",
    ]
    edit = schemas["edit_file"]["parameters"]
    assert edit["required"] == ["path", "old", "new"]
    assert edit["properties"]["old"] == {
        "type": "string",
        "description": "the exact text to replace",
    }
    assert "ctx" not in edit["properties"]
    assert schemas["grep"]["parameters"]["properties"]["ignore_case"]["type"] == "boolean"


def test_edit_file_replaces_one_exact_occurrence(registry: ToolRegistry):
    result = call(
        registry,
        "edit_file",
        path="a.py",
        old="def f():\n    return 1",
        new="def f():\n    return 2",
    )
    assert (result.is_error, result.files_changed) == (False, ("a.py",))
    assert "return 2" in (registry.ctx.workspace.root / "a.py").read_text()


def test_edit_file_not_unique_names_the_lines(registry: ToolRegistry):
    result = call(registry, "edit_file", path="a.py", old="return 1", new="return 3")
    assert result.is_error
    assert "occurs 2 times" in result.output
    assert "lines 2, 6" in result.output


def test_edit_file_not_found_names_the_closest_candidates(registry: ToolRegistry):
    result = call(registry, "edit_file", path="a.py", old="def g():\n  return 1", new="x")
    assert result.is_error
    assert "Closest candidates" in result.output
    assert "lines 5-6" in result.output
    assert "def g():\n    return 1" in result.output


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("write_file", {"path": "../outside.txt", "content": "x"}, "outside the workspace"),
        ("write_file", {"path": "/etc/qac-test", "content": "x"}, "outside the workspace"),
        ("write_file", {"path": ".git/hooks/pre-commit", "content": "x"}, ".git directory"),
        ("read_file", {"path": "../../etc/passwd"}, "outside the workspace"),
        ("read_file", {"path": "missing.py"}, "does not exist"),
        ("read_file", {}, "read_file needs path"),
        ("read_file", {"path": 3}, "path must be a string"),
        ("read_file", {"path": "a.py", "colour": "red"}, "has no parameter colour"),
        ("grep", {"pattern": "("}, "bad regular expression"),
    ],
)
def test_bad_calls_are_error_results(
    registry: ToolRegistry, name: str, args: dict[str, object], message: str
):
    result = call(registry, name, **args)
    assert result.is_error
    assert message in result.output
    assert not (registry.ctx.workspace.root.parent / "outside.txt").exists()


def test_symlinks_pointing_out_are_refused(registry: ToolRegistry, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (registry.ctx.workspace.root / "link").symlink_to(secret)
    for name, args in (
        ("read_file", {"path": "link"}),
        ("write_file", {"path": "link", "content": "x"}),
        ("edit_file", {"path": "link", "old": "top", "new": "x"}),
    ):
        result = call(registry, name, **args)
        assert result.is_error
        assert "symlink pointing outside" in result.output
    assert secret.read_text() == "top secret"


def test_binary_huge_and_non_utf8_files(registry: ToolRegistry):
    root = registry.ctx.workspace.root
    (root / "bin.dat").write_bytes(b"\x00\x01\x02" * 100)
    (root / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with (root / "big.txt").open("w") as handle:
        for number in range(200_000):
            handle.write(f"line {number}\n")
    assert "binary file" in call(registry, "read_file", path="bin.dat").output
    assert (
        "not UTF-8 text" in call(registry, "edit_file", path="latin.txt", old="caf", new="x").output
    )
    assert "not valid UTF-8" in call(registry, "read_file", path="latin.txt").output
    window = call(registry, "read_file", path="big.txt", offset=1000, limit=3)
    assert window.output.startswith("line 999\nline 1000\nline 1001\n")
    assert "read on with offset=1003" in window.output
    assert "characters cut" in call(registry, "read_file", path="big.txt").output


def test_search_tools(registry: ToolRegistry):
    assert call(registry, "glob", pattern="**/*.py").output == "a.py"
    assert call(registry, "grep", pattern=r"def \w").output == "a.py:1: def f():\na.py:5: def g():"
    assert "a.py" in call(registry, "list_files").output


def test_shell_and_run_tests(registry: ToolRegistry):
    shell = call(registry, "shell", command="echo hello; exit 3")
    assert (shell.output, shell.is_error) == ("exit code 3\nhello\n", True)
    tests = call(registry, "run_tests")
    assert tests.output.startswith("tests PASSED (3 passed) running")


def test_test_summary_parses_pytest_and_unittest():
    assert parse_test_counts("===== 2 failed, 5 passed, 1 skipped in 0.3s =====", 1) == {
        "failed": 2,
        "passed": 5,
        "skipped": 1,
    }
    assert parse_test_counts("Ran 4 tests in 0.01s\n\nFAILED (failures=1, errors=1)", 1) == {
        "failed": 1,
        "errors": 1,
        "passed": 2,
    }
    assert parse_test_counts("Ran 4 tests in 0.01s\n\nOK", 0) == {"passed": 4}
    assert parse_test_counts("no idea", 1) == {}
