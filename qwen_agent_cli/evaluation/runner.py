"""One job and the pool that runs them. A job is `qac ci` in a separate process, in a fresh
checkout of the task's commit, with the arm's flags; afterwards, outside the model's reach,
the checkout is reset to that commit, the job's patch (and the hidden test patch) applied and
the hidden tests run in the sandbox. The pool runs N jobs at once on threads that each wait
on their own process, records each job as it finishes, and stops at the evaluation's budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qwen_agent_cli
from qwen_agent_cli.argv import last_option
from qwen_agent_cli.assemble import build_executor
from qwen_agent_cli.ci import run_tests
from qwen_agent_cli.config import Settings
from qwen_agent_cli.evaluation.checkout import (
    JobSetupError,
    Sources,
    add_checkout,
    apply_patch,
    clean_checkout,
    remove_checkout,
)
from qwen_agent_cli.evaluation.record import error_record, job_record
from qwen_agent_cli.evaluation.results import Record, ResultLog, append_prediction, job_path
from qwen_agent_cli.evaluation.shard import ALL, Shard
from qwen_agent_cli.evaluation.tasks import ARM_NAME, Arm, Task
from qwen_agent_cli.repository import GitError, Repository
from qwen_agent_cli.sandbox import Executor, run_process

NO_TIMEOUT_JOB_S = 6 * 3600.0
"""The longest a job without --timeout may run before it is killed."""
JOB_GRACE_S = 120.0
"""What a job may run beyond its own --timeout (start-up, the test runs) before it is killed."""
ABORTING_EXITS = (2, 4)
"""`qac ci` exits that no other job would escape (a bad flag, no key, no sandbox)."""

JobModel = Callable[[Task, Arm], AbstractContextManager[list[str]]]
"""Extra flags for one job, held while it runs (the demo starts a scripted model for it)."""


class JobAbort(Exception):
    """A job failed in a way every job would (`qac ci` exit 2 or 4): stop the evaluation."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the pool needs, decided by the command line."""

    out: Path
    tasks: list[Task]
    arms: list[Arm]
    settings: Settings
    """The eval's own settings: the sandbox the hidden tests run in, the test timeout."""
    env: Mapping[str, str]
    shared_flags: tuple[str, ...] = ()
    workers: int = 1
    max_cost: float | None = None
    shard: Shard = ALL
    only: frozenset[str] | None = None
    model: JobModel | None = None

    def pairs(self) -> list[tuple[Task, Arm]]:
        """This shard's (task, arm) pairs, tasks in file order, arms in the order given."""
        return [
            (task, arm)
            for task in self.tasks
            if self.only is None or task.id in self.only
            for arm in self.arms
            if self.shard.takes(task.id, arm.name)
        ]


@dataclass(slots=True)
class Progress:
    """The pool's state, for the progress display."""

    total: int
    done_before: int
    spend: float
    done: int = 0
    failed: int = 0
    running: list[str] = field(default_factory=list)
    job_seconds: list[float] = field(default_factory=list)
    last: Record | None = None
    started: float = field(default_factory=time.monotonic)


Show = Callable[[str, Progress], None]


def run_pool(plan: Plan, log: ResultLog, workroot: Path, show: Show) -> str:
    """Run every pending pair; returns "done", "max_cost" or raises JobAbort / Interrupted."""
    pending = deque(p for p in plan.pairs() if (p[0].id, p[1].name) not in log.records)
    keys = {(t.id, a.name) for t, a in plan.pairs()}
    progress = Progress(
        total=len(keys),
        done_before=len(keys & set(log.records)),
        spend=sum(float(r.get("cost_usd") or 0) for r in log.records.values()),
    )
    sources = Sources(workroot / "mirrors")
    lock = threading.Lock()
    stopped: list[BaseException] = []
    closed = threading.Event()
    """Set when the eval is interrupted: no job starts and none is recorded from then on."""
    finished = threading.Event()
    show("start", progress)

    reserved: dict[tuple[str, str], float] = {}
    """What each running job may still spend of --max-cost: shares, so jobs running at once
    cannot together spend more than the evaluation has left."""

    def over_budget() -> bool:
        return plan.max_cost is not None and progress.spend >= plan.max_cost

    def share(key: tuple[str, str]) -> float | None:
        """A starting job's cap: what is left beyond the running jobs' shares, split among the
        workers not yet holding one."""
        if plan.max_cost is None:
            return None
        free = max(1, count - len(reserved))
        left = plan.max_cost - progress.spend - sum(reserved.values())
        reserved[key] = max(left, 0.0) / free
        return reserved[key]

    def work() -> None:
        while True:
            with lock:
                if stopped or closed.is_set() or not pending or over_budget():
                    return
                task, arm = pending.popleft()
                left = share((task.id, arm.name))
                progress.running.append(f"{task.id} [{arm.name}]")
                show("started", progress)
            try:
                record = run_job(plan, sources, workroot, task, arm, left)
            except BaseException as exc:
                with lock:
                    stopped.append(exc)
                return
            with lock:
                reserved.pop((task.id, arm.name), None)
                if closed.is_set():
                    return
                log.append(record)
                append_prediction(plan.out, record)
                progress.running.remove(f"{task.id} [{arm.name}]")
                progress.done += 1
                progress.failed += record["status"] == "error"
                progress.spend += float(record.get("cost_usd") or 0)
                progress.job_seconds.append(float(record.get("wall_s") or 0))
                progress.last = record
                show("finished", progress)

    def worker() -> None:
        try:
            work()
        finally:
            with lock:
                alive[0] -= 1
                if alive[0] == 0:
                    finished.set()

    count = max(1, min(plan.workers, len(pending)))
    alive = [count]
    for _ in range(count):
        # Daemon threads: an interrupted eval exits at once, and each job's process (which
        # dies with its parent) goes with it; finished jobs are already recorded.
        threading.Thread(target=worker, daemon=True).start()
    try:
        while not finished.wait(0.25):
            pass
    except BaseException:
        with lock:
            closed.set()
        raise
    if stopped:
        raise stopped[0]
    show("end", progress)
    return "max_cost" if pending and over_budget() else "done"


def run_job(
    plan: Plan, sources: Sources, workroot: Path, task: Task, arm: Arm, cost_left: float | None
) -> Record:
    """Run one (task, arm) pair to its record; only JobAbort escapes."""
    started = time.monotonic()
    relative = job_path(task.id, arm.name)
    job_dir = plan.out / relative
    shutil.rmtree(job_dir, ignore_errors=True)  # what a killed earlier try left
    scratch = workroot / hashlib.sha256(relative.encode()).hexdigest()[:12]
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    name = Path(task.repo.rstrip("/")).name.removesuffix(".git")
    path = scratch / (name if ARM_NAME.match(name) else "repo")  # never `..` of a URL
    timings: dict[str, float] = {"user_s": 0.0, "ci_s": 0.0}
    base: Record = {"task": task.id, "arm": arm.name}
    try:
        try:
            checkout, start = add_checkout(sources, task, path)
        except JobSetupError as exc:
            return error_record(base, str(exc), started, timings)
        executor = build_executor(plan.settings, plan.env, path)
        flags = [*plan.shared_flags, *task.budgets, *arm.flags]
        timeout = flag_number(flags, "--test-timeout") or plan.settings.command_timeout
        if task.setup_cmd:
            setup = run_tests(executor, task.setup_cmd, path, timeout)
            timings["user_s"] += setup.duration_s
            if not setup.passed:
                return error_record(
                    base, f"setup_cmd failed (exit {setup.exit_code})", started, timings
                )
        issue = scratch / "issue.md"
        issue.write_text(task.prompt, encoding="utf-8")
        if cost_left is not None:
            # The job's own budget (task or arm) holds too: the smaller wins, as the last flag.
            own = flag_number(flags, "--max-cost")
            cap = cost_left if own is None else min(own, cost_left)
            flags += ["--max-cost", f"{max(cap, 0.0):.6f}"]
        argv = [sys.executable, "-m", "qwen_agent_cli", "ci", "--test-cmd", task.test_cmd]
        argv += ["--issue", str(issue), "--out", str(job_dir), "--output-format", "json"]
        argv += ["-C", str(path), *(["--allow-dirty"] if task.setup_cmd else []), *flags]
        with (plan.model or _no_model)(task, arm) as extra:
            ci_started = time.monotonic()
            ran = run_process(
                [*argv, *extra],
                cwd=path,
                env=_job_env(plan.env),
                timeout=_job_timeout(flags),
                die_with_parent=True,
            )
            timings["ci_s"] = time.monotonic() - ci_started
        report = _read_json(job_dir / "report.json")
        if report is None:
            last = (ran.output.strip().splitlines() or ["no output"])[-1].removeprefix("qac: ")
            if ran.exit_code in ABORTING_EXITS:
                raise JobAbort(ran.exit_code, f"{task.id} [{arm.name}]: {last}")
            return error_record(base, f"qac ci exited {ran.exit_code}: {last}", started, timings)
        verdict = _verify(task, checkout, start, job_dir, executor, timeout, timings)
        return job_record(base, relative, report, verdict, job_dir, started, timings)
    finally:
        remove_checkout(path)
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _no_model(task: Task, arm: Arm) -> Iterator[list[str]]:
    yield []


def _job_env(env: Mapping[str, str]) -> dict[str, str]:
    """The user's environment, with this qac first on the path: each job runs this code."""
    root = str(Path(qwen_agent_cli.__file__).resolve().parent.parent)
    paths = [root, *(p for p in env.get("PYTHONPATH", "").split(":") if p and p != root)]
    return {**env, "PYTHONPATH": ":".join(paths)}


def flag_number(flags: list[str], name: str) -> float | None:
    """The last value given for a numeric option (seconds, USD) among `qac ci` flags, if any."""
    value = last_option(flags, name)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _job_timeout(flags: list[str]) -> float:
    """The job's own --timeout plus some grace; hours without one."""
    timeout = flag_number(flags, "--timeout")
    return timeout + JOB_GRACE_S if timeout else NO_TIMEOUT_JOB_S


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _verify(
    task: Task,
    checkout: Repository,
    start: str,
    job_dir: Path,
    executor: Executor,
    timeout: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The verdict: the job's patch (and the hidden test patch) on a clean checkout of its
    start commit, the hidden tests run there. An empty patch fixes nothing."""
    patch = job_dir / "fix.patch"
    if not patch.exists() or patch.stat().st_size == 0:
        return {"verified": False, "note": "no change"}
    try:
        clean_checkout(checkout, start)
    except GitError as exc:
        return {"verified": False, "note": f"cannot reset the checkout: {exc}"}
    problem = apply_patch(checkout, patch)
    if problem:
        return {"verified": False, "note": f"the patch does not apply: {problem}"}
    if task.test_patch and not task.tests_visible:
        hidden_patch = job_dir.parent / f".{job_dir.name}.test.patch"
        hidden_patch.write_text(task.test_patch, encoding="utf-8", errors="surrogateescape")
        try:
            problem = apply_patch(checkout, hidden_patch)
        finally:
            hidden_patch.unlink()
        if problem:
            return {"verified": False, "note": f"the test_patch does not apply: {problem}"}
    path = checkout.root
    if task.setup_cmd:
        setup = run_tests(executor, task.setup_cmd, path, timeout)
        timings["user_s"] += setup.duration_s
        if not setup.passed:
            return {"verified": False, "note": f"setup_cmd failed (exit {setup.exit_code})"}
    command = task.hidden_test_cmd or task.test_cmd
    hidden = run_tests(executor, command, path, timeout)
    timings["user_s"] += hidden.duration_s
    summary = {"exit_code": hidden.exit_code, "summary": hidden.summary}
    return {"verified": hidden.passed, "hidden": summary}
