"""`qac ci` (DESIGN §9): verify the failure, run the loop, re-verify outside the model's control,
and leave a patch, a report and the session; optionally commit the fix on a new branch.

Built on assemble (the agent), the executor and git; never pushes.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qwen_agent_cli.assemble import assemble, build_executor
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.events import ErrorEvent, Event, Result
from qwen_agent_cli.sandbox import Executor
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.tools.shell import parse_test_counts
from qwen_agent_cli.types import Status

REPORT_SCHEMA = 1
OUTPUT_TAIL = 6000
PROMPT = """\
The test command `{command}` fails in this repository. Find the root cause and fix the code so
that it passes. Change the tests only if they are clearly wrong. Use run_tests to check your fix.
{issue}
Output of the failing run (exit code {exit_code}, trimmed):

{output}
"""


@dataclass(frozen=True, slots=True)
class TestRun:
    """One run of the test command, as the report records it."""

    command: str
    exit_code: int
    passed: bool
    duration_s: float
    timed_out: bool
    counts: dict[str, int] = field(default_factory=dict)
    output_tail: str = ""


@dataclass(frozen=True, slots=True)
class CiJob:
    test_cmd: str
    out_dir: Path
    issue_text: str = ""
    commit: bool = False
    branch: str | None = None
    allow_dirty: bool = False
    test_timeout: float = 600.0


def run_tests(executor: Executor, command: str, workdir: Path, timeout: float) -> TestRun:
    result = executor.run(command, cwd=workdir, timeout=timeout)
    return TestRun(
        command=command,
        exit_code=result.exit_code,
        passed=result.exit_code == 0 and not result.timed_out,
        duration_s=round(result.duration_s, 3),
        timed_out=result.timed_out,
        counts=parse_test_counts(result.output, result.exit_code),
        output_tail=_tail(result.output),
    )


def _tail(output: str) -> str:
    if len(output) <= OUTPUT_TAIL:
        return output
    return "[... earlier output cut ...]\n" + output[-OUTPUT_TAIL:]


def run_ci(
    settings: Settings,
    job: CiJob,
    *,
    env: Mapping[str, str],
    workdir: Path,
    store: SessionStore,
) -> Iterator[Event]:
    """The whole job as events; the last is a Result whose `extra` holds the report."""
    import git

    started = time.monotonic()
    try:
        repo = git.Repo(workdir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"qac ci needs a git repository; {workdir} is not in one") from None
    try:
        _prepare_out_dir(job.out_dir)
        if repo.is_dirty(untracked_files=True) and not job.allow_dirty:
            raise ConfigError(
                "the working tree has uncommitted changes; commit or stash them first "
                "(or pass --allow-dirty), so the patch holds only the fix"
            )
        if job.commit and job.branch:
            check_branch(repo, job.branch)
        start_commit = repo.head.commit.hexsha
        start_branch = None if repo.head.is_detached else repo.active_branch.name
        settings_for_job = _with_test_cmd(settings, job.test_cmd)
        executor = build_executor(settings_for_job, env, workdir)
        # --timeout bounds the whole job, the test runs included.
        budget = (started + settings.timeout) if settings.timeout else None

        def test_timeout() -> float:
            if budget is None:
                return job.test_timeout
            return max(min(job.test_timeout, budget - time.monotonic()), 1.0)

        before = run_tests(executor, job.test_cmd, workdir, test_timeout())
        if before.passed:
            yield _finish(job, started, Status.ALREADY_PASSING, before, None, None, [])
            return
        if budget is not None:
            left = max(budget - time.monotonic(), 1.0)
            settings_for_job = replace(settings_for_job, timeout=left)
        built = assemble(settings_for_job, env=env, workdir=workdir, store=store, executor=executor)
        prompt = PROMPT.format(
            command=job.test_cmd,
            issue=f"\nThe issue to fix:\n{job.issue_text.strip()}\n" if job.issue_text else "",
            exit_code=before.exit_code,
            output=before.output_tail,
        )
        loop_result: Result | None = None
        for event in built.agent.run(prompt):
            if isinstance(event, Result):
                loop_result = event
            else:
                yield event
        assert loop_result is not None
        after = run_tests(built.executor, job.test_cmd, workdir, test_timeout())
        status = _verdict(Status(loop_result.status), after)
        patch, files = _changes(repo, start_commit)
        (job.out_dir / "fix.patch").write_bytes(patch + b"\n" if patch else b"")
        _export(store, loop_result.session_id, job.out_dir / "session.jsonl")
        committed = None
        if job.commit and status is Status.FIXED and patch:
            branch = job.branch or f"qac/fix-{loop_result.session_id}"
            committed = _commit(repo, branch, job.test_cmd, loop_result.session_id, after)
            if "error" in committed:
                yield ErrorEvent(message=f"could not commit the fix: {committed['error']}")
        store.set_status(loop_result.session_id, status.value)
        yield _finish(
            job,
            started,
            status,
            before,
            after,
            loop_result,
            files,
            committed=committed,
            start_branch=start_branch,
        )
    finally:
        repo.close()


def _with_test_cmd(settings: Settings, command: str) -> Settings:
    return replace(settings, test_cmd=command, approval=settings.approval or "auto")


def _verdict(loop_status: Status, after: TestRun) -> Status:
    """Only a pass of the command after the loop is `fixed`; budgets keep their own status."""
    if after.passed:
        return Status.FIXED
    return Status.NOT_FIXED if loop_status is Status.DONE else loop_status


def _prepare_out_dir(out_dir: Path) -> None:
    """The artifacts folder ignores itself, so it never dirties the tree or enters a commit."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".gitignore").write_text("*\n")
    except OSError as exc:
        raise ConfigError(f"cannot write to the output directory {out_dir}: {exc}") from exc


PLAIN_DIFF = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


def _changes(repo: Any, start_commit: str) -> tuple[bytes, list[str]]:
    """Every change since the start commit, new files included: the patch as git's own bytes
    (whatever the user's diff settings) and the changed paths. The real index is untouched."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        repo.git.custom_environment(GIT_INDEX_FILE=str(Path(scratch) / "index")),
    ):
        repo.git.read_tree(start_commit)
        repo.git.add("-A")
        # `repo.git(c=…)` sets options for the next command only, so it is called each time.
        patch: bytes = repo.git(c="core.quotepath=off").diff(
            "--cached", *PLAIN_DIFF, "--binary", start_commit, stdout_as_string=False
        )
        names: bytes = repo.git(c="core.quotepath=off").diff(
            "--cached", "--name-only", "-z", start_commit, stdout_as_string=False
        )
    listed = names.decode("utf-8", "surrogateescape").split("\0")
    return patch, sorted(name for name in listed if name)


def check_branch(repo: Any, branch: str) -> None:
    """Refuse a bad or taken --branch before any money is spent."""
    import git

    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError:
        raise ConfigError(f"--branch {branch!r} is not a valid branch name") from None
    if branch in [h.name for h in repo.heads]:
        raise ConfigError(f"branch {branch!r} already exists; pass another --branch")


def _commit(
    repo: Any, branch: str, command: str, session_id: str, after: TestRun
) -> dict[str, str]:
    """Commit the fix on a new branch; the starting branch keeps pointing where it did. A
    failure is reported, not raised: the patch and the report are still written."""
    import git

    try:
        check_branch(repo, branch)
    except ConfigError as exc:
        return {"branch": branch, "error": str(exc)}
    identity = {}
    reader = repo.config_reader()
    if not reader.has_option("user", "name"):
        identity = {"GIT_AUTHOR_NAME": "qac", "GIT_COMMITTER_NAME": "qac"}
    if not reader.has_option("user", "email"):
        identity |= {"GIT_AUTHOR_EMAIL": "qac@localhost", "GIT_COMMITTER_EMAIL": "qac@localhost"}
    counts = ", ".join(f"{v} {k}" for k, v in after.counts.items())
    message = (
        f"Fix failing tests: `{command}` passes{f' ({counts})' if counts else ''}\n\n"
        f"Made by qwen-agent-cli, session {session_id}.\n"
        f"Verified by running `{command}` after the agent finished.\n"
    )
    try:
        repo.git.checkout("-b", branch)
        repo.git.add("-A")
        with repo.git.custom_environment(**identity):
            repo.git.commit("-m", message, "--no-verify")
    except git.GitCommandError as exc:
        return {"branch": branch, "error": str(exc.stderr or exc).strip()}
    return {"branch": branch, "commit": repo.head.commit.hexsha}


def _export(store: SessionStore, session_id: str, path: Path) -> None:
    path.write_text("\n".join(store.export_jsonl(session_id)) + "\n", encoding="utf-8")


def _finish(
    job: CiJob,
    started: float,
    status: Status,
    before: TestRun,
    after: TestRun | None,
    loop: Result | None,
    files: list[str],
    *,
    committed: dict[str, str] | None = None,
    start_branch: str | None = None,
) -> Result:
    verdict = {
        Status.ALREADY_PASSING: "the test command already passes; nothing was changed",
        Status.FIXED: "fixed: the test command passes after the run",
        Status.NOT_FIXED: "not fixed: the test command still fails after the run",
    }.get(status, f"not fixed: the run ended with status {status.value}")
    extra: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA,
        "verdict": verdict,
        "test_command": job.test_cmd,
        "before": asdict(before),
        "after": asdict(after) if after else None,
        "patch": str(job.out_dir / "fix.patch") if loop else None,
        "start_branch": start_branch,
        "commit": committed,
    }
    result = Result(
        session_id=loop.session_id if loop else "",
        status=status.value,
        result=loop.result if loop else verdict,
        turns=loop.turns if loop else 0,
        usage=loop.usage
        if loop
        else {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": None,
            "reasoning_tokens": None,
        },
        cost_usd=loop.cost_usd if loop else 0.0,
        duration_s=round(time.monotonic() - started, 3),
        files_changed=files,
        extra=extra,
    )
    report = {k: v for k, v in asdict(result).items() if k not in ("type", "extra")} | extra
    (job.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return result
