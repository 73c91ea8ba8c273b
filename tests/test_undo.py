"""`qac run` checkpoints and `qac undo`, through the real CLI against real git repositories and
the scripted model; and `qac demo`, which keeps its session out of the user's store."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import run_process, server_args, spawn_qac


def files_of(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry under root but .git: its kind, content (a link's target) and mode."""
    found: dict[str, tuple[str, bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if name == ".git" or name.startswith(".git/"):
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", str(path.readlink()), 0)
        elif path.is_dir():
            found[name] = ("dir", b"", 0)
        else:
            found[name] = ("file", path.read_bytes(), stat.S_IMODE(info.st_mode))
    return found


def refs(repo: Path) -> list[str]:
    listing = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/qac"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def session_of(out) -> str:
    return str(out.json()["session_id"])


def test_undo_restores_exactly_what_the_run_changed(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "notes.txt").write_text("mine, never committed\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the repository's\n")
    before = files_of(repo)
    model_server.script(
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(tool_call=("write_file", {"path": "AGENTS.md", "content": "changed\n"})),
        turn(tool_call=("write_file", {"path": "pkg/new.py", "content": "x = 1\n"})),
        turn(
            tool_call=(
                "shell",
                {"command": f"rm run.sh && chmod +x notes.txt && ln -s {outside} out"},
            )
        ),
        turn(text="Done."),
    )
    out = qac("run", "fix", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    assert out.code == 0, out.stderr
    session = session_of(out)
    assert files_of(repo) != before
    assert refs(repo) == [f"refs/qac/runs/{session}/1"]

    undone = qac("undo", "-C", str(repo))

    assert (undone.code, undone.stderr) == (0, "")
    assert files_of(repo) == before
    assert (outside / "keep.txt").read_text() == "not the repository's\n"
    assert undone.stdout == (
        f"restored 6 files to before run 1 of session {session} (AGENTS.md, calc.py, "
        f"notes.txt, out, pkg/new.py and 1 more); what was replaced is kept at "
        f"refs/qac/undone/{session}/1\n"
    )
    assert refs(repo) == [f"refs/qac/undone/{session}/1"]


def test_undo_refuses_when_the_tree_changed_since_the_run(
    qac, model_server: ScriptedServer, repo: Path
):
    original = (repo / "calc.py").read_text()
    model_server.script(
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(text="Done."),
    )
    assert qac("run", "fix", *server_args(model_server), "-C", str(repo)).code == 0
    (repo / "test_calc.py").write_text("# my own edit\n")

    refused = qac("undo", "-C", str(repo))

    assert refused.code == 1
    assert "the working tree changed since run 1 of session" in refused.stderr
    assert "(test_calc.py)" in refused.stderr
    assert "qac undo --force" in refused.stderr
    assert (repo / "test_calc.py").read_text() == "# my own edit\n"
    assert (repo / "calc.py").read_text() != original

    forced = qac("undo", "-C", str(repo), "--force")

    assert forced.code == 0, forced.stderr
    assert (repo / "calc.py").read_text() == original
    assert "test_calc.py" in forced.stdout  # forced: back to before the run, edit included
    kept = subprocess.run(
        ["git", "show", f"{refs(repo)[0]}:test_calc.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert kept.stdout == "# my own edit\n"  # what --force replaced is still there


def test_a_killed_run_is_undone_only_when_forced(model_server: ScriptedServer, repo: Path):
    before = files_of(repo)
    slow = "thinking slowly " * 40
    model_server.script(
        turn(tool_call=("write_file", {"path": "a.txt", "content": "a\n"})),
        turn(thinking=slow, text="never finished", pieces=40, chunk_delay=0.25),
    )
    proc = spawn_qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    for line in proc.stdout:
        if json.loads(line)["type"] == "thinking":  # the file is written: the next reply streams
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    assert (repo / "a.txt").exists()

    refused = run_process("undo", "-C", str(repo))
    assert refused.code == 1
    assert "never recorded its end (was it killed?)" in refused.stderr

    forced = run_process("undo", "-C", str(repo), "--force")
    assert forced.code == 0, forced.stderr
    assert files_of(repo) == before


def test_undo_in_a_directory_without_git(qac, model_server: ScriptedServer, tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    model_server.script(
        turn(tool_call=("write_file", {"path": "a.txt", "content": "a\n"})),
        turn(text="Done."),
    )
    assert qac("run", "write", *server_args(model_server), "-C", str(plain)).code == 0
    assert (plain / "a.txt").read_text() == "a\n"

    out = qac("undo", "-C", str(plain))

    assert (out.code, out.stdout) == (1, "")
    assert out.stderr == (
        f"qac: cannot undo in {plain}: it is not in a git repository, and `qac run` keeps its "
        "checkpoints only in one\n"
    )
    assert (plain / "a.txt").exists()


def test_undo_goes_back_one_run_at_a_time_across_resumes(
    qac, model_server: ScriptedServer, repo: Path
):
    first_state = files_of(repo)
    model_server.script(
        turn(tool_call=("write_file", {"path": "a.txt", "content": "a\n"})),
        turn(text="Wrote a."),
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(text="Fixed."),
        turn(tool_call=("read_file", {"path": "calc.py"})),
        turn(text="Nothing to change."),
    )
    args = (*server_args(model_server), "-C", str(repo), "--output-format", "json")
    session = session_of(qac("run", "write a", *args))
    second_state = files_of(repo)
    assert qac("run", "--resume", session, "fix", *args).code == 0
    assert qac("run", "--continue", "look", *args).code == 0  # changed nothing: no checkpoint
    assert refs(repo) == [f"refs/qac/runs/{session}/1", f"refs/qac/runs/{session}/2"]

    one = qac("undo", "-C", str(repo))
    assert one.code == 0, one.stderr
    assert f"to before run 2 of session {session} (calc.py)" in one.stdout
    assert files_of(repo) == second_state

    two = qac("undo", session[:12], "-C", str(repo))
    assert two.code == 0, two.stderr
    assert f"to before run 1 of session {session} (a.txt)" in two.stdout
    assert files_of(repo) == first_state

    three = qac("undo", "-C", str(repo))
    assert three.code == 1
    assert f"nothing to undo: no `qac run` of session {session} left changes" in three.stderr


def test_the_next_request_is_told_of_the_undo(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(tool_call=("write_file", {"path": "a.txt", "content": "a\n"})),
        turn(text="Wrote a."),
        turn(text="Understood."),
    )
    args = (*server_args(model_server), "-C", str(repo))
    assert qac("run", "write a", *args).code == 0
    assert qac("undo", "-C", str(repo)).code == 0

    assert qac("run", "--continue", "what happened?", *args).code == 0

    users = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "user"]
    assert users[-2:] == [
        "[The user ran qac undo: the file changes of the last run were reverted (a.txt). "
        "Those files are back as they were before it.]",
        "what happened?",
    ]


def test_undo_touches_nothing_outside_the_sessions_directory(
    qac, model_server: ScriptedServer, repo: Path
):
    sub = repo / "sub"
    sub.mkdir()
    (sub / "mine.txt").write_text("before\n")
    model_server.script(
        turn(tool_call=("write_file", {"path": "mine.txt", "content": "by the run\n"})),
        turn(text="Done."),
    )
    assert qac("run", "edit", *server_args(model_server), "-C", str(sub)).code == 0
    (repo / "calc.py").write_text("# edited outside the session's directory\n")

    out = qac("undo", "-C", str(sub))

    assert out.code == 0, out.stderr
    assert (sub / "mine.txt").read_text() == "before\n"
    assert (repo / "calc.py").read_text() == "# edited outside the session's directory\n"


def test_undo_uses_the_named_store(qac, model_server: ScriptedServer, repo: Path, tmp_path: Path):
    store = str(tmp_path / "elsewhere" / "sessions.db")
    model_server.script(
        turn(tool_call=("write_file", {"path": "a.txt", "content": "a\n"})),
        turn(text="Done."),
    )
    assert qac("run", "x", *server_args(model_server), "-C", str(repo), "--store", store).code == 0

    missing = qac("undo", "-C", str(repo))
    assert missing.code == 2
    assert f"no session for {repo} to undo" in missing.stderr

    out = qac("undo", "-C", str(repo), "--store", store, "--output-format", "json")
    assert out.code == 0, out.stderr
    assert out.json()["files_restored"] == ["a.txt"]
    assert not (repo / "a.txt").exists()


def test_demo_keeps_its_session_out_of_the_users_store(clean_environ: Path, tmp_path: Path):
    clean_environ.mkdir()
    (clean_environ / "config.toml").write_text("# mine\n")
    before = files_of(clean_environ)

    out = run_process("demo", timeout=120)

    assert out.code == 0, out.stderr
    assert "temporary store, now removed" in out.stdout
    assert files_of(clean_environ) == before

    kept = tmp_path / "demo.db"
    assert run_process("demo", "--store", str(kept), timeout=120).code == 0
    listed = run_process("sessions", "list", "--store", str(kept))
    assert (listed.code, len(listed.stdout.splitlines())) == (0, 1)
    assert files_of(clean_environ) == before


def test_removing_a_session_removes_its_checkpoints_and_no_others(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(text="Done."),
        turn(tool_call=("write_file", {"path": "other.txt", "content": "x\n"}), reset_prefix=True),
        turn(text="Done too."),
    )
    first = qac(
        "run", "fix", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    second = qac(
        "run", "more", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    kept, gone = session_of(second), session_of(first)
    assert qac("undo", gone, "--force", "-C", str(repo)).code == 0
    assert sorted(refs(repo)) == [f"refs/qac/runs/{kept}/1", f"refs/qac/undone/{gone}/1"]

    removed = qac("sessions", "rm", gone)

    assert removed.code == 0, removed.stderr
    assert removed.stdout == f"removed {gone} and its 1 checkpoint\n"
    assert refs(repo) == [f"refs/qac/runs/{kept}/1"]
