"""Checkpoints of the working tree under hidden refs (never a branch): when one is taken, where
it is kept and how it is undone. The REPL keeps one per turn that changed files for /undo
(`refs/qac/checkpoints/SESSION/N`), `qac run` one per invocation for `qac undo`
(`refs/qac/runs/SESSION/N`). What a snapshot is, and how it is written back, is context.py's.

Each ref is a commit of the tree before the action; once the action has ended, a commit of the
tree after it, whose parent is the one before. A run killed midway leaves the first kind.
Imports nothing above `context`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from qwen_agent_cli import context
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.repository import Repository

RUN_REFS = "refs/qac/runs"
UNDONE_REFS = "refs/qac/undone"
"""Where an undone run goes: a commit of the tree `qac undo` replaced (the run's changes, and
anything made since when forced), whose parent is the run's own commit."""
REPL_REFS = "refs/qac/checkpoints"
PLAIN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NOTE_NAMES = 20


class UndoError(QacError):
    """`qac undo` refused, or found nothing to undo: the task was not done (exit 1)."""

    exit_code = 1


@dataclass(slots=True)
class Span:
    """The trees before and after one checkpointed action (None outside a git repository)."""

    before: str | None = None
    after: str | None = None

    @property
    def changed(self) -> bool:
        return self.before is not None and self.after is not None and self.after != self.before


@contextlib.contextmanager
def checkpointed(repository: Repository | None, ref: str) -> Iterator[Span]:
    """Snapshot the working tree around an action. The tree before is kept under `ref` at
    once, so an action killed midway can still be undone; at the end the ref holds the pair,
    or goes when nothing changed."""
    span = Span(context.snapshot_tree(repository))
    if repository is None or span.before is None:
        yield span
        return
    start = context.save_checkpoint(repository, span.before, ref)
    try:
        yield span
    finally:
        span.after = context.snapshot_tree(repository)
        if span.changed and span.after is not None:
            context.save_checkpoint(repository, span.after, ref, parent=start)
        else:
            repository.git("update-ref", "-d", ref, start)


def ref_key(session_id: str) -> str:
    """A session id as one ref name component: itself when plain, else a digest of it (an
    imported session's id is whatever its file said)."""
    if PLAIN_KEY.fullmatch(session_id):
        return session_id
    return "id-" + hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def forget(repository: Repository, session_id: str) -> int:
    """Delete a session's checkpoint refs (its runs, undone runs and REPL turns), so a removed
    session keeps no objects alive in the repository; returns how many went."""
    key = ref_key(session_id)
    names = repository.git(
        "for-each-ref",
        "--format=%(refname)",
        *(f"{base}/{key}" for base in (RUN_REFS, UNDONE_REFS, REPL_REFS)),
    ).split()
    for name in names:
        repository.git("update-ref", "-d", name)
    return len(names)


def repl_ref(owner: str, number: int) -> str:
    return f"{REPL_REFS}/{ref_key(owner)}/{number}"


def undo_note(command: str, action: str, restored: Sequence[str]) -> str:
    """What the conversation is told after an undo, so the model does not assume its edits."""
    return (
        f"[The user ran {command}: the file changes of the last {action} were reverted "
        f"({named(restored, NOTE_NAMES)}). Those files are back as they were before it.]"
    )


def named(paths: Sequence[str], limit: int) -> str:
    """The first `limit` paths, and how many more."""
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


# -- `qac run` ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One recorded run of a session: its commit, and the trees around it (`after` is None
    when the run never recorded its end)."""

    number: int
    ref: str
    commit: str
    before: str
    after: str | None


@dataclass(frozen=True, slots=True)
class Undone:
    run: Run
    restored: list[str]
    kept_at: str


class RunCheckpoint:
    """`qac run`'s checkpoint: started once the session is known, finished however the run
    ends. It never fails the run: a problem is said once with `warn`, and undo is then
    unavailable for this run."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self._stack = contextlib.ExitStack()

    def start(self, repository: Repository | None, session_id: str) -> None:
        if repository is None:
            return
        try:
            ref = next_run_ref(repository, session_id)
            self._stack.enter_context(checkpointed(repository, ref))
        except QacError as exc:
            self.warn(
                f"cannot checkpoint the working tree ({exc}); `qac undo` cannot undo this run"
            )

    def finish(self) -> None:
        try:
            self._stack.close()
        except QacError as exc:
            self.warn(f"cannot record the end of this run ({exc}); `qac undo` will need --force")


def _refs(repository: Repository, session_id: str, *bases: str) -> list[tuple[int, str, str, str]]:
    """(number, commit, tree, parent) of each ref under BASE/SESSION/, in number order."""
    listing = repository.git(
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(tree)%00%(parent)",
        *(f"{base}/{ref_key(session_id)}" for base in bases),
    )
    found = []
    for line in listing.splitlines():
        name, commit, tree, parent = [*line.split("\0"), "", "", ""][:4]
        number = name.rsplit("/", 1)[-1]
        if number.isdigit() and tree:
            found.append((int(number), commit, tree, parent.split(" ")[0]))
    return sorted(found)


def next_run_ref(repository: Repository, session_id: str) -> str:
    """A number no run or undone run of the session has used."""
    used = [number for number, *_ in _refs(repository, session_id, RUN_REFS, UNDONE_REFS)]
    return f"{RUN_REFS}/{ref_key(session_id)}/{max(used, default=0) + 1}"


def runs(repository: Repository, session_id: str) -> list[Run]:
    """The session's runs that changed files (or never recorded their end), oldest first."""
    found = []
    for number, commit, tree, parent in _refs(repository, session_id, RUN_REFS):
        ref = f"{RUN_REFS}/{ref_key(session_id)}/{number}"
        if parent:
            before = repository.git("rev-parse", "--verify", f"{parent}^{{tree}}").strip()
            found.append(Run(number, ref, commit, before, tree))
        else:
            found.append(Run(number, ref, commit, tree, None))
    return found


def undo_last_run(
    repository: Repository, session_id: str, *, within: str = "", force: bool = False
) -> Undone:
    """Put the files under `within` back as they were before the session's last run that
    changed them, refusing when they changed since that run ended (unless forced). What is
    replaced is kept under refs/qac/undone/, so nothing is lost, even when forced."""
    recorded = runs(repository, session_id)
    if not recorded:
        raise UndoError(
            f"nothing to undo: no `qac run` of session {session_id} left changes to undo "
            "(the REPL's /undo undoes its turns; `qac undo ID` names another session)"
        )
    run = recorded[-1]
    current = context.snapshot_tree(repository)
    assert current is not None
    which = f"run {run.number} of session {session_id}"
    if run.after is None and not force:
        raise UndoError(
            f"{which} never recorded its end (was it killed?), so qac cannot tell your changes "
            "from its own; `qac undo --force` restores the files from before it anyway"
        )
    since = context.changed_paths(repository, run.after, current, within) if run.after else []
    if since and not force:
        raise UndoError(
            f"the working tree changed since {which} ended ({named(since, 5)}); undoing would "
            "lose those changes. `qac undo --force` undoes anyway (what it replaces is kept "
            f"under {UNDONE_REFS}/)"
        )
    kept_at = f"{UNDONE_REFS}/{ref_key(session_id)}/{run.number}"
    context.save_checkpoint(repository, current, kept_at, parent=run.commit)
    restored = context.restore_tree(repository, run.before, within)
    repository.git("update-ref", "-d", run.ref, run.commit)
    return Undone(run, restored, kept_at)
