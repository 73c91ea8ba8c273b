"""The repository snapshot sent with every request of a session, taken once at its start, and
the git questions the loop and the REPL ask (which files changed, checkpoints, undo).

Asks git only through a Repository pinned before the run; reads files only through the guard.
Imports nothing above `config`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwen_agent_cli import instructions
from qwen_agent_cli.instructions import Instructions
from qwen_agent_cli.repomap import RepoMap, build_map
from qwen_agent_cli.repository import Repository

TREE_LIMIT = 300
STATUS_LIMIT = 60
WALK_SKIP = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox"})
LISTING = (
    *("ls-files", "-z", "-t", "-v", "-s"),
    *("--cached", "--modified", "--others", "--exclude-standard"),
)
"""Tracked files with their blob ids and a tag each (`H` as in the index, `C` changed in the
working tree, lower case when marked assume-unchanged), and untracked ones (`?`): the file
list, and which files git vouches for, from one git process that stats them in C."""
REGULAR_MODES = frozenset({"100644", "100755"})
LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}
"""A directory name with `*` or `:(...)` in it is a name, not a pattern."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: str
    map: RepoMap | None = None
    instructions: Instructions = field(default_factory=Instructions)


def snapshot(
    workdir: Path,
    repository: Repository | None,
    *,
    map_tokens: int = 0,
    map_cache: Path | None = None,
    count_tokens: Callable[[str], int] | None = None,
    user_dir: Path | None = None,
    secrets: Sequence[Path] = (),
) -> Snapshot:
    """Repository name, branch, status, a bounded file tree, the instruction files (see
    `instructions`) and the repository map, as text: taken once per session and stored with it."""
    workdir = workdir.resolve()
    root = repository.root if repository is not None else workdir
    parts = [f"Repository: {root.name}"]
    if repository is not None:
        parts[0] += f" (git, branch {repository.branch() or 'detached'})"
        status, files, blobs = _git_status_and_files(repository)
        parts.append("git status --short:\n" + (status or "(clean)"))
    else:
        parts[0] += " (not a git repository)"
        files, blobs = _walk_files(root), {}
    parts.append(f"Files ({len(files)}):\n{_tree(files)}")
    loaded = instructions.load(root, workdir, user_dir, secrets=secrets)
    if loaded.text:
        parts.append(loaded.text)
    built = None
    if map_tokens > 0:
        built = build_map(
            root,
            files,
            budget_tokens=map_tokens,
            cache_dir=map_cache,
            count_tokens=count_tokens,
            blobs=blobs,
        )
        if built.text:
            parts.append(f"Repository map (most referenced definitions first):\n{built.text}")
    return Snapshot("\n\n".join(parts), built, loaded)


def _git_status_and_files(repository: Repository) -> tuple[str, list[str], dict[str, str]]:
    status_lines = repository.git("status", "--short", "--untracked-files=normal").splitlines()
    files, blobs = _listing(repository.git(*LISTING))
    status = "\n".join(status_lines[:STATUS_LIMIT])
    if len(status_lines) > STATUS_LIMIT:
        status += f"\n… {len(status_lines) - STATUS_LIMIT} more"
    return status, files, blobs


def _listing(listed: str) -> tuple[list[str], dict[str, str]]:
    """Every path `LISTING` names, sorted, and the blob id of each tracked regular file whose
    content git has just found unchanged in the working tree, so the map knows it by content
    without a stat. A file git cannot vouch for gets none: modified or deleted (a `C` line
    follows its `H`), marked assume-unchanged or skip-worktree (another tag), unmerged (a
    stage), a link or a submodule (another mode)."""
    paths: set[str] = set()
    blobs: dict[str, str] = {}
    doubtful: set[str] = set()
    for entry in listed.split("\0"):
        tag, _, rest = entry.partition(" ")
        if tag == "?":
            paths.add(rest)
            continue
        meta, _, path = rest.partition("\t")
        if not path:
            continue
        paths.add(path)
        mode, _, blob_and_stage = meta.partition(" ")
        blob, _, stage = blob_and_stage.partition(" ")
        if tag == "H" and stage == "0" and mode in REGULAR_MODES:
            blobs[path] = blob
        else:
            doubtful.add(path)
    for path in doubtful:
        blobs.pop(path, None)
    return sorted(paths), blobs


def workspace_files(workdir: Path, repository: Repository | None) -> list[str]:
    """The files a person or the model would name: git's view (ignores respected) or a walk."""
    if repository is not None:
        return _git_status_and_files(repository)[1]
    return _walk_files(workdir)


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


def file_fingerprints(repository: Repository | None) -> dict[str, str]:
    """Content hashes of every changed or untracked file, to tell later what a run changed."""
    if repository is None:
        return {}
    names = repository.git("status", "--porcelain", "--untracked-files=all", "--no-renames", "-z")
    return {
        entry[3:]: _fingerprint(repository.root / entry[3:])
        for entry in names.split("\0")
        if len(entry) >= 4
    }


def _fingerprint(path: Path) -> str:
    """A file's content hash; a link by its target and anything else by its type, so a planted
    FIFO or a link to /dev/zero is never read."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            return f"link:{path.readlink()}"
        if not stat.S_ISREG(info.st_mode):
            return f"special:{stat.S_IFMT(info.st_mode)}"
        digest = hashlib.sha1()
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(handle, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return "missing"


def changed_since(repository: Repository | None, before: dict[str, str]) -> list[str]:
    """Files whose content differs from the fingerprints taken at the start of the run."""
    after = file_fingerprints(repository)
    changed = {p for p, h in after.items() if before.get(p) != h}
    changed |= {p for p in before if p not in after}
    return sorted(changed)


CHECKPOINT_IDENTITY = {
    "GIT_AUTHOR_NAME": "qac",
    "GIT_AUTHOR_EMAIL": "qac@localhost",
    "GIT_COMMITTER_NAME": "qac",
    "GIT_COMMITTER_EMAIL": "qac@localhost",
}


def snapshot_tree(repository: Repository | None) -> str | None:
    """The working tree as a git tree object (tracked and untracked, not ignored), without
    touching the real index; None outside a git repository."""
    if repository is None:
        return None
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        index = Path(scratch) / "index"
        real_index = repository.git_dir / "index"
        if real_index.is_file():
            shutil.copyfile(real_index, index)  # its stat cache saves re-hashing
        scratch_env = {"GIT_INDEX_FILE": str(index)}
        repository.git("add", "-A", env=scratch_env)
        return repository.git("write-tree", env=scratch_env).strip()


def save_checkpoint(repository: Repository, tree: str, ref: str, parent: str = "") -> str:
    """Keep a tree reachable under a hidden ref (never a branch), so gc cannot drop it; a
    `parent` commit makes the ref hold a pair (the tree before, this one after). Returns the
    commit."""
    linked = ("-p", parent) if parent else ()
    commit = repository.git(
        "commit-tree", tree, *linked, "-m", "qac checkpoint", env=CHECKPOINT_IDENTITY
    ).strip()
    repository.git("update-ref", ref, commit)
    return commit


def diff_trees(repository: Repository, old: str, new: str) -> str:
    """A unified diff between two snapshot trees."""
    return repository.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", old, new)


def changed_paths(repository: Repository, old: str, new: str, within: str = "") -> list[str]:
    """The paths that differ between two snapshot trees, only under `within` (a directory
    relative to the root, taken literally) when given."""
    listing = repository.git(
        "diff", "--name-only", "--no-renames", "-z", old, new, *_pathspec(within), env=LITERAL
    )
    return [path for path in listing.split("\0") if path]


def _pathspec(within: str) -> tuple[str, ...]:
    return ("--", within) if within else ()


def restore_tree(repository: Repository | None, tree: str, within: str = "") -> list[str]:
    """Make the working tree's files match a snapshot again, only under `within` when given;
    returns the paths it touched. Files created since are removed first, never through a link
    (a planted `link -> ~` with `link/x` behind it must not delete `~/x`), then git writes the
    snapshot's files back (it refuses to write through a linked directory itself). Ignored
    files and the real index are left alone."""
    current = snapshot_tree(repository)
    if repository is None or current is None or current == tree:
        return []
    import tempfile

    names = ("--name-status", "--no-renames", "-z", tree, current, *_pathspec(within))
    listing = repository.git("diff", *names, env=LITERAL)
    fields = listing.split("\0")
    changes = list(zip(fields[0::2], fields[1::2], strict=False))
    restore = [path for kind, path in changes if kind in ("M", "D", "T")]
    remove = [path for kind, path in changes if kind == "A"]
    keep = len(Path(within).parts)
    for path in sorted(remove, key=lambda p: -p.count("/")):
        _remove_beneath(repository.root, path, keep)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        repository.git("read-tree", tree, env=scratch_env)
        if restore:
            repository.git("checkout-index", "-f", "--", *restore, env=scratch_env)
    return sorted(restore + remove)


def _remove_beneath(root: Path, path: str, keep: int = 0) -> None:
    """Remove root/path, opening every parent without following links; a path whose parent is
    a link or not a directory is left alone. Parents it leaves empty go too, as in git's own
    checkout, except the first `keep` (the directory a session works in)."""
    import shutil

    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    *parents, name = Path(path).parts
    try:
        handles = [os.open(root, flags)]
    except OSError:
        return
    try:
        for part in parents:
            handles.append(os.open(part, flags, dir_fd=handles[-1]))
        info = os.lstat(name, dir_fd=handles[-1])
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=handles[-1])
        else:
            os.unlink(name, dir_fd=handles[-1])
        for depth in range(len(parents) - 1, keep - 1, -1):
            os.rmdir(parents[depth], dir_fd=handles[depth])  # stops at one still in use
    except OSError:
        return
    finally:
        for handle in handles:
            os.close(handle)
