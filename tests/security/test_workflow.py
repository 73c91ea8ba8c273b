"""The shipped CI examples hold against hostile pull requests: the GitHub Actions workflow passes
zizmor's audit (the real tool, offline), and the GitLab jobs keep the key and the write token
apart and away from merge-request pipelines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "ci"


def zizmor(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "zizmor"
    assert binary.exists(), "zizmor is a test dependency: pip install '.[test]'"
    return subprocess.run(
        [str(binary), "--offline", "--no-progress", *args, str(CONFIGS / "github-actions.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_github_workflow_has_no_findings_even_pedantic():
    for persona in ("regular", "pedantic"):
        audit = zizmor("--persona", persona)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "No findings to report" in audit.stdout + audit.stderr


def test_the_github_workflow_keeps_the_key_in_one_step_and_no_fork_trigger():
    workflow = yaml.safe_load((CONFIGS / "github-actions.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "workflow_dispatch", "workflow_call"}
    assert workflow["permissions"] == {}
    holders = [
        (job, step.get("name"))
        for job, body in workflow["jobs"].items()
        for step in body["steps"]
        if "DASHSCOPE_API_KEY" in str(step)
    ]
    assert holders == [("fix", "Run the bug-fix job")]
    assert workflow["jobs"]["fix"]["permissions"] == {"contents": "read"}
    for body in workflow["jobs"].values():
        for step in body["steps"]:
            assert "${{" not in step.get("run", ""), step


def test_the_gitlab_jobs_never_run_for_merge_requests_and_split_the_secrets():
    jobs = yaml.safe_load((CONFIGS / "gitlab-ci.yml").read_text())
    fix, publish = jobs["qac-fix"], jobs["qac-merge-request"]
    assert fix["environment"]["name"] == "qac"
    assert publish["environment"]["name"] == "qac-publish"
    for rule in (*jobs[".qac-rules"]["rules"], *publish["rules"]):
        assert '$CI_PIPELINE_SOURCE == "push"' in rule["if"]
        assert '$CI_COMMIT_REF_PROTECTED == "true"' in rule["if"]
    assert "QAC_PUSH_TOKEN" not in str(fix)
    assert not any(line.startswith("qac ") for line in publish["script"])  # runs no model
