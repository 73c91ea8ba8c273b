"""Git around one job: where a task's repository comes from (a local checkout, or a mirror
fetched once per URL), a fresh repository checked out at its commit, a clean checkout with a patch
applied for the verdict, and its removal. Every call goes through `Repository`,
so nothing the repository configures runs.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qwen_agent_cli.context import CHECKPOINT_IDENTITY
from qwen_agent_cli.evaluation.tasks import Task
from qwen_agent_cli.repository import GitError, Repository

FETCH_ALLOWED = ("-c", "protocol.allow=always")
"""qac's git calls allow no transport; fetching a task's URL is the one place that needs one."""
LOCAL_FETCH = ("-c", "protocol.file.allow=always")
"""A job's repository takes the task's commit from a local one: the file transport only."""


class JobSetupError(Exception):
    """The job's checkout could not be made; the job is recorded as an error."""


@dataclass
class Sources:
    """The repositories tasks come from, each with a lock: a URL's mirror is fetched by one
    thread at a time."""

    mirrors: Path
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, repo: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(repo, threading.Lock())

    def repository(self, task: Task) -> Repository:
        """The local repository holding the task's commit (a URL is fetched once)."""
        if not task.is_url:
            found = Repository.find(Path(task.repo))
            if found is None:
                raise JobSetupError(f"{task.repo} is not a git repository")
            return found
        with self.lock(task.repo):
            return self._mirror(task)

    def _mirror(self, task: Task) -> Repository:
        path = self.mirrors / hashlib.sha256(task.repo.encode()).hexdigest()[:16]
        mirror = Repository(path.resolve(), (path / ".git").resolve())
        try:
            if not (path / ".git").exists():
                path.mkdir(parents=True, exist_ok=True)
                mirror.git("init", "-q")
            if not _has_commit(mirror, task.base_commit):
                refs = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
                mirror.git(*FETCH_ALLOWED, "fetch", "-q", task.repo, *refs)
            if not _has_commit(mirror, task.base_commit):
                mirror.git(*FETCH_ALLOWED, "fetch", "-q", task.repo, task.base_commit)
        except GitError as exc:
            raise JobSetupError(f"cannot fetch {task.repo}: {exc}") from None
        return mirror


def _has_commit(repository: Repository, commit: str) -> bool:
    try:
        repository.git("rev-parse", "-q", "--verify", f"{commit}^{{commit}}")
    except GitError:
        return False
    return True


def add_checkout(sources: Sources, task: Task, path: Path) -> tuple[Repository, str]:
    """A fresh repository at path holding the task's commit, checked out detached; returns it
    and the commit the job starts from (the task's, or one on top holding a visible test
    patch). Its own `.git` inside it, not a linked worktree's pointer to the source: the
    sandbox shows the model only the workspace, where `git diff` and `git log` must work as
    they do for `qac ci` in a checkout."""
    source = sources.repository(task)
    checkout = Repository(path.resolve(), (path / ".git").resolve())
    try:
        commit = source.git("rev-parse", "-q", "--verify", f"{task.base_commit}^{{commit}}")
        commit = commit.strip()
        path.mkdir(parents=True, exist_ok=True)
        checkout.git("init", "-q")
        checkout.git(*LOCAL_FETCH, "fetch", "-q", "--no-tags", str(source.git_dir), commit)
        checkout.git("checkout", "-q", "--detach", commit)
    except (GitError, OSError) as exc:
        raise JobSetupError(f"cannot check out {task.base_commit} of {task.repo}: {exc}") from None
    start = commit
    if task.tests_visible and task.test_patch:
        start = _commit_patch(checkout, task.test_patch, path.parent / "test.patch")
    return checkout, start


def _commit_patch(checkout: Repository, patch: str, scratch: Path) -> str:
    """Apply the test patch and commit it (plumbing only), so the job's patch leaves it out."""
    scratch.write_text(patch, encoding="utf-8", errors="surrogateescape")
    try:
        checkout.git("apply", "--index", "--binary", str(scratch))
        tree = checkout.git("write-tree").strip()
        head = checkout.git("rev-parse", "HEAD").strip()
        commit = checkout.git(
            "commit-tree", tree, "-p", head, "-m", "qac eval: test patch", env=CHECKPOINT_IDENTITY
        ).strip()
        checkout.git("update-ref", "--no-deref", "HEAD", commit)
    except GitError as exc:
        raise JobSetupError(f"the task's test_patch does not apply: {exc}") from None
    return commit


def clean_checkout(checkout: Repository, commit: str) -> None:
    """Back to exactly `commit`: every change, new file and ignored file the run left removed."""
    checkout.git("reset", "-q", "--hard", commit)
    checkout.git("clean", "-q", "-ffdx")


def apply_patch(checkout: Repository, patch: Path) -> str | None:
    """Apply a patch file; returns git's complaint when it does not apply."""
    if patch.stat().st_size == 0:
        return None
    try:
        checkout.git("apply", "--binary", "--whitespace=nowarn", str(patch))
    except GitError as exc:
        return str(exc) or "git apply failed"
    return None


def remove_checkout(path: Path) -> None:
    """Remove the job's repository; a failure leaves files, never an error."""
    shutil.rmtree(path, ignore_errors=True)
