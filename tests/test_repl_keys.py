"""The REPL's keys in a real pseudo-terminal against the scripted server: approvals answered
with one key, an edit's diff shown once, arguments shown readably, /last and Ctrl-O, the note
for an interrupted turn (across a resume too), and resumed turns rendered like live output."""

from __future__ import annotations

from pathlib import Path

import pexpect

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.ui.history import INTERRUPTED
from qwen_agent_cli.ui.terminal import STOPPED
from tests.test_repl_pty import PROMPT, spawn, submit

QUESTION = "allow\\?"


def tool_contents(server: ScriptedServer) -> list[str]:
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


def leave(child: pexpect.spawn) -> None:
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_approvals_take_one_key_and_show_each_call_once_and_readably(
    model_server: ScriptedServer, repo: Path
):
    edit = {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"}
    filler = "".join(f"filler {n}\n" for n in range(23))
    missing = {
        "path": "calc.py",
        "old": "not in the file",
        "new": f"first line\nsecond line\n{filler}",
    }
    model_server.script(
        turn(tool_call=("edit_file", edit)),
        turn(tool_call=("shell", {"command": "echo one\necho two"})),
        turn(tool_call=("shell", {"command": "echo three"})),
        turn(tool_call=("shell", {"command": "echo four"})),
        turn(tool_call=("shell", {"command": "echo four"})),
        turn(tool_call=("edit_file", missing)),
        turn(tool_call=("shell", {"command": "echo five"})),
        turn(text="DONE-KEYS"),
    )
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    submit(child, "go")

    child.expect_exact("edit_file wants to edit calc.py")
    child.expect_exact("+    return sum(values) / len(values)")
    child.expect(QUESTION)
    child.send("q")  # not an answer: a hint, and the question stays
    child.expect_exact("press y, n, a, t, or Esc for no")
    child.send("y")  # no Enter
    child.expect_exact("edited calc.py at line 2")
    child.expect_exact("shell wants to run:")
    assert "sum(values) / len(values)" not in child.before  # the diff is not shown again
    child.expect_exact("    echo one")
    child.expect_exact("    echo two")
    child.expect(QUESTION)
    child.send("\x1b")  # Esc: no
    child.expect_exact("shell wants to run: echo three")
    child.expect(QUESTION)
    child.send("n")
    child.expect_exact("shell wants to run: echo four")
    child.expect(QUESTION)
    child.send("a")  # always, for this command: the next one is not asked
    child.expect_exact("edit_file wants to edit calc.py with:")
    assert "wants to run: echo four" not in child.before
    child.expect_exact("old: not in the file")
    child.expect_exact("new:")
    child.expect_exact("    first line")
    child.expect_exact("    second line")
    child.expect_exact("    filler 17")
    child.expect_exact("    [… 5 more lines not shown]")  # 25 lines: the first 20 are shown
    child.expect(QUESTION)
    child.send("t")
    child.expect_exact("reason for the model")
    child.sendline("wrong file")
    child.expect_exact("shell wants to run: echo five")
    child.expect(QUESTION)
    child.send("e")
    child.expect_exact("command:")
    child.send("\x15echo edited\r")  # Ctrl-U clears the line the command was put in
    child.expect_exact("DONE-KEYS")
    child.expect_exact(PROMPT)
    leave(child)

    assert tool_contents(model_server) == [
        "edited calc.py at line 2",
        "refused: the user declined",
        "refused: the user declined",
        "exit code 0\nfour\n",
        "exit code 0\nfour\n",
        "refused: the user declined: wrong file",
        "[the user edited the command before running it: echo edited]\nexit code 0\nedited\n",
    ]


def test_ctrl_c_at_the_question_refuses_stops_the_turn_and_tells_the_model(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(tool_calls=[("shell", {"command": "echo never"}), ("shell", {"command": "echo no"})]),
        turn(text="AFTER-STOP"),
        turn(text="NO-NOTE-NOW"),
    )
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    submit(child, "run it")
    child.expect_exact("shell wants to run: echo never")
    child.expect(QUESTION)
    child.sendintr()
    child.expect_exact("interrupted")
    child.expect_exact(PROMPT)
    assert "echo no" not in child.before  # the turn stopped: the second call was not asked
    submit(child, "go on")
    child.expect_exact(f"for the model: {INTERRUPTED}")
    child.expect_exact("AFTER-STOP")
    child.expect_exact(PROMPT)
    submit(child, "and now")
    child.expect_exact("NO-NOTE-NOW")
    child.expect_exact(PROMPT)
    leave(child)

    messages = model_server.requests[1]["messages"]
    assert [m["content"] for m in messages if m["role"] == "tool"] == [
        f"refused: {STOPPED}",
        "no result: the previous run ended before this call finished (it may not have run)",
    ]
    assert messages[-1] == {"role": "user", "content": f"{INTERRUPTED}\n\ngo on"}
    assert model_server.requests[2]["messages"][-1] == {"role": "user", "content": "and now"}


def test_an_interrupted_turn_is_marked_for_the_model_after_a_resume(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(thinking="SLOW " * 80, text="never", pieces=80, chunk_delay=0.1),
        turn(text="RESUMED-ANSWER"),
    )
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    submit(child, "think slowly")
    child.expect_exact("SLOW")
    child.send("\x1b")
    child.expect_exact("interrupted")
    child.expect_exact(PROMPT)
    leave(child)

    child = spawn(model_server, repo, "--continue")
    child.expect_exact("resumed session")
    child.expect_exact("1 earlier turn")
    child.expect_exact("(interrupted)")
    child.expect_exact(PROMPT)
    submit(child, "carry on")
    child.expect_exact(f"for the model: {INTERRUPTED}")
    child.expect_exact("RESUMED-ANSWER")
    child.expect_exact(PROMPT)
    leave(child)
    last = model_server.requests[1]["messages"][-1]
    assert last == {"role": "user", "content": f"{INTERRUPTED}\n\ncarry on"}


ANSWER = "# Result heading\n\nThe bug was **floor division**.\n\n- first point\n- second point\n"


def test_resumed_turns_render_like_live_output_and_last_output_expands(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(thinking="look first", tool_call=("read_file", {"path": "calc.py"})),
        turn(text=ANSWER),
    )
    child = spawn(model_server, repo, "--approval", "auto")
    child.expect_exact(PROMPT)
    submit(child, "what is wrong\x1b\rwith calc")  # Esc Enter: a newline
    child.expect_exact("second point")
    child.expect_exact(PROMPT)
    leave(child)

    child = spawn(model_server, repo, "--continue")
    child.expect_exact("1 earlier turn")
    child.expect_exact(f"{PROMPT} what is wrong (+1 line)")
    child.expect_exact("▸ thought (1 line)")
    child.expect_exact("read_file(path='calc.py')")
    child.expect_exact("⎿ 2 lines")
    child.expect_exact("Result heading")
    child.expect_exact("first point")
    child.expect_exact(PROMPT)
    assert "**" not in child.before  # rendered, not the Markdown source
    assert "# Result" not in child.before

    submit(child, "/last")
    child.expect_exact("read_file(path='calc.py')")
    child.expect_exact("return sum(values) // len(values)")
    child.expect_exact(PROMPT)
    child.send("\x0f")  # Ctrl-O at the empty prompt
    child.expect_exact("return sum(values) // len(values)")
    submit(child, "/help")
    child.expect_exact("/last")
    child.expect_exact("Ctrl-O shows the last tool output")
    child.expect_exact(PROMPT)
    leave(child)


def test_nothing_to_expand_says_so(repo: Path, model_server: ScriptedServer) -> None:
    child = spawn(model_server, repo)
    child.expect_exact(PROMPT)
    submit(child, "/last")
    child.expect_exact("no tool output yet in this session")
    child.expect_exact(PROMPT)
    leave(child)
