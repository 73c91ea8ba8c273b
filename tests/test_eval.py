"""`qac eval` end to end through the real CLI: the demo set (each job a real `qac ci` process
against a scripted model, in the real sandbox), hidden-test verdicts, shards and merge."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.evaluation.demo import prepare
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, Outcome, run_process, server_args

TIMED = ("wall_s", "overhead_s", "duration_s", "session_id")
DEMO_PAIRS = 16


def eval_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QAC_")}
    return {**env, "QAC_HOME": str(home)}


def run_eval(*args: str, home: Path, timeout: float = 240) -> Outcome:
    return run_process("eval", *args, env=eval_env(home), timeout=timeout)


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def untimed(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["task"], r["arm"]): {k: v for k, v in r.items() if k not in TIMED} for r in records}


def without_times(report: str) -> str:
    """The report with its wall-clock rows blanked: they differ from run to run."""
    return re.sub(r"^\| time per .*$", "| time |", report, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome]:
    """The whole demo set, two jobs at a time, once for the tests of this module."""
    root = tmp_path_factory.mktemp("demo")
    out = root / "full"
    outcome = run_eval("--demo", "--out", str(out), "--workers", "2", home=root / "home")
    return out, outcome


def test_the_demo_writes_results_predictions_and_reports(demo_run):
    out, outcome = demo_run
    assert outcome.code == 0, outcome.stderr
    assert "says nothing about a real model" in outcome.stderr
    records = results(out)
    assert len(records) == DEMO_PAIRS
    assert len(untimed(records)) == DEMO_PAIRS
    assert {r["arm"] for r in records} == {"preserve", "no-preserve"}
    for record in records:
        assert record["status"] != "error", record
        assert (out / record["session"]).read_text().startswith('{"type": "session"')
        assert record["session_id"] in (out / record["session"]).read_text()
    preserved = [r for r in records if r["arm"] == "preserve"]
    dropped = [r for r in records if r["arm"] == "no-preserve"]
    assert all(r["reasoning_resent_tokens"] > 0 for r in preserved)
    assert all(r["reasoning_resent_tokens"] == 0 for r in dropped)
    for arm in ("preserve", "no-preserve"):
        lines = (out / f"predictions-{arm}.jsonl").read_text().splitlines()
        predictions = [json.loads(line) for line in lines]
        assert len(predictions) == 8
        assert {p["model_name_or_path"] for p in predictions} == {f"qac:{arm}"}
    report = (out / "report.md").read_text()
    assert "say nothing about a real model" in report
    assert "| preserve vs no-preserve | 8 |" in report
    html = (out / "report.html").read_text()
    assert "<svg" in html
    assert "say nothing about a real model" in html
    assert not re.search(r"<script|src=|href=|@import|url\(", html)
    assert "report:" in outcome.stdout


def test_predicted_patches_apply_to_the_task_commits_and_agree_with_the_verdicts(
    demo_run, tmp_path: Path
):
    """Outside qac: each prediction applied to a fresh clone of its task's commit with the
    hidden tests added passes the hidden tests exactly where the result says verified."""
    out, _ = demo_run
    tasks = {
        t["id"]: t for t in map(json.loads, prepare(tmp_path / "again").read_text().splitlines())
    }
    verified = {(r["task"], r["arm"]): r["verified"] for r in results(out)}
    for arm in ("preserve", "no-preserve"):
        for line in (out / f"predictions-{arm}.jsonl").read_text().splitlines():
            prediction = json.loads(line)
            task = tasks[prediction["instance_id"]]
            clone = tmp_path / "clones" / arm / task["id"]
            git = ["git", "-c", "advice.detachedHead=false"]
            subprocess.run([*git, "clone", "-q", task["repo"], str(clone)], check=True)
            subprocess.run([*git, "checkout", "-q", task["base_commit"]], cwd=clone, check=True)
            for patch in (prediction["model_patch"], task["test_patch"]):
                subprocess.run(["git", "apply", "-"], cwd=clone, input=patch, text=True, check=True)
            hidden = subprocess.run(
                task["hidden_test_cmd"], shell=True, cwd=clone, capture_output=True, check=False
            )
            assert (hidden.returncode == 0) == verified[(task["id"], arm)], (task["id"], arm)


def test_a_claimed_fix_the_hidden_tests_reject_is_not_fixed(demo_run):
    out, _ = demo_run
    by_key = {(r["task"], r["arm"]): r for r in results(out)}
    clamp = by_key[("py-clamp", "no-preserve")]
    assert (clamp["status"], clamp["verified"], clamp["verdict"]) == ("fixed", False, "not fixed")
    assert clamp["hidden"]["exit_code"] != 0
    assert by_key[("py-clamp", "preserve")]["verified"] is True
    report = (out / "report.md").read_text()
    assert "| py-clamp | fixed (4 turns" in report
    assert "not fixed (hidden tests failed; 5 turns" in report


def test_two_shards_merged_report_what_one_run_reports(demo_run, tmp_path: Path):
    full, _ = demo_run
    home = tmp_path / "home"
    first = run_eval("--demo", "--shard", "0/2", "--out", str(tmp_path / "s0"), home=home)
    env = {**eval_env(home), "JOB_COMPLETION_INDEX": "1"}
    second = run_process(
        "eval", "--demo", "--shard", "auto/2", "--out", str(tmp_path / "s1"), env=env, timeout=240
    )
    assert (first.code, second.code) == (0, 0), first.stderr + second.stderr
    parts = [results(tmp_path / "s0"), results(tmp_path / "s1")]
    assert parts[0]
    assert parts[1]
    assert not untimed(parts[0]).keys() & untimed(parts[1]).keys()
    merged = run_eval(
        "merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m"), home=home
    )
    assert merged.code == 0, merged.stderr
    assert untimed(results(tmp_path / "m")) == untimed(results(full))
    assert without_times((tmp_path / "m" / "report.md").read_text()) == without_times(
        (full / "report.md").read_text()
    )
    for record in results(tmp_path / "m"):
        assert (tmp_path / "m" / record["session"]).exists()
    for arm in ("preserve", "no-preserve"):
        lines = (tmp_path / "m" / f"predictions-{arm}.jsonl").read_text().splitlines()
        full_lines = (full / f"predictions-{arm}.jsonl").read_text().splitlines()
        assert sorted(lines) == sorted(full_lines)


def test_own_task_file_one_arm_hidden_tests_reject_a_visible_pass(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    """A task file of our own format: the model makes the visible test pass by special-casing
    it; the hidden test (added only for the verdict) fails, so it is not fixed."""
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    hidden = "import unittest\nfrom calc import average\n\n\nclass H(unittest.TestCase):\n"
    hidden += "    def test_two(self):\n        self.assertEqual(average([1, 2]), 1.5)\n"
    lines = hidden.splitlines(keepends=True)
    patch = "diff --git a/test_hidden.py b/test_hidden.py\nnew file mode 100644\n"
    patch += f"--- /dev/null\n+++ b/test_hidden.py\n@@ -0,0 +1,{len(lines)} @@\n"
    patch += "".join("+" + line for line in lines)
    task = {
        "id": "calc <1>",
        "repo": "project",
        "base_commit": base,
        "prompt": "average is wrong",
        "test_cmd": TEST_CMD,
        "test_patch": patch,
        "max_turns": 4,
    }
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(task) + "\n")
    special_case = {
        "path": "calc.py",
        "old": "    return sum",
        "new": "    if values == [1, 2, 3, 4]:\n        return 2.5\n    return sum",
    }
    model_server.script(
        turn(thinking="Where am I?", tool_call=("shell", {"command": "git log --format=%H -1"})),
        turn(thinking="Make the test pass.", tool_call=("edit_file", special_case)),
        turn(thinking="Done.", text="Fixed."),
    )
    out = tmp_path / "out"
    outcome = qac(
        "eval",
        str(tasks),
        "--arm",
        "one=--max-turns 4",
        "--out",
        str(out),
        *server_args(model_server),
    )
    assert outcome.code == 0, outcome.stderr
    [record] = results(out)
    assert record["task"] == "calc <1>"
    assert (record["arm"], record["status"], record["verified"]) == ("one", "fixed", False)
    assert record["hidden"]["summary"] == "1 failed, 1 passed"
    git_log = str(model_server.requests[1]["messages"][-1]["content"])
    assert base in git_log, git_log  # the model's own git works in the job's checkout
    assert record["files_changed"] == ["calc.py"]
    assert "one: 0/1 fixed" in outcome.stdout
    html = (out / "report.html").read_text()
    assert "calc &lt;1&gt;" in html
    assert "calc <1>" not in html
    assert record["patch"].startswith("jobs/one/calc__1_-")


def test_a_swe_bench_instance_runs_with_its_tests_shown_and_scored_apart(
    qac, model_server: ScriptedServer, tmp_path: Path
):
    """SWE-bench's format: the test patch is committed before the run (the model reads the new
    test), the prediction leaves it out, and FAIL_TO_PASS plus PASS_TO_PASS give the verdict."""
    from qwen_agent_cli.evaluation.demo import new_file_patch
    from qwen_agent_cli.repository import init_repository

    checkout = tmp_path / "repos" / "acme__calc"
    checkout.mkdir(parents=True)
    (checkout / "calc.py").write_text(
        "def average(values):\n    return sum(values) // len(values)\n"
    )
    (checkout / "test_other.py").write_text(
        "import unittest\nfrom calc import average\n\n\nclass O(unittest.TestCase):\n"
        "    def test_one(self):\n        self.assertEqual(average([3]), 3)\n"
    )
    base = init_repository(checkout, "init").git("rev-parse", "HEAD").strip()
    test = "import unittest\nfrom calc import average\n\n\nclass T(unittest.TestCase):\n"
    test += "    def test_avg(self):\n        self.assertEqual(average([1, 2]), 1.5)\n"
    instance = {
        "instance_id": "acme__calc-1",
        "repo": "acme/calc",
        "base_commit": base,
        "problem_statement": "average floors",
        "FAIL_TO_PASS": json.dumps(["test_calc"]),
        "PASS_TO_PASS": json.dumps(["test_other"]),
        "test_patch": new_file_patch({"test_calc.py": test}),
    }
    tasks = tmp_path / "swe.jsonl"
    tasks.write_text(json.dumps(instance) + "\n")
    model_server.script(
        turn(thinking="Read the new test.", tool_call=("read_file", {"path": "test_calc.py"})),
        turn(
            thinking="Floor.", tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})
        ),
        turn(thinking="Done.", text="Fixed."),
    )
    out = tmp_path / "out"
    outcome = qac(
        "eval",
        str(tasks),
        "--repos-dir",
        str(tmp_path / "repos"),
        "--arm",
        "a=",
        "--test-cmd-template",
        "python3 -m unittest -q {tests}",
        "--out",
        str(out),
        *server_args(model_server),
    )
    assert outcome.code == 0, outcome.stderr
    [record] = results(out)
    assert (record["status"], record["verified"], record["files_changed"]) == (
        "fixed",
        True,
        ["calc.py"],
    )
    assert record["hidden"]["summary"] == "2 passed"
    [prediction] = [json.loads(x) for x in (out / "predictions-a.jsonl").read_text().splitlines()]
    assert prediction["instance_id"] == "acme__calc-1"
    assert "test_calc.py" not in prediction["model_patch"]
    assert "+    return sum(values) / len(values)" in prediction["model_patch"]
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=checkout, capture_output=True, text=True, check=True
    )
    assert len(worktrees.stdout.splitlines()) == 1  # the job's worktree is gone


def test_an_arms_own_cost_budget_holds_under_the_evaluations(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    """`--max-cost` of the evaluation caps each job, but never lifts a smaller budget an arm
    (or a task) sets: the job stops at the arm's."""
    home = Path(os.environ["QAC_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        '[models."priced-model"]\nwindow = 32768\ninput = 1000.0\noutput = 1000.0\n'
    )
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    task = {"id": "t", "repo": str(repo), "base_commit": base, "prompt": "fix average"}
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({**task, "test_cmd": TEST_CMD}) + "\n")
    model_server.script(turn(thinking="Look first.", tool_call=("read_file", {"path": "calc.py"})))
    out = tmp_path / "out"

    outcome = qac(
        "eval",
        str(tasks),
        "--arm",
        "frugal=--max-cost 0.000001",
        "--max-cost",
        "50",
        "--out",
        str(out),
        "--model",
        "priced-model",
        *server_args(model_server),
    )

    assert outcome.code == 0, outcome.stderr
    [record] = results(out)
    assert (record["arm"], record["status"], record["turns"]) == ("frugal", "max_cost", 1)
    assert len(model_server.requests) == 1


def test_merge_reads_and_writes_only_inside_the_folders(demo_run, tmp_path: Path):
    """A shard's results file may come from another machine: paths in it that leave the shard
    or the output folder are neither read nor written."""
    full, _ = demo_run
    shard = tmp_path / "shard"
    shutil.copytree(full, shard)
    secret = tmp_path / "secret.txt"
    secret.write_text("not to be copied\n")
    records = results(shard)
    records[0]["patch"] = "../secret.txt"
    records[1]["session"] = str(secret)
    (shard / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out" / "merged"

    merged = run_eval("merge", str(shard), "--out", str(out), home=tmp_path / "home")

    assert merged.code == 0, merged.stderr
    assert not (tmp_path / "out" / "secret.txt").exists()
    patches = [
        json.loads(line)["model_patch"]
        for arm in ("preserve", "no-preserve")
        for line in (out / f"predictions-{arm}.jsonl").read_text().splitlines()
    ]
    assert "not to be copied\n" not in patches
    records[0]["arm"] = "../../escape"
    (shard / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    refused = run_eval("merge", str(shard), "--out", str(tmp_path / "m2"), home=tmp_path / "home")
    assert refused.code == 2
    assert "names an arm qac never writes" in refused.stderr
