"""MCP tools in a run, end to end: a scripted model calls tools of real MCP servers (the PyPI
reference server `mcp-server-time`, and the test toolbox over stdio) through `qac run`, with
approvals, a failed server, images and a resumed session."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import run_process, server_args

BIN = Path(sys.executable).parent
TOOLBOX = Path(__file__).parent / "mcp_servers" / "toolbox.py"


def configure(home: Path, extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f"""
[mcp.servers.time]
command = {json.dumps(str(BIN / "mcp-server-time"))}
args = ["--local-timezone", "UTC"]

[mcp.servers.box]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(TOOLBOX))}, "stdio"]
timeout = 5
allow = ["echo"]
{extra}
"""
    )


def tool_messages(server: ScriptedServer, request: int) -> list[dict[str, object]]:
    return [m for m in server.requests[request]["messages"] if m["role"] == "tool"]


def test_a_model_calls_mcp_tools_and_a_resumed_session_keeps_them(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(clean_environ)
    model_server.script(
        turn(
            thinking="Ask the time server.",
            tool_call=("mcp__time__get_current_time", {"timezone": "UTC"}),
        ),
        turn(thinking="And echo.", tool_call=("mcp__box__echo", {"text": "hello mcp"})),
        turn(text="It is now."),
    )
    out = qac(
        "run",
        "what time is it?",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    names = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert names[-1].startswith("mcp__time__")
    mcp_names = [n for n in names if n.startswith("mcp__")]
    assert mcp_names == sorted(mcp_names, key=lambda n: (n.split("__")[1], n))
    assert "mcp__time__get_current_time" in names
    assert "mcp__box__echo" in names
    first = tool_messages(model_server, 1)[0]
    assert '"timezone": "UTC"' in str(first["content"])
    assert tool_messages(model_server, 2)[-1]["content"] == "hello mcp"

    model_server.script(
        turn(tool_call=("mcp__box__echo", {"text": "after resume"})), turn(text="Done.")
    )
    again = run_process(
        "run",
        "echo again",
        "--resume",
        str(out.json()["session_id"]),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert again.code == 0, again.stderr
    assert model_server.requests[3]["tools"] == model_server.requests[0]["tools"]
    assert tool_messages(model_server, 4)[-1]["content"] == "after resume"


def test_unapproved_mcp_calls_are_refused_when_nobody_can_approve(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(clean_environ)
    model_server.script(
        turn(tool_call=("mcp__box__fail", {})),
        turn(tool_call=("mcp__box__echo", {"text": "allowed by name"})),
        turn(text="ok"),
    )
    out = qac("run", "try", *server_args(model_server), "--approval", "auto-edit", "-C", str(repo))
    assert out.code == 0, out.stderr
    refused = str(tool_messages(model_server, 1)[-1]["content"])
    assert refused.startswith("refused: mcp__box__fail needs the user's approval")
    assert "[mcp.servers.box] allow" in refused
    assert tool_messages(model_server, 2)[-1]["content"] == "allowed by name"


def test_a_failed_server_is_reported_once_and_the_run_goes_on(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(clean_environ, '[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n')
    model_server.script(turn(tool_call=("mcp__box__crash", {})), turn(text="ok"))
    out = qac("run", "crash it", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    assert out.stderr.count("MCP server broken did not start") == 1
    names = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert not any(n.startswith("mcp__broken__") for n in names)
    crashed = str(tool_messages(model_server, 1)[-1]["content"])
    assert crashed == "MCP server box stopped during the call (it exited)"


def test_an_image_result_reaches_a_model_that_takes_images(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(clean_environ)
    model_server.script(turn(tool_call=("mcp__box__image", {})), turn(text="A pixel."))
    out = qac(
        "run", "draw", *server_args(model_server), "--model", "Qwen/Qwen3.6-27B", "-C", str(repo)
    )
    assert out.code == 0, out.stderr
    content = tool_messages(model_server, 1)[-1]["content"]
    assert isinstance(content, list)
    assert content[0]["type"] == "image_url"
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[-1] == {"type": "text", "text": "a pixel:"}


def test_doctor_checks_each_configured_server(qac, repo: Path, clean_environ: Path) -> None:
    configure(clean_environ, '[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n')
    with ScriptedServer() as server:
        out = qac("doctor", *server_args(server), "-C", str(repo))
    lines = [line for line in out.stdout.splitlines() if " mcp: " in line]
    assert any(line.startswith("ok   mcp: time: 2 tools (user config)") for line in lines), lines
    assert any(line.startswith("ok   mcp: box: ") for line in lines), lines
    assert any(line.startswith("FAIL mcp: broken: ") for line in lines), lines
    assert out.code == 1


def test_the_repl_asks_before_an_mcp_call_and_lists_servers(
    model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    import os

    import pexpect

    configure(clean_environ)
    model_server.script(turn(tool_call=("mcp__box__fail", {})), turn(text="REPL-DONE"))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_agent_cli", *server_args(model_server), "-C", str(repo)],
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )
    child.expect_exact("›")  # noqa: RUF001
    child.send("/mcp")
    child.expect_exact("/mcp")
    child.send("\r")
    child.expect("box  ready, \\d+ tools  \\(user config\\)")
    child.expect_exact("echo  (allowed without asking)")
    child.expect_exact("›")  # noqa: RUF001
    child.send("try the failing tool")
    child.expect_exact("failing tool")
    child.send("\r")
    child.expect_exact("mcp__box__fail wants to call it with {}")
    child.expect("allow\\?")
    child.sendline("y")
    child.expect_exact("REPL-DONE")
    child.expect_exact("›")  # noqa: RUF001
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert tool_messages(model_server, 1)[-1]["content"] == "it went wrong"
