"""Shared fixtures: a scripted model server, a real git repository, a clean environment, and
helpers that run `qac` in-process or as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qwen_agent_cli.cli import invoke
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer

BUGGY_CALC = """def average(values):
    return sum(values) // len(values)
"""
TEST_CALC = """import unittest

from calc import average


class CalcTest(unittest.TestCase):
    def test_average(self):
        self.assertEqual(average([1, 2, 3, 4]), 2.5)


if __name__ == "__main__":
    unittest.main()
"""
TEST_CMD = "python3 -m unittest -q"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden files")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare text with tests/golden/NAME, or rewrite it with --update-golden."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = Path(__file__).parent / "golden" / name
        if update or not path.exists():
            path.write_text(text, encoding="utf-8")
        assert text == path.read_text(encoding="utf-8"), (
            f"{name} differs; review, then --update-golden"
        )

    return check


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray QAC_*, OPENAI_* or provider keys; a private QAC_HOME for the store."""
    for name in list(os.environ):
        if name.startswith(("QAC_", "OPENAI_")) or name.endswith("_API_KEY"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "qac-home"
    monkeypatch.setenv("QAC_HOME", str(home))
    return home


@pytest.fixture
def model_server() -> Iterator[ScriptedServer]:
    """A scripted server that fails the test on broken invariants or unplayed turns."""
    server = ScriptedServer().start()
    yield server
    server.stop()
    assert server.violations == []
    assert server.remaining == 0, f"{server.remaining} scripted turns were never requested"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with a failing unittest."""
    path = tmp_path / "project"
    path.mkdir()
    (path / "calc.py").write_text(BUGGY_CALC)
    (path / "test_calc.py").write_text(TEST_CALC)
    (path / "AGENTS.md").write_text("Run tests with python3 -m unittest.\n")
    init_repository(path, "initial")
    return path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, object]:
        data = json.loads(self.stdout.strip().splitlines()[-1])
        assert isinstance(data, dict)
        return data

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@pytest.fixture
def qac(capsys: pytest.CaptureFixture[str]):
    """Run the command line in-process, as `qac ARGS`."""

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = invoke(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def run_process(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> Outcome:
    """Run `python -m qwen_agent_cli ARGS` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent_cli", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        input=input,
        timeout=timeout,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def spawn_qac(*args: str, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start `python -m qwen_agent_cli ARGS` as a real process with its output piped, for tests
    that signal or kill it midway."""
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_agent_cli", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def server_args(server: ScriptedServer, provider: str = "vllm") -> list[str]:
    return ["--provider", provider, "--base-url", server.url]
