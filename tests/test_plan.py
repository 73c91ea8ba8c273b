"""The visible plan and plan mode, end to end: update_plan's events and their persistence across
resume and compaction, and plan mode refusing changes until the plan is approved."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect

from qwen_agent_cli.compaction import segment
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.tools.plan import current_plan, plan_text
from tests.conftest import TEST_CMD, run_process, server_args

STEPS = [
    {"step": "Read calc.py", "status": "done"},
    {"step": "Fix the floor division", "status": "in_progress"},
    {"step": "Run the tests", "status": "pending"},
]
FIX = ("edit_file", {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"})


def tool_contents(server: ScriptedServer, request: int) -> list[str]:
    return [str(m["content"]) for m in server.requests[request]["messages"] if m["role"] == "tool"]


def test_update_plan_emits_plan_events_and_the_plan_survives_resume(
    qac, model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(
        turn(thinking="Plan first.", tool_call=("update_plan", {"steps": STEPS})),
        turn(text="Planned."),
    )
    out = qac(
        "run",
        "fix it",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )
    assert out.code == 0, out.stderr
    plans = [
        {k: v for k, v in e.items() if k != "timestamp"} for e in out.lines() if e["type"] == "plan"
    ]
    assert plans == [{"type": "plan", "steps": STEPS}]
    assert tool_contents(model_server, 1)[-1].startswith("Plan updated: 1 of 3 steps done.")
    session = str(out.lines()[-1]["session_id"])

    model_server.script(turn(text="Still the same plan."))
    again = run_process("run", "where are we?", "--resume", session, "-C", str(repo))
    assert again.code == 0, again.stderr
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    try:
        assert current_plan(store.messages(session)) == STEPS
    finally:
        store.close()


def test_a_bad_plan_is_a_tool_error_and_emits_no_event(
    qac, model_server: ScriptedServer, repo: Path
) -> None:
    two = [{"step": "a", "status": "in_progress"}, {"step": "b", "status": "in_progress"}]
    model_server.script(turn(tool_call=("update_plan", {"steps": two})), turn(text="ok"))
    out = qac(
        "run", "plan", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    assert not [e for e in out.lines() if e["type"] == "plan"]
    assert tool_contents(model_server, 1)[-1] == "only one step can be in_progress at a time"


def test_compaction_carries_the_plan_into_the_summary() -> None:
    opened = segment("summary text", "the task", [], 1, plan=plan_text(STEPS))
    assert "Your plan so far (update_plan):\n[x] Read calc.py\n[>] Fix the floor division" in (
        opened[1].content or ""
    )


def test_plan_mode_refuses_changes_and_resume_without_it_carries_the_plan_out(
    qac, model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(
        turn(tool_call=FIX),
        turn(tool_call=("shell", {"command": "echo changed > calc.py"})),
        turn(tool_call=("update_plan", {"steps": STEPS}), text="My plan."),
        turn(text="Plan: fix the division, then run the tests."),
    )
    out = qac(
        "run",
        "fix the bug",
        *server_args(model_server),
        "--plan",
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    first_user = model_server.requests[0]["messages"][1]["content"]
    assert str(first_user).startswith("[Plan mode:")
    refused_edit, refused_shell = tool_contents(model_server, 2)[:2]
    assert "read-only" in refused_edit
    assert "Read-only file system" in refused_shell or "read-only" in refused_shell.lower()
    assert "//" in (repo / "calc.py").read_text()

    model_server.script(turn(tool_call=FIX), turn(text="Done."))
    approved = qac(
        "run",
        "approved: carry it out",
        "--resume",
        str(out.json()["session_id"]),
        *server_args(model_server),
        "-C",
        str(repo),
    )
    assert approved.code == 0, approved.stderr
    assert "/ len(values)" in (repo / "calc.py").read_text()
    assert not str(model_server.requests[4]["messages"][-1]["content"]).startswith("[Plan mode")


def test_the_repl_plans_then_carries_out_the_approved_plan(
    model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(
        turn(tool_call=("update_plan", {"steps": STEPS})),
        turn(text="PLAN-READY: fix the division."),
        turn(tool_call=FIX),
        turn(text="CARRIED-OUT"),
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_agent_cli", *server_args(model_server), "--approval", "auto", "-C", str(repo)],
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )
    child.expect_exact("›")  # noqa: RUF001
    child.send("/plan")
    child.expect_exact("/plan")
    child.send("\r")
    child.expect_exact("plan mode on")
    child.expect_exact("›")  # noqa: RUF001
    child.send("fix the bug")
    child.expect_exact("fix the bug")
    child.send("\r")
    child.expect_exact("Fix the floor division")
    child.expect_exact("PLAN-READY")
    child.expect_exact("approve this plan and carry it out?")
    child.sendline("y")
    child.expect_exact("CARRIED-OUT")
    child.expect_exact("›")  # noqa: RUF001
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert "/ len(values)" in (repo / "calc.py").read_text()
    carried = model_server.requests[2]["messages"]
    assert json.dumps(carried).count("[Plan mode:") == 1
    assert carried[-1]["content"].startswith("The user approved the plan.")
