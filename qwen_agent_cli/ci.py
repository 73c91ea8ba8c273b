"""`qac ci` (DESIGN §9): verify the failure, run the loop, re-verify outside the model's control,
and leave a patch, a report and the session; optionally commit the fix on a new branch.

Built on assemble (the agent), the executor and the pinned Repository; never pushes, and
runs no hook of the repository's.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Generator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qwen_agent_cli.assemble import assemble, build_executor
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.events import ErrorEvent, Event, Result, until_result
from qwen_agent_cli.repository import GitError, Repository
from qwen_agent_cli.sandbox import Executor
from qwen_agent_cli.session_html import render_session
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.testcounts import describe_counts, parse_test_counts
from qwen_agent_cli.types import Status
from qwen_agent_cli.workspace import JobDir

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
    summary: str = "counts unknown"
    """The counts in words ("4 passed, 1 failed"), or "counts unknown" when no runner's summary
    was recognised: an empty `counts` never means zero tests."""
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
        counts=(counts := parse_test_counts(result.output, result.exit_code)),
        summary=describe_counts(counts),
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
) -> Generator[Event, None, None]:
    """The whole job as events; the last is a Result whose `extra` holds the report."""
    started = time.monotonic()
    repository = Repository.find(workdir)
    if repository is None:
        raise ConfigError(f"qac ci needs a git repository; {workdir} is not in one")
    # Opened before anything runs and hidden from the sandbox: nothing the model plants in it
    # (a link at fix.patch, a link for the folder itself) is ever followed.
    out = JobDir.open(job.out_dir, workspace=workdir)
    try:
        out.ignore_itself()
        if _dirty(repository, out.path) and not job.allow_dirty:
            raise ConfigError(
                "the working tree has uncommitted changes; commit or stash them first "
                "(or pass --allow-dirty), so the patch holds only the fix"
            )
        if job.commit and job.branch:
            check_branch(repository, job.branch)
        start_commit, start_branch = _head(repository)
        settings_for_job = _with_test_cmd(settings, job.test_cmd)
        executor = build_executor(settings_for_job, env, workdir, masked=[out.path])
        # --timeout bounds the whole job, the test runs included.
        budget = (started + settings.timeout) if settings.timeout else None

        def test_timeout() -> float:
            if budget is None:
                return job.test_timeout
            return max(min(job.test_timeout, budget - time.monotonic()), 1.0)

        before = run_tests(executor, job.test_cmd, workdir, test_timeout())
        if before.passed:
            yield _finish(job, out, started, Status.ALREADY_PASSING, before, None, None, [])
            return
        if budget is not None:
            left = max(budget - time.monotonic(), 1.0)
            settings_for_job = replace(settings_for_job, timeout=left)
        built = assemble(
            settings_for_job,
            env=env,
            workdir=workdir,
            store=store,
            executor=executor,
            protected=[out.path],
        )
        prompt = PROMPT.format(
            command=job.test_cmd,
            issue=f"\nThe issue to fix:\n{job.issue_text.strip()}\n" if job.issue_text else "",
            exit_code=before.exit_code,
            output=before.output_tail,
        )
        loop_result = yield from until_result(built.agent.run(prompt))
        after = run_tests(built.executor, job.test_cmd, workdir, test_timeout())
        status = _verdict(Status(loop_result.status), after)
        patch, files, tree = _changes(repository, start_commit, out.path)
        out.write("fix.patch", patch + b"\n" if patch else b"")
        out.write("session.jsonl", _export(store, loop_result.session_id))
        committed = None
        if job.commit and status is Status.FIXED and patch:
            branch = job.branch or f"qac/fix-{loop_result.session_id}"
            message = _commit_message(job.test_cmd, loop_result.session_id, after)
            committed = _commit(repository, branch, tree, start_commit, message)
            if "error" in committed:
                yield ErrorEvent(message=f"could not commit the fix: {committed['error']}")
        store.set_status(loop_result.session_id, status.value)
        out.write("session.html", _page(store, loop_result.session_id, settings))
        yield _finish(
            job,
            out,
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
        out.close()


def _dirty(repository: Repository, out_dir: Path) -> bool:
    listing = repository.git(
        "status", "--porcelain", "--untracked-files=normal", *_all_but(repository, out_dir)
    )
    return bool(listing.strip())


def _all_but(repository: Repository, out_dir: Path) -> list[str]:
    """A pathspec for the whole work tree except the job's own output folder."""
    pathspec = ["--", "."]
    if out_dir.is_relative_to(repository.root):
        pathspec.append(f":(exclude,literal){out_dir.relative_to(repository.root)}")
    return pathspec


def _head(repository: Repository) -> tuple[str, str | None]:
    """The starting commit and branch (None when detached); an empty repository is refused."""
    try:
        commit = repository.git("rev-parse", "--verify", "HEAD^{commit}").strip()
    except GitError:
        raise ConfigError("qac ci needs a commit to start from; this repository has none") from None
    try:
        branch = repository.git("symbolic-ref", "-q", "--short", "HEAD").strip() or None
    except GitError:
        branch = None  # detached
    return commit, branch


def _with_test_cmd(settings: Settings, command: str) -> Settings:
    return replace(settings, test_cmd=command, approval=settings.approval or "auto")


def _verdict(loop_status: Status, after: TestRun) -> Status:
    """Only a pass of the command after the loop is `fixed`; budgets keep their own status."""
    if after.passed:
        return Status.FIXED
    return Status.NOT_FIXED if loop_status is Status.DONE else loop_status


PLAIN_DIFF = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


def _changes(
    repository: Repository, start_commit: str, out_dir: Path
) -> tuple[bytes, list[str], str]:
    """Every change since the start commit, new files included: the patch as git's own bytes
    (whatever the user's diff settings), the changed paths, and the tree holding them. The
    job's own output folder is never part of it, and the real index is untouched."""
    pathspec = _all_but(repository, out_dir)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        repository.git("read-tree", start_commit, env=scratch_env)
        repository.git("add", "-A", *pathspec, env=scratch_env)
        tree = repository.git("write-tree", env=scratch_env).strip()
    patch = repository.git_bytes(
        "-c",
        "core.quotepath=off",
        "diff",
        *PLAIN_DIFF,
        "--binary",
        start_commit,
        tree,
    )
    names = repository.git_bytes("diff", "--name-only", "-z", start_commit, tree)
    listed = names.decode("utf-8", "surrogateescape").split("\0")
    return patch, sorted(name for name in listed if name), tree


def check_branch(repository: Repository, branch: str) -> None:
    """Refuse a bad or taken --branch before any money is spent."""
    try:
        repository.git("check-ref-format", "--branch", branch)
    except GitError:
        raise ConfigError(f"--branch {branch!r} is not a valid branch name") from None
    try:
        repository.git("show-ref", "--verify", "--quiet", f"refs/heads/{branch}")
    except GitError:
        return
    raise ConfigError(f"branch {branch!r} already exists; pass another --branch")


def _commit_message(command: str, session_id: str, after: TestRun) -> str:
    return (
        f"Fix failing tests: `{command}` passes ({after.summary})\n\n"
        f"Made by qwen-agent-cli, session {session_id}.\n"
        f"Verified by running `{command}` after the agent finished.\n"
    )


def _commit(
    repository: Repository, branch: str, tree: str, parent: str, message: str
) -> dict[str, str]:
    """Commit the fix on a new branch with plumbing only (commit-tree, update-ref), so no hook
    of the repository's runs; the starting branch keeps pointing where it did and the checkout
    moves to the new branch. A failure is reported, not raised: the patch and the report are
    still written."""
    try:
        check_branch(repository, branch)
    except ConfigError as exc:
        return {"branch": branch, "error": str(exc)}
    identity = {}
    if not repository.git("config", "--default", "", "--get", "user.name").strip():
        identity = {"GIT_AUTHOR_NAME": "qac", "GIT_COMMITTER_NAME": "qac"}
    if not repository.git("config", "--default", "", "--get", "user.email").strip():
        identity |= {"GIT_AUTHOR_EMAIL": "qac@localhost", "GIT_COMMITTER_EMAIL": "qac@localhost"}
    ref = f"refs/heads/{branch}"
    try:
        commit = repository.git(
            "commit-tree", tree, "-p", parent, "-m", message, env=identity
        ).strip()
        repository.git("update-ref", "-m", "qac ci: verified fix", ref, commit, "0" * 40)
        repository.git("symbolic-ref", "HEAD", ref)
        repository.git("read-tree", commit)
    except GitError as exc:
        return {"branch": branch, "error": str(exc)}
    return {"branch": branch, "commit": commit}


def _export(store: SessionStore, session_id: str) -> bytes:
    return ("\n".join(store.export_jsonl(session_id)) + "\n").encode("utf-8")


def _page(store: SessionStore, session_id: str, settings: Settings) -> bytes:
    """The session as a page a reviewer opens from the job's artifacts (session_html)."""
    info = store.get(session_id)
    return render_session(info, store.messages(session_id), settings.catalogue).encode("utf-8")


def _finish(
    job: CiJob,
    out: JobDir,
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
        "patch": str(out.path / "fix.patch") if loop else None,
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
    hidden = ("type", "extra", "exit_code")
    report = {k: v for k, v in asdict(result).items() if k not in hidden} | extra
    out.write("report.json", (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    return result
