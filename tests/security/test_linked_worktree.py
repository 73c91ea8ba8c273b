"""A linked worktree (`git worktree add`) keeps its history in the main repository's .git, outside
the workspace: the sandbox shows it read-only so the model's git works there, and only when the
main repository names the worktree back; a `.git` file alone (repository content) shows nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def shell_output(server: ScriptedServer, request: int) -> str:
    return str(server.requests[request]["messages"][-1]["content"])


def test_the_models_git_works_in_a_linked_worktree_and_cannot_write_its_history(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    linked = tmp_path / "feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    head = git(linked, "rev-parse", "HEAD")
    model_server.script(
        turn(tool_call=("shell", {"command": "git log --format=%H -1 && git status --short"})),
        turn(tool_call=("shell", {"command": f"touch {repo}/.git/planted"})),
        turn(text="Done."),
    )

    out = qac("run", "look", *server_args(model_server), "-C", str(linked))

    assert out.code == 0, out.stderr
    assert head in shell_output(model_server, 1)
    assert "fatal" not in shell_output(model_server, 1)
    assert "Read-only file system" in shell_output(model_server, 2)
    assert not (repo / ".git" / "planted").exists()


def test_a_git_file_naming_another_repository_shows_the_sandbox_nothing(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    """The pointed-at folder has git's worktree files, but they name another checkout."""
    private = repo / ".git" / "worktrees" / "elsewhere"
    private.mkdir(parents=True)
    (private / "gitdir").write_text(str(tmp_path / "elsewhere" / ".git") + "\n")
    (private / "commondir").write_text("../..\n")
    (private / "HEAD").write_text(git(repo, "rev-parse", "HEAD") + "\n")  # git accepts it
    (repo / ".git" / "secret-note").write_text("not for the model\n")
    hostile = tmp_path / "download"
    hostile.mkdir()
    (hostile / ".git").write_text(f"gitdir: {private}\n")
    model_server.script(
        turn(tool_call=("shell", {"command": f"cat {repo}/.git/secret-note; ls {private}"})),
        turn(text="Done."),
    )

    out = qac("run", "look", *server_args(model_server), "-C", str(hostile))

    assert out.code == 0, out.stderr
    seen = shell_output(model_server, 1)
    assert "not for the model" not in seen
    assert "No such file or directory" in seen


def test_worktree_files_planted_inside_the_checkout_show_nothing_above_it(
    qac, model_server: ScriptedServer, tmp_path: Path
):
    """`.git` names `.x` inside the tree, whose back-reference and common dir (an ancestor with
    `objects` and `refs`, say a home folder) git accepts: the ancestor must stay hidden."""
    home = tmp_path / "home"
    for name in ("objects", "refs"):
        (home / name).mkdir(parents=True)
    (home / "secret.txt").write_text("not for the model\n")
    download = home / "download"
    planted = download / ".x"
    planted.mkdir(parents=True)
    (download / ".git").write_text("gitdir: .x\n")
    (planted / "gitdir").write_text("../.git\n")
    (planted / "commondir").write_text("../..\n")
    (planted / "HEAD").write_text("ref: refs/heads/main\n")
    model_server.script(
        turn(tool_call=("shell", {"command": f"cat {home}/secret.txt"})),
        turn(text="Done."),
    )

    out = qac("run", "look", *server_args(model_server), "-C", str(download))

    assert out.code == 0, out.stderr
    seen = shell_output(model_server, 1)
    assert "not for the model" not in seen
    assert "No such file or directory" in seen
