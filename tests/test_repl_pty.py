"""The REPL end to end in a real pseudo-terminal (pexpect) against the scripted server."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pexpect

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.security.test_attacks import sleepers

PROMPT = "›"  # noqa: RUF001


def spawn(server: ScriptedServer, repo: Path, *extra: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    return pexpect.spawn(
        sys.executable,
        [
            "-m",
            "qwen_agent_cli",
            "--provider",
            "vllm",
            "--base-url",
            server.url,
            "-C",
            str(repo),
            *extra,
        ],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=20,
    )


def submit(child: pexpect.spawn, text: str) -> None:
    child.send(text)
    time.sleep(0.2)
    child.send("\r")


def test_a_whole_interactive_session(model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(
            thinking="THINK-ONE: floor division is the bug.",
            tool_call=(
                "edit_file",
                {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
            ),
        ),
        turn(thinking="Now run the tests.", tool_call=("shell", {"command": "echo run-tests"})),
        turn(thinking="The user declined.", text="ANSWER-ONE: fixed average."),
        turn(thinking="SLOWTHOUGHT " * 60, text="never", pieces=60, chunk_delay=0.1),
        turn(thinking="Continuing.", text="ANSWER-THREE: still here."),
    )
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)

    submit(child, "fix calc")
    child.expect_exact("thinking")
    child.expect("allow\\?")
    child.sendline("y")
    child.expect("shell wants to run: echo run-tests")
    child.expect("allow\\?")
    child.send("t")
    child.expect("reason for the model")
    child.sendline("skip tests")
    child.expect_exact("ANSWER-ONE")
    child.expect_exact(PROMPT)
    refused = model_server.requests[2]["messages"][-1]
    assert refused["role"] == "tool"
    assert refused["content"] == "refused: the user declined: skip tests"

    submit(child, "/cost")
    child.expect("tokens in .* out")
    child.expect_exact(PROMPT)
    submit(child, "/diff")
    child.expect_exact("-    return sum(values) // len(values)")
    child.expect_exact(PROMPT)

    submit(child, "explain slowly")
    child.expect_exact("SLOWTHOUGHT")
    child.sendintr()
    child.expect_exact("interrupted")
    child.expect_exact(PROMPT)
    submit(child, "continue")
    child.expect_exact("ANSWER-THREE")
    child.expect_exact(PROMPT)
    interrupted = model_server.requests[4]["messages"][-2]
    assert interrupted["role"] == "assistant"
    assert interrupted["reasoning"].startswith("SLOWTHOUGHT")
    assert len(interrupted["reasoning"]) < len("SLOWTHOUGHT " * 60)

    submit(child, "/undo")
    child.expect_exact("restored calc.py")
    child.expect_exact(PROMPT)
    assert "sum(values) // len(values)" in (repo / "calc.py").read_text()
    submit(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    (info,) = store.list()
    roles = [(m.role, m.interrupted) for m in store.messages(info.id)]
    store.close()
    assert roles == [
        ("user", False),
        ("assistant", False),
        ("tool", False),
        ("assistant", False),
        ("tool", False),
        ("assistant", False),
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", False),
    ]


def test_first_prompt_argument_resume_and_ctrl_d(model_server: ScriptedServer, repo: Path):
    model_server.script(turn(text="FIRST-ANSWER"), turn(text="SECOND-ANSWER"))
    env_args = ("--approval", "auto")
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "qwen_agent_cli",
            "hello there",
            "--provider",
            "vllm",
            "--base-url",
            model_server.url,
            "-C",
            str(repo),
            *env_args,
        ],
        env={**os.environ, "TERM": "xterm"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=20,
    )
    child.expect_exact("FIRST-ANSWER")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn(model_server, repo, "--continue")
    child.expect_exact("resumed session")
    child.expect_exact("FIRST-ANSWER")
    child.expect_exact(PROMPT)
    submit(child, "again")
    child.expect_exact("SECOND-ANSWER")
    child.expect_exact(PROMPT)
    child.sendintr()
    child.expect_exact("press Ctrl-C again to exit")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    messages = model_server.requests[1]["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["hello there", "again"]


def test_escape_interrupts_and_slash_commands_change_settings(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(thinking="ESCTHOUGHT " * 80, text="never", pieces=80, chunk_delay=0.1),
        turn(thinking="visible reasoning here", text="after the change", pieces=1),
    )
    child = spawn(model_server, repo, "--approval", "auto")
    child.expect_exact(PROMPT)
    submit(child, "/help")
    child.expect_exact("/undo")
    child.expect_exact(PROMPT)
    submit(child, "think slowly")
    child.expect_exact("ESCTHOUGHT")
    child.send("\x1b")
    child.expect_exact("interrupted")
    child.expect_exact(PROMPT)
    submit(child, "/thinking full")
    child.expect_exact("thinking: full")
    child.expect_exact(PROMPT)
    submit(child, "/model qwen3.6-other")
    child.expect_exact("model set to qwen3.6-other")
    child.expect_exact(PROMPT)
    submit(child, "again")
    child.expect_exact("visible reasoning here")
    child.expect_exact("after the change")
    child.expect_exact(PROMPT)
    submit(child, "!echo bang-$((6*7))")
    child.expect_exact("bang-42")
    child.expect_exact(PROMPT)
    submit(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert model_server.requests[1]["model"] == "qwen3.6-other"
    assert model_server.requests[0]["messages"][-1]["content"] == "think slowly"


def test_problems_keep_the_repl_and_bang_commands_can_be_undone(repo: Path):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_agent_cli", "--provider", "dashscope", "-C", str(repo)],
        env={**os.environ, "TERM": "xterm"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=20,
    )
    child.expect_exact(PROMPT)
    submit(child, "hello")
    child.expect_exact("DASHSCOPE_API_KEY is not set")
    child.expect_exact(PROMPT)
    submit(child, "!echo hi > bang.txt")
    child.expect_exact("exit code 0")
    child.expect_exact(PROMPT)
    assert (repo / "bang.txt").exists()
    submit(child, "/undo")
    child.expect_exact("restored bang.txt")
    child.expect_exact(PROMPT)
    assert not (repo / "bang.txt").exists()
    submit(child, "!sleep 1020")
    deadline = time.monotonic() + 10
    while not sleepers("1020") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    child.sendintr()
    child.expect_exact("interrupted")
    child.expect_exact(PROMPT)
    submit(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert sleepers("1020") == []


def test_compact_on_demand_keeps_the_last_turn(model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(thinking="r1", text="ONE"),
        turn(thinking="r2", text="TWO"),
        turn(text="SUMMARY-X: asked twice"),
        turn(text="AFTER", reset_prefix=True),
    )
    child = spawn(model_server, repo, "--approval", "auto")
    child.expect_exact(PROMPT)
    for prompt, answer in (("first", "ONE"), ("second", "TWO")):
        submit(child, prompt)
        child.expect_exact(answer)
        child.expect_exact(PROMPT)
    submit(child, "/compact")
    child.expect_exact("context compacted")
    child.expect_exact(PROMPT)
    submit(child, "third")
    child.expect_exact("AFTER")
    child.expect_exact(PROMPT)
    submit(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    messages = model_server.requests[3]["messages"]
    assert "Original task:\nfirst" in messages[1]["content"]
    assert "SUMMARY-X" in messages[1]["content"]
    assert [m["content"] for m in messages[2:]] == ["second", "TWO", "third"]
    assert messages[3]["reasoning"] == "r2"


def test_the_repl_asks_once_before_an_untrusted_config_may_loosen_anything(
    model_server: ScriptedServer, repo: Path, clean_environ: Path
):
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text('[approval]\nallow = ["echo *"]\n')
    child = spawn(model_server, repo)
    child.expect("sets allow")
    child.expect("Trust this project's config\\? \\[y/N\\]")
    child.sendline("n")
    child.expect("ignoring allow")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert not (clean_environ / "trusted-projects.json").exists()

    child = spawn(model_server, repo)
    child.expect("Trust this project's config\\? \\[y/N\\]")
    child.sendline("y")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert str(repo) in (clean_environ / "trusted-projects.json").read_text()

    child = spawn(model_server, repo)  # trusted now: no question
    index = child.expect_exact([PROMPT, "Trust this project"])
    assert index == 0
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_sigterm_and_sighup_end_the_repl_unlike_ctrl_c(model_server: ScriptedServer, repo: Path):
    """Ctrl-C at the prompt only arms the exit; SIGTERM (a supervisor) and SIGHUP (the terminal
    went away) end the REPL with 143 and 129, during a command too."""
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    child.sendintr()
    child.expect_exact("press Ctrl-C again to exit")
    child.kill(signal.SIGTERM)
    child.expect_exact("terminated (SIGTERM)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 143

    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    submit(child, "!sleep 1021")
    deadline = time.monotonic() + 30
    while not sleepers("1021") and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill(signal.SIGHUP)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 129
    assert sleepers("1021") == []
