"""Hooks end to end through `qac run` against the scripted model: context from SessionStart and
UserPromptSubmit, a PreToolUse hook refusing `git push`, a formatter on PostToolUse, Stop sending
the agent on (bounded), a hook killed at its timeout, stream-json, trust, and bad config."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.trust import TrustStore
from tests.conftest import server_args

REFUSE_PUSH = (
    "python3 -c 'import json, sys; "
    'c = json.load(sys.stdin)["tool_input"].get("command", ""); '
    'sys.exit(print("pushing is for people", file=sys.stderr) or 2 if "git push" in c else 0)\''
)


def configure(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def run_json(qac, server: ScriptedServer, repo: Path, *extra: str, fmt: str = "json"):
    return qac(
        "run", "do it", *server_args(server), "-C", str(repo), "--output-format", fmt, *extra
    )


def user_messages(server: ScriptedServer, request: int) -> list[str]:
    return [str(m["content"]) for m in server.requests[request]["messages"] if m["role"] == "user"]


def tool_messages(server: ScriptedServer, request: int) -> list[dict[str, object]]:
    return [m for m in server.requests[request]["messages"] if m["role"] == "tool"]


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_prompt_hooks_add_context_and_get_the_event_on_stdin(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.jsonl"
    configure(
        clean_environ,
        f"""
[[hooks.SessionStart]]
command = "{{ cat; echo; }} >> {log}; echo 'deploys are frozen today'"

[[hooks.UserPromptSubmit]]
command = "{{ cat; echo; }} >> {log}; echo \\"ticket for $QAC_EVENT in $PWD\\""
""",
    )
    model_server.script(turn(text="Noted."), turn(text="Again."))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    session = str(out.json()["session_id"])
    root = str(repo.resolve())
    assert user_messages(model_server, 0) == [
        "do it\n\n[hook SessionStart said]\ndeploys are frozen today\n\n"
        f"[hook UserPromptSubmit said]\nticket for UserPromptSubmit in {root}"
    ]
    assert records(log) == [
        {"event": "SessionStart", "session_id": session, "cwd": root},
        {"event": "UserPromptSubmit", "session_id": session, "cwd": root, "prompt": "do it"},
    ]

    # The next run of the same session: no SessionStart, the prompt hook again.
    again = run_json(qac, model_server, repo, "--resume", session)
    assert again.code == 0, again.stderr
    assert user_messages(model_server, 1)[-1] == (
        f"do it\n\n[hook UserPromptSubmit said]\nticket for UserPromptSubmit in {root}"
    )
    assert [r["event"] for r in records(log)][2:] == ["UserPromptSubmit"]


def test_a_pre_tool_use_hook_refuses_git_push_and_the_reason_reaches_the_model(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(
        clean_environ,
        f"""
[[hooks.PreToolUse]]
matcher = "shell"
command = {json.dumps(REFUSE_PUSH)}
""",
    )
    model_server.script(
        turn(tool_call=("shell", {"command": "git push origin main"})),
        turn(tool_call=("shell", {"command": "echo fine > ran.txt"})),
        turn(text="Pushed nothing."),
    )
    out = run_json(qac, model_server, repo, "--approval", "auto", fmt="stream-json")
    assert out.code == 0, out.stderr
    assert tool_messages(model_server, 1)[-1]["content"] == (
        "refused by hook: pushing is for people"
    )
    assert (repo / "ran.txt").read_text() == "fine\n"  # exit 0 lets the next call run
    hooks = [e for e in out.lines() if e["type"] == "hook"]
    assert [(h["event"], h["exit_code"], h["blocked"]) for h in hooks] == [
        ("PreToolUse", 2, True),
        ("PreToolUse", 0, False),
    ]
    assert hooks[0]["output"] == "pushing is for people"
    assert hooks[0]["command"] == REFUSE_PUSH
    types = [e["type"] for e in out.lines()]
    assert types.index("hook") == types.index("tool_call") + 1
    results = [e for e in out.lines() if e["type"] == "tool_result"]
    assert results[0]["is_error"] is True


def test_a_formatter_hook_rewrites_each_edited_file(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    note = f'echo \\"$QAC_TOOL_NAME $QAC_FILE\\" >> {seen}'
    configure(
        clean_environ,
        f"""
[[hooks.PostToolUse]]
matcher = "edit_file|write_file"
command = "sed -i 's/[[:space:]]*$//' \\"$QAC_FILE\\"; {note}"
timeout = 30

[[hooks.PostToolUse]]
matcher = "edit"
command = "echo never >> {seen}"
""",
    )
    model_server.script(
        turn(tool_call=("write_file", {"path": "notes.py", "content": "x = 1   \ny = 2\t\n"})),
        turn(tool_call=("edit_file", {"path": "notes.py", "old": "y = 2", "new": "y = 3    "})),
        turn(tool_call=("read_file", {"path": "notes.py"})),
        turn(text="Formatted."),
    )
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert (repo / "notes.py").read_text() == "x = 1\ny = 3\n"
    path = repo.resolve() / "notes.py"
    assert seen.read_text().splitlines() == [f"write_file {path}", f"edit_file {path}"]
    assert "y = 3\n" in str(tool_messages(model_server, 3)[-1]["content"])


def test_a_stop_hook_sends_the_agent_on_once(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "asked"
    complain = "echo 'run the tests first' >&2; exit 2"
    configure(
        clean_environ,
        f"""
[[hooks.Stop]]
command = "cat > {tmp_path}/stop.json; [ -e {flag} ] && exit 0; touch {flag}; {complain}"
""",
    )
    model_server.script(turn(text="All done."), turn(text="Tests pass; done."))
    out = run_json(qac, model_server, repo, fmt="stream-json")
    assert out.code == 0, out.stderr
    assert user_messages(model_server, 1)[-1] == "[hook Stop said]\nrun the tests first"
    assert out.json()["result"] == "Tests pass; done."
    assert json.loads((tmp_path / "stop.json").read_text())["last_answer"] == "Tests pass; done."
    hooks = [(e["event"], e["exit_code"], e["blocked"]) for e in out.lines() if e["type"] == "hook"]
    assert hooks == [("Stop", 2, True), ("Stop", 0, False)]


def test_a_stop_hook_that_always_objects_is_bounded(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(clean_environ, "[[hooks.Stop]]\ncommand = \"echo 'not yet' >&2; exit 2\"\n")
    model_server.script(*(turn(text=f"answer {n}") for n in range(4)))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert out.json()["result"] == "answer 3"
    assert out.json()["status"] == "done"
    assert [m for m in user_messages(model_server, 3) if "not yet" in m] == [
        "[hook Stop said]\nnot yet"
    ] * 3
    assert "ignored after 3 continuations" in out.stderr


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_hook_past_its_timeout_is_killed_with_its_children_and_the_run_goes_on(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    configure(
        clean_environ,
        f"""
[[hooks.PreToolUse]]
command = "sleep 300 & echo $! > {pids}; echo $$ >> {pids}; wait"
timeout = 1
""",
    )
    model_server.script(
        turn(tool_call=("shell", {"command": "echo went on > after.txt"})), turn(text="ok")
    )
    out = run_json(qac, model_server, repo, fmt="stream-json")
    assert out.code == 0, out.stderr
    assert (repo / "after.txt").read_text() == "went on\n"
    (hook,) = [e for e in out.lines() if e["type"] == "hook"]
    assert (hook["exit_code"], hook["blocked"]) == (124, False)
    assert "timed out after 1s" in str(hook["output"])
    assert "PreToolUse hook `sleep 300" in out.stderr
    assert "timed out after 1s and was killed (ignored)" in out.stderr
    numbers = [int(n) for n in pids.read_text().split()]
    assert len(numbers) == 2
    deadline = time.monotonic() + 30  # the orphaned sleep is reaped by init, not by qac
    while any(alive(n) for n in numbers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(n) for n in numbers)


def test_a_failing_hook_is_reported_and_ignored(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    configure(
        clean_environ,
        '[[hooks.UserPromptSubmit]]\ncommand = "echo context; echo broken >&2; exit 3"\n',
    )
    model_server.script(turn(text="ok"))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert user_messages(model_server, 0) == ["do it"]
    assert "UserPromptSubmit hook `echo context; echo broken >&2; exit 3` exited 3: broken" in (
        out.stderr
    )


def test_no_hook_events_without_hooks(qac, model_server: ScriptedServer, repo: Path) -> None:
    model_server.script(turn(tool_call=("read_file", {"path": "calc.py"})), turn(text="ok"))
    out = run_json(qac, model_server, repo, fmt="stream-json")
    assert out.code == 0, out.stderr
    assert "hook" not in [e["type"] for e in out.lines()]


PROJECT_HOOK = """
[[hooks.SessionStart]]
command = "echo from the project"
"""


def test_an_untrusted_projects_hooks_are_ignored_and_a_trusted_ones_run(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text(PROJECT_HOOK)
    model_server.script(turn(text="ok"))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert out.stderr.count("ignoring hooks from") == 1
    assert user_messages(model_server, 0) == ["do it"]

    TrustStore(clean_environ).trust(repo)
    second = ScriptedServer([turn(text="ok")]).start()  # a new session: a new prefix
    try:
        trusted = run_json(qac, second, repo)
    finally:
        second.stop()
    assert trusted.code == 0, trusted.stderr
    assert "ignoring" not in trusted.stderr
    assert (second.violations, second.remaining) == ([], 0)
    assert user_messages(second, 0) == ["do it\n\n[hook SessionStart said]\nfrom the project"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '[[hooks.PostTool]]\ncommand = "true"\n',
            "[[hooks.PostTool]] is not a hook event; use one of SessionStart, ",
        ),
        ("[[hooks.Stop]]\ncommand = 3\n", "[[hooks.Stop]] #1: command must be a non-empty string"),
        (
            '[[hooks.Stop]]\ncommand = "true"\n[[hooks.Stop]]\ncommand = "x"\ntimeout = -1\n',
            "[[hooks.Stop]] #2: timeout must be a number of seconds above 0, got -1",
        ),
        (
            '[[hooks.PreToolUse]]\ncommand = "true"\nmatcher = "("\n',
            "[[hooks.PreToolUse]] #1: matcher '(' is not a valid regex",
        ),
        (
            '[[hooks.Stop]]\ncommand = "true"\nmatcher = "shell"\n',
            "[[hooks.Stop]] #1: matcher applies to PreToolUse and PostToolUse only",
        ),
        (
            '[[hooks.Stop]]\ncommand = "true"\ncommnd = "x"\n',
            "[[hooks.Stop]] #1 has unknown keys: commnd",
        ),
        ('[hooks]\nStop = "true"\n', "hooks.Stop must be an array of [[hooks.Stop]] tables"),
        ('hooks = "true"\n', "[hooks] must be a table of [[hooks.EVENT]] arrays"),
    ],
)
def test_bad_hook_config_is_one_line_and_exit_2(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, config: str, message: str
) -> None:
    configure(clean_environ, config)
    out = run_json(qac, model_server, repo)
    assert out.code == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert message in out.stderr
    assert str(clean_environ / "config.toml") in out.stderr
    assert model_server.requests == []


def test_hooks_run_with_the_users_environment(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("HOOK_TARGET", str(tmp_path / "env.txt"))
    configure(
        clean_environ,
        '[[hooks.PostToolUse]]\ncommand = "echo \\"$QAC_SESSION_ID:$QAC_TOOL_NAME:'
        '${QAC_FILE-none}\\" > $HOOK_TARGET"\n',
    )
    model_server.script(turn(tool_call=("shell", {"command": "true"})), turn(text="ok"))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert (tmp_path / "env.txt").read_text() == f"{out.json()['session_id']}:shell:none\n"
    assert os.environ["HOOK_TARGET"]


def readme_hooks() -> str:
    """The README's Hooks example, exactly as printed there."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    return readme.split("## Hooks", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readme_hooks_format_refuse_push_and_notify(
    qac,
    model_server: ScriptedServer,
    repo: Path,
    clean_environ: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    notified = tmp_path / "notified"
    notify = bin_dir / "notify-send"
    notify.write_text(f'#!/bin/sh\nprintf "%s|%s\\n" "$1" "$2" >> {notified}\n')
    notify.chmod(0o755)
    ruff = Path(sys.executable).parent  # ruff, as a user has it on PATH
    monkeypatch.setenv("PATH", f"{bin_dir}:{ruff}:{os.environ['PATH']}")
    configure(clean_environ, readme_hooks())
    model_server.script(
        turn(tool_call=("write_file", {"path": "calc2.py", "content": "x=[1,2 ,3]\n"})),
        turn(tool_call=("shell", {"command": "git push --force origin main"})),
        turn(text="Wrote calc2.py; pushing is yours."),
    )
    out = run_json(qac, model_server, repo, fmt="stream-json")
    assert out.code == 0, out.stderr
    assert (repo / "calc2.py").read_text() == "x = [1, 2, 3]\n"
    assert tool_messages(model_server, 2)[-1]["content"] == (
        "refused by hook: pushing is for people: leave the push to the user"
    )
    assert notified.read_text() == "qac is done|Wrote calc2.py; pushing is yours.\n"
    hooks = [(e["event"], e["exit_code"], e["blocked"]) for e in out.lines() if e["type"] == "hook"]
    assert hooks == [
        ("PostToolUse", 0, False),  # write_file: matched by the formatter only
        ("PreToolUse", 2, True),
        ("Stop", 0, False),
    ]


def test_the_repl_shows_each_hook_run_as_one_dim_line() -> None:
    from rich.console import Console

    from qwen_agent_cli.events import HookEvent
    from qwen_agent_cli.ui.render import Renderer

    console = Console(record=True, width=80, force_terminal=True, color_system="standard")
    renderer = Renderer(console, live=False)
    renderer.write(
        HookEvent(
            event="PreToolUse",
            command="./no-push.sh\nsecond line",
            exit_code=2,
            blocked=True,
            duration_s=0.25,
            output="no\x1b]52;c;aGk=\x07",
        )
    )
    renderer.write(HookEvent(event="Stop", command="x", exit_code=2, blocked=True, duration_s=1))
    assert console.export_text(clear=False) == (
        "hook PreToolUse: ./no-push.sh · exit 2, blocked · 0.2s\n"
        "hook Stop: x · exit 2, goes on · 1.0s\n"
    )
    assert "\x1b[2m" in console.export_text(styles=True)
