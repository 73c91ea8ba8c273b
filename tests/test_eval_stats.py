"""The statistics and the report on hand-made result sets with known answers, and the task
file's and the command line's refusals (each one line, exit 2, naming the line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.evaluation.report import build, render_markdown
from qwen_agent_cli.evaluation.report_html import render_html
from qwen_agent_cli.evaluation.shard import parse_shard, shard_of
from qwen_agent_cli.evaluation.stats import Paired, mcnemar_exact, paired, wilson
from qwen_agent_cli.evaluation.summary import summarize
from qwen_agent_cli.evaluation.tasks import SweOptions, load_tasks, parse_arm


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (7, 8, 0.5291, 0.9776),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_intervals_match_published_values(k, n, low, high):
    assert wilson(k, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_of_nothing_is_the_whole_range():
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [
        (0, 0, 1.0),
        (1, 1, 1.0),
        (0, 5, 0.0625),
        (6, 0, 0.03125),
        (2, 8, 0.109375),
        (3, 12, 0.03515625),
        (10, 10, 1.0),
    ],
)
def test_exact_mcnemar_p_values(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-12)


def test_pairing_counts_only_tasks_both_arms_ran():
    a = {"t1": True, "t2": True, "t3": False, "t4": False, "t5": True}
    b = {"t1": True, "t2": False, "t3": True, "t4": False}
    assert paired("a", "b", a, b) == Paired("a", "b", 4, 1, 1, 1, 1, 1.0)


def record(task: str, arm: str, verified: bool, **extra: Any) -> dict[str, Any]:
    base = {
        "task": task,
        "arm": arm,
        "status": "fixed" if verified else "not_fixed",
        "verified": verified,
        "turns": 4,
        "prompt_tokens": 1000,
        "cached_tokens": 600,
        "completion_tokens": 100,
        "reasoning_tokens": 50,
        "reasoning_resent_tokens": 0,
        "cost_usd": 0.01,
        "duration_s": 2.0,
    }
    return base | extra


def hand_made() -> list[dict[str, Any]]:
    """Ten tasks: arm `on` fixes 8, arm `off` fixes 3; every fix of off is also one of on."""
    records = []
    for number in range(10):
        task = f"t{number}"
        records.append(record(task, "on", number < 8, reasoning_resent_tokens=30))
        records.append(record(task, "off", number < 3, cost_usd=0.02))
    records[-1] = record("t9", "off", False, status="stuck")
    records[-3] = record("t8", "off", False, status="error", turns=0, cost_usd=0.0)
    return records


def test_summary_of_a_hand_made_set():
    summary = summarize(hand_made(), ["on", "off"])
    on, off = summary.arms
    assert (on.arm, on.tasks, on.verified, off.verified) == ("on", 10, 8, 3)
    assert on.interval == pytest.approx(wilson(8, 10))
    assert (off.stuck, off.errors, on.stuck) == (1, 1, 0)
    assert on.cached_share == pytest.approx(0.6)
    assert on.per_fix(on.cost_usd) == pytest.approx(0.1 / 8)
    assert off.per_fix(off.cost_usd) == pytest.approx(0.17 / 3)  # t8 cost 0, t9 0.01
    assert on.per_task(on.reasoning_resent) == 30
    [pair] = summary.pairs
    assert (pair.both, pair.only_a, pair.only_b, pair.neither) == (3, 5, 0, 2)
    assert pair.p_value == pytest.approx(0.0625)


def test_the_report_escapes_what_tasks_and_arms_say():
    records = [
        record("<script>alert(1)</script>", "a|b", True),
        record("x\n| injected |", "a|b", False, status="fixed"),
    ]
    meta = {"arms": [{"name": "a|b", "flags": ["--model", "<m>"]}], "demo": False}
    report = build(records, meta)
    html = render_html(report)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    markdown = render_markdown(report)
    assert "a\\|b" in markdown
    assert "\n| injected |" not in markdown
    assert "hidden tests failed" in markdown


def test_shards_partition_the_pairs_stably():
    pairs = [(f"task-{n}", arm) for n in range(50) for arm in ("preserve", "no-preserve")]
    shards = [shard_of(t, a, 3) for t, a in pairs]
    assert set(shards) == {0, 1, 2}
    assert shard_of("task-1", "preserve", 3) == shards[2]
    # sha256 of "django__django-11099\0preserve", its first 8 bytes mod 4, on any machine.
    assert shard_of("django__django-11099", "preserve", 4) == 2
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "3"}).index == 3
    for bad in ("4/4", "x/2", "1", "auto/2"):
        with pytest.raises(ConfigError):
            parse_shard(bad, {})


def test_arms_take_run_settings_only():
    assert parse_arm("flash=--model qwen3.6-flash --no-thinking").flags == (
        "--model",
        "qwen3.6-flash",
        "--no-thinking",
    )
    for bad in ("=--model x", "x=--out y", "x=-C dir", "x=--model", "x=--resume 1"):
        with pytest.raises(ConfigError):
            parse_arm(bad)


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "tasks.jsonl:2: not JSON"),
        ({"id": "b", "repo": "r"}, "tasks.jsonl:2: 'base_commit' must be a non-empty string"),
        (
            {"id": "a", "repo": "r", "base_commit": "H", "prompt": "p", "test_cmd": "t"},
            "tasks.jsonl:2: task id 'a' is already used on line 1",
        ),
        (
            {"id": "b", "repo": "nowhere", "base_commit": "H", "prompt": "p", "test_cmd": "t"},
            "tasks.jsonl:2: repo 'nowhere' is not a git repository",
        ),
        (
            {
                "id": "b",
                "repo": "r",
                "base_commit": "H",
                "prompt": "p",
                "test_cmd": "t",
                "max_turns": -1,
            },
            "tasks.jsonl:2: 'max_turns' must be a positive number",
        ),
        (
            {"instance_id": "x__y-1", "repo": "x/y", "base_commit": "H", "problem_statement": "p"},
            "tasks.jsonl:2: a SWE-bench instance needs --repos-dir",
        ),
    ],
)
def test_a_bad_task_line_is_refused_with_its_line(qac, repo: Path, line, message):
    good = {"id": "a", "repo": "r", "base_commit": "HEAD", "prompt": "p", "test_cmd": "t"}
    (repo.parent / "r").symlink_to(repo)
    tasks = write_lines(repo.parent / "tasks.jsonl", good, line)
    outcome = qac("eval", str(tasks), "--out", str(repo.parent / "out"))
    assert outcome.code == 2
    assert message in outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1
    assert "Traceback" not in outcome.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arm", "x=--out y"], "'--out' is not a run setting"),
        (["--arm", "a=", "--arm", "a=--no-thinking"], "--arm a is given twice"),
        (["--shard", "2/2"], "--shard '2/2'"),
        (["--only", "nope"], "--only nope: no task"),
    ],
)
def test_bad_options_exit_2_with_one_line(qac, repo: Path, args, message):
    good = {"id": "a", "repo": str(repo), "base_commit": "HEAD", "prompt": "p", "test_cmd": "t"}
    tasks = write_lines(repo.parent / "tasks.jsonl", good)
    outcome = qac("eval", str(tasks), *args, "--out", str(repo.parent / "out"))
    assert (outcome.code, len(outcome.stderr.splitlines())) == (2, 1), outcome.stderr
    assert message in outcome.stderr


def test_swe_bench_instances_become_tasks(repo: Path, tmp_path: Path):
    checkouts = tmp_path / "repos"
    checkouts.mkdir()
    (checkouts / "acme__calc").symlink_to(repo)
    instance = {
        "instance_id": "acme__calc-7",
        "repo": "acme/calc",
        "base_commit": "abc123",
        "problem_statement": "average floors",
        "FAIL_TO_PASS": json.dumps(["test_calc.py::test_average"]),
        "PASS_TO_PASS": json.dumps(["test_calc.py::test it's"]),
        "test_patch": "diff --git a/x b/x\n",
    }
    tasks = write_lines(tmp_path / "swe.jsonl", instance)
    [task] = load_tasks(tasks, SweOptions(checkouts, "pytest -q {tests}"))
    assert (task.id, task.base_commit, task.prompt) == ("acme__calc-7", "abc123", "average floors")
    assert task.repo == str(repo.resolve())
    assert task.test_cmd == "pytest -q test_calc.py::test_average"
    assert task.hidden_test_cmd == (
        "pytest -q test_calc.py::test_average 'test_calc.py::test it'\"'\"'s'"
    )
    assert (task.tests_visible, task.test_patch) == (True, "diff --git a/x b/x\n")
