"""Output to a pipe or a file is not wrapped: each line arrives whole, as written, however
wide, and nothing is padded to a width (Rich's default for a non-terminal is 80 columns)."""

from __future__ import annotations

import os
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import run_process, server_args

LONG = " ".join(f"word{n}" for n in range(60)) + " END"


def piped_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    return env


def test_run_text_output_through_a_pipe_keeps_a_long_line_whole(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text=LONG))
    out = run_process("run", "x", *server_args(model_server), "-C", str(repo), env=piped_env())
    assert (out.code, out.stdout) == (0, LONG + "\n"), out.stderr


def test_the_demo_through_a_pipe_is_not_wrapped_or_padded():
    out = run_process("demo", env=piped_env(), timeout=120)
    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(
        line.startswith("scripted model") and line.endswith("; no network, no key")
        for line in lines
    ), lines
    answer = next(line for line in lines if line.startswith("Fixed `average` in `calc.py`"))
    assert answer.endswith("The full suite passes (3 tests).")
    assert any(
        line.startswith("qwen3.6-demo · done · 5 turns") and "session" in line for line in lines
    )
    assert [line for line in lines if line != line.rstrip() and line.strip()] == []
