"""Colour codes are not the model's business (issue 13): commands in the sandbox are asked for
plain output, and whatever escape sequences a tool still produces never reach the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args

COLOURED = r"printf '\033[1;31mFAILED\033[0m test_x \033]0;title\007\033[2K done\n'"
SHOW_ENV = 'echo "NO_COLOR=$NO_COLOR CLICOLOR=$CLICOLOR TERM=$TERM"'


def tool_messages(server: ScriptedServer) -> list[str]:
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


@pytest.mark.parametrize("sandbox", ["workspace-write", "off"])
def test_escape_sequences_never_reach_the_model_and_commands_are_asked_for_plain_output(
    qac: Any, model_server: ScriptedServer, repo: Path, sandbox: str
):
    (repo / "colour.txt").write_text("\x1b[32mgreen\x1b[0m text\n")
    model_server.script(
        turn(tool_call=("shell", {"command": COLOURED})),
        turn(tool_call=("read_file", {"path": "colour.txt"})),
        turn(tool_call=("shell", {"command": SHOW_ENV})),
        turn(text="done"),
    )
    args = ["run", "x", *server_args(model_server), "-C", str(repo), "--sandbox", sandbox]
    out = qac(*args, "--output-format", "stream-json")
    assert out.code == 0, out.stderr
    coloured, read, env = tool_messages(model_server)
    assert "FAILED test_x  done" in coloured
    assert "green text" in read
    for content in (coloured, read):
        assert "\x1b" not in content
        assert "[0m" not in content
    assert "NO_COLOR=1 CLICOLOR=0 TERM=dumb" in env


def test_a_variable_the_user_passes_in_keeps_the_users_value(
    qac: Any, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("CLICOLOR", "1")
    monkeypatch.setenv("QAC_SANDBOX_ENV", "TERM")
    model_server.script(turn(tool_call=("shell", {"command": SHOW_ENV})), turn(text="done"))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    (env,) = tool_messages(model_server)
    assert "NO_COLOR=1 CLICOLOR=0 TERM=xterm-256color" in env
