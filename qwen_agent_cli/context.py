"""The repository snapshot sent with every request of a session, taken once at its start, and
the git questions the loop asks (which files changed).

Owns git access (GitPython); imports nothing above `config`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qwen_agent_cli.repomap import RepoMap, build_map

MEMORY_FILES = ("AGENTS.md", "QWEN.md")
TREE_LIMIT = 300
MEMORY_LIMIT = 20_000
STATUS_LIMIT = 60
WALK_SKIP = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox"})


@dataclass(frozen=True, slots=True)
class RepoState:
    """Where the workspace stands in git, or that it is not a repository."""

    root: Path
    is_git: bool
    name: str
    branch: str


def repo_state(workdir: Path) -> RepoState:
    """Find the repository around workdir without spawning git."""
    workdir = workdir.resolve()
    for candidate in (workdir, *workdir.parents):
        if (candidate / ".git").exists():
            return RepoState(candidate, True, candidate.name, _branch(candidate / ".git"))
    return RepoState(workdir, False, workdir.name, "")


def _branch(git_dir: Path) -> str:
    head = git_dir / "HEAD"
    if git_dir.is_file():
        return ""
    try:
        text = head.read_text().strip()
    except OSError:
        return ""
    return text.removeprefix("ref: refs/heads/") if text.startswith("ref:") else text[:12]


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: str
    map: RepoMap | None = None


def snapshot(
    workdir: Path,
    *,
    map_tokens: int = 0,
    map_cache: Path | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Snapshot:
    """Repository name, branch, status, a bounded file tree, the memory files and the
    repository map, as text: taken once per session and stored with it."""
    state = repo_state(workdir)
    parts = [f"Repository: {state.name}"]
    if state.is_git:
        parts[0] += f" (git, branch {state.branch or 'detached'})"
        status, files = _git_status_and_files(state.root)
        parts.append("git status --short:\n" + (status or "(clean)"))
    else:
        parts[0] += " (not a git repository)"
        files = _walk_files(state.root)
    parts.append(f"Files ({len(files)}):\n{_tree(files)}")
    for name, text in _memory_files(state.root, workdir.resolve()):
        parts.append(f"{name}:\n{text}")
    built = None
    if map_tokens > 0:
        built = build_map(
            state.root,
            files,
            budget_tokens=map_tokens,
            cache_dir=map_cache,
            count_tokens=count_tokens,
        )
        if built.text:
            parts.append(f"Repository map (most referenced definitions first):\n{built.text}")
    return Snapshot("\n\n".join(parts), built)


def _git_status_and_files(root: Path) -> tuple[str, list[str]]:
    import git

    repo = git.Repo(root)
    try:
        status_lines = repo.git.status("--short", "--untracked-files=normal").splitlines()
        files = repo.git.ls_files("--cached", "--others", "--exclude-standard").splitlines()
    finally:
        repo.close()
    status = "\n".join(status_lines[:STATUS_LIMIT])
    if len(status_lines) > STATUS_LIMIT:
        status += f"\n… {len(status_lines) - STATUS_LIMIT} more"
    return status, sorted(set(files))


def workspace_files(workdir: Path) -> list[str]:
    """The files a person or the model would name: git's view (ignores respected) or a walk."""
    state = repo_state(workdir)
    if state.is_git:
        return _git_status_and_files(state.root)[1]
    return _walk_files(state.root)


def _walk_files(root: Path) -> list[str]:
    found: list[str] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in WALK_SKIP and not d.startswith("."))
        found.extend(str((Path(directory) / n).relative_to(root)) for n in sorted(names))
        if len(found) > 20 * TREE_LIMIT:
            break
    return found


def _tree(files: list[str]) -> str:
    """All paths when they fit; otherwise a count per top-level directory plus root files."""
    if len(files) <= TREE_LIMIT:
        return "\n".join(files)
    per_dir = Counter(f.split("/", 1)[0] + "/" for f in files if "/" in f)
    lines = [f"{d} ({n} files)" for d, n in sorted(per_dir.items())]
    lines += [f for f in files if "/" not in f]
    return "\n".join(lines[:TREE_LIMIT])


def _memory_files(root: Path, workdir: Path) -> list[tuple[str, str]]:
    directories = [root]
    if workdir != root and workdir.is_relative_to(root):
        relative = workdir.relative_to(root)
        directories += [root / Path(*relative.parts[: i + 1]) for i in range(len(relative.parts))]
    found = []
    for directory in directories:
        for name in MEMORY_FILES:
            path = directory / name
            if path.is_file():
                text = path.read_text("utf-8", errors="replace")[:MEMORY_LIMIT]
                found.append((str(path.relative_to(root)), text.strip()))
    return found


def file_fingerprints(workdir: Path) -> dict[str, str]:
    """Content hashes of every changed or untracked file, to tell later what a run changed."""
    state = repo_state(workdir)
    if not state.is_git:
        return {}
    import git

    repo = git.Repo(state.root)
    try:
        names = repo.git.status("--porcelain", "--untracked-files=all", "-z").split("\0")
    finally:
        repo.close()
    prints: dict[str, str] = {}
    for entry in names:
        if len(entry) < 4:
            continue
        path = entry[3:]
        prints[path] = _hash(state.root / path)
    return prints


def _hash(path: Path) -> str:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def changed_since(workdir: Path, before: dict[str, str]) -> list[str]:
    """Files whose content differs from the fingerprints taken at the start of the run."""
    after = file_fingerprints(workdir)
    changed = {p for p, h in after.items() if before.get(p) != h}
    changed |= {p for p in before if p not in after}
    return sorted(changed)


def init_repository(path: Path, message: str) -> None:
    """A fresh repository at path with everything in it committed (demo and fixtures)."""
    import git

    repo = git.Repo.init(path, initial_branch="main")
    try:
        with repo.config_writer() as config:
            config.set_value("user", "name", "qac")
            config.set_value("user", "email", "qac@localhost")
        repo.git.add(A=True)
        repo.index.commit(message)
    finally:
        repo.close()


CHECKPOINT_IDENTITY = {
    "GIT_AUTHOR_NAME": "qac",
    "GIT_AUTHOR_EMAIL": "qac@localhost",
    "GIT_COMMITTER_NAME": "qac",
    "GIT_COMMITTER_EMAIL": "qac@localhost",
}


def snapshot_tree(workdir: Path) -> str | None:
    """The working tree as a git tree object (tracked and untracked, not ignored), without
    touching the real index; None outside a git repository."""
    state = repo_state(workdir)
    if not state.is_git:
        return None
    import shutil
    import tempfile

    import git

    repo = git.Repo(state.root)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            index = Path(scratch) / "index"
            real_index = Path(repo.git_dir) / "index"
            if real_index.exists():
                shutil.copyfile(real_index, index)  # its stat cache saves re-hashing
            with repo.git.custom_environment(GIT_INDEX_FILE=str(index)):
                repo.git.add("-A")
                tree: str = repo.git.write_tree()
    finally:
        repo.close()
    return tree


def save_checkpoint(workdir: Path, tree: str, ref: str) -> None:
    """Keep a tree reachable under a hidden ref (never a branch), so gc cannot drop it."""
    import git

    repo = git.Repo(repo_state(workdir).root)
    try:
        with repo.git.custom_environment(**CHECKPOINT_IDENTITY):
            commit: str = repo.git.commit_tree(tree, "-m", "qac checkpoint")
        repo.git.update_ref(ref, commit)
    finally:
        repo.close()


def diff_trees(workdir: Path, old: str, new: str) -> str:
    """A unified diff between two snapshot trees."""
    import git

    repo = git.Repo(repo_state(workdir).root)
    try:
        text: str = repo.git.diff(old, new)
    finally:
        repo.close()
    return text


def restore_tree(workdir: Path, tree: str) -> list[str]:
    """Make the working tree's files match a snapshot again; returns the paths it touched.
    Files created since are removed; ignored files and the real index are left alone."""
    current = snapshot_tree(workdir)
    if current is None or current == tree:
        return []
    import shutil
    import tempfile

    import git

    root = repo_state(workdir).root
    repo = git.Repo(root)
    try:
        changes = repo.git.diff("--name-status", "--no-renames", tree, current).splitlines()
        restore = [line.split("\t", 1)[1] for line in changes if line[0] in "MD"]
        remove = [line.split("\t", 1)[1] for line in changes if line[0] == "A"]
        with tempfile.TemporaryDirectory() as scratch:
            index = str(Path(scratch) / "index")
            with repo.git.custom_environment(GIT_INDEX_FILE=index):
                repo.git.read_tree(tree)
                if restore:
                    repo.git.checkout_index("-f", "--", *restore)
    finally:
        repo.close()
    for path in remove:
        target = root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return sorted(restore + remove)
