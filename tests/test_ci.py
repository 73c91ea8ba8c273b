"""`qac ci` end to end: real git repositories, the scripted model, the real sandbox."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import git

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, server_args
from tests.security.test_attacks import sleepers

FIX = turn(
    thinking="average floors the result; use true division.",
    tool_call=(
        "edit_file",
        {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
    ),
)
VERIFY = turn(thinking="Verify with the suite.", tool_call=("run_tests", {}))
DONE = turn(thinking="Green.", text="Fixed average (floor division).")


def report(repo: Path) -> dict[str, Any]:
    data = json.loads((repo / ".qac-out" / "report.json").read_text())
    assert isinstance(data, dict)
    return data


def git_status(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def test_a_verified_fix_leaves_a_patch_that_applies_to_a_fresh_clone(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(FIX, VERIFY, DONE)
    out = qac("ci", "--test-cmd", TEST_CMD, *server_args(model_server), "-C", str(repo))

    assert out.code == 0, out.stderr
    assert out.stdout.startswith("fixed: the test command passes after the run (status fixed)\n")
    data = report(repo)
    assert data["status"] == "fixed"
    assert data["schema_version"] == 1
    assert data["before"]["exit_code"] != 0
    assert data["before"]["counts"] == {
        "failed": 1,
        "passed": 0,
    }
    assert data["after"]["exit_code"] == 0
    assert data["after"]["counts"] == {"passed": 1}
    assert data["after"]["summary"] == "1 passed"
    assert data["files_changed"] == ["calc.py"]
    assert data["test_command"] == TEST_CMD
    assert data["session_id"]
    assert {"usage", "cost_usd", "duration_s", "verdict", "turns"} <= set(data)

    clone = tmp_path / "clone"
    git.Repo.clone_from(repo, clone).close()
    subprocess.run(["git", "apply", str(repo / ".qac-out" / "fix.patch")], cwd=clone, check=True)
    tests = subprocess.run(TEST_CMD.split(), cwd=clone, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr


def test_a_claimed_fix_that_is_not_one_exits_1(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking="Looks fine to me.", text="Fixed it!"))
    out = qac(
        "ci",
        "--test-cmd",
        TEST_CMD,
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 1
    data = out.json()
    assert data["status"] == "not_fixed"
    assert data["result"] == "Fixed it!"
    assert data["after"]["exit_code"] != 0
    assert data["after"]["counts"]["failed"] == 1
    assert report(repo)["status"] == "not_fixed"
    assert "not fixed" in out.stderr


def test_already_passing_changes_nothing(qac, model_server: ScriptedServer, repo: Path):
    (repo / "calc.py").write_text("def average(values):\n    return sum(values) / len(values)\n")
    git.Repo(repo).git.commit("-am", "fix by hand")
    out = qac(
        "ci",
        "--test-cmd",
        TEST_CMD,
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    assert out.json()["status"] == "already_passing"
    assert model_server.requests == []
    assert git_status(repo) == ""
    assert not (repo / ".qac-out" / "fix.patch").exists()


def test_a_hanging_test_command_is_ended_and_reported(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="I cannot make it finish."))
    hang = "sleep 1018 & sleep 1018"
    out = qac(
        "ci",
        "--test-cmd",
        hang,
        "--test-timeout",
        "2",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 1
    data = out.json()
    assert data["before"]["timed_out"] is True
    assert data["after"]["timed_out"] is True
    assert data["status"] == "not_fixed"
    assert "timed out after 2s" in data["after"]["output_tail"]
    assert sleepers("1018") == []


def test_commit_puts_one_commit_on_a_new_branch(qac, model_server: ScriptedServer, repo: Path):
    handle = git.Repo(repo)
    start = handle.head.commit.hexsha
    model_server.script(FIX, DONE)
    out = qac(
        "ci",
        "--test-cmd",
        TEST_CMD,
        "--commit",
        "--branch",
        "fix/average",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    assert handle.heads["main"].commit.hexsha == start
    fix = handle.heads["fix/average"].commit
    assert [p.hexsha for p in fix.parents] == [start]
    assert list(fix.stats.files) == ["calc.py"]
    assert out.json()["commit"] == {"branch": "fix/average", "commit": fix.hexsha}
    assert git_status(repo) == ""


def test_the_exported_session_resumes_in_a_fresh_store_with_its_reasoning(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(FIX, VERIFY, DONE)
    first = qac(
        "ci",
        "--test-cmd",
        TEST_CMD,
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert first.code == 0, first.stderr
    fresh = tmp_path / "fresh.db"
    imported = qac(
        "sessions", "import", str(repo / ".qac-out" / "session.jsonl"), "--store", str(fresh)
    )
    session_id = imported.stdout.strip()
    assert session_id == first.json()["session_id"]

    with ScriptedServer([turn(text="yes, verified")]) as server:
        out = qac(
            "run",
            "did the suite pass?",
            "--resume",
            session_id,
            "--store",
            str(fresh),
            *server_args(server),
            "-C",
            str(repo),
        )
        assert out.code == 0, out.stderr
        sent = [
            m.get("reasoning") for m in server.requests[0]["messages"] if m["role"] == "assistant"
        ]
    assert sent == [
        "average floors the result; use true division.",
        "Verify with the suite.",
        "Green.",
    ]


def test_a_dirty_tree_or_no_repository_is_refused(qac, repo: Path, tmp_path: Path):
    (repo / "calc.py").write_text("changed\n")
    dirty = qac("ci", "--test-cmd", TEST_CMD, "--provider", "vllm", "-C", str(repo))
    assert dirty.code == 2
    assert "uncommitted changes" in dirty.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    no_repo = qac("ci", "--test-cmd", TEST_CMD, "--provider", "vllm", "-C", str(plain))
    assert no_repo.code == 2
    assert "needs a git repository" in no_repo.stderr


def test_the_patch_survives_odd_files_and_user_diff_settings(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path, monkeypatch
):
    config = tmp_path / "gitconfig"
    config.write_text(
        "[diff]\n\tnoprefix = true\n[color]\n\tui = always\n[core]\n\tquotepath = true\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    model_server.script(
        FIX,
        turn(
            tool_call=(
                "shell",
                {
                    "command": "mkdir -p 'sub dir' && printf 'caf\\xe8\\n' > "
                    "latin.txt && printf 'd\\xc3\\xa9j\\xc3\\xa0' > "
                    "'sub dir/café.txt' && printf '\\x00\\x01' > b.bin"
                },
            )
        ),
        DONE,
    )
    out = qac(
        "ci",
        "--test-cmd",
        TEST_CMD,
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    assert out.json()["files_changed"] == ["b.bin", "calc.py", "latin.txt", "sub dir/café.txt"]
    clone = tmp_path / "clone"
    git.Repo.clone_from(repo, clone).close()
    subprocess.run(["git", "apply", str(repo / ".qac-out" / "fix.patch")], cwd=clone, check=True)
    assert (clone / "latin.txt").read_bytes() == b"caf\xe8\n"
    assert (clone / "sub dir" / "café.txt").read_text() == "déjà"
    assert (clone / "b.bin").read_bytes() == b"\x00\x01"


def test_a_bad_branch_is_refused_before_any_model_request(
    qac, model_server: ScriptedServer, repo: Path
):
    git.Repo(repo).git.branch("taken")
    for name in ("bad name..x", "taken"):
        out = qac(
            "ci",
            "--test-cmd",
            TEST_CMD,
            "--commit",
            "--branch",
            name,
            *server_args(model_server),
            "-C",
            str(repo),
        )
        assert out.code == 2, out.stderr
        assert "--branch" in out.stderr or "already exists" in out.stderr
    assert model_server.requests == []


def test_the_timeout_budget_bounds_the_test_runs_too(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(text="cannot fix a hang"))
    started = time.monotonic()
    out = qac(
        "ci",
        "--test-cmd",
        "sleep 1019",
        "--timeout",
        "3",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 1
    assert out.json()["before"]["timed_out"] is True
    assert time.monotonic() - started < 12
    assert sleepers("1019") == []


def test_a_runner_whose_summary_is_not_recognised_is_counts_unknown_never_zero(
    qac, model_server: ScriptedServer, repo: Path
):
    out = qac("ci", "--test-cmd", "echo all good", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    data = report(repo)
    assert data["status"] == "already_passing"
    assert data["before"]["counts"] == {}
    assert data["before"]["summary"] == "counts unknown"
