"""Host-side file access on the model's and the job's behalf: the Workspace path guard (the one
way tools turn names into paths, and the only writer of workspace files), and JobDir, the
directory a job's artifacts are written into without following anything planted there.

Imports nothing above `config`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwen_agent_cli.atomic import write_text_atomically
from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.guard import PROTECTED_DIRS, covered, real_path
from qwen_agent_cli.text import unescape_bytes

PRIVATE_FILE = 0o600
MAX_PATH_DEPTH = 256
MAX_PATH_CHARS = 4096
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory the agent works in; `resolve` is the only way tools turn names into paths."""

    root: Path
    guarded: bool = True
    writable: bool = True
    secrets: Sequence[Path] = ()
    """Credentials and qac's own files: refused to every tool, even inside the workspace."""
    protected: Sequence[Path] = ()
    """Readable but never writable, beside .git and .qac (a job's output directory)."""
    _secrets: tuple[Path, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A secret folder may be a link (dotfile managers): refuse its target as well. One that
        # holds the workspace itself (`-C ~/.config/nvim`) is where the user chose to work.
        root = real_path(self.root)
        both = [*self.secrets, *(real_path(p) for p in self.secrets)]
        kept = [p for p in both if not root.is_relative_to(p)]
        object.__setattr__(self, "_secrets", tuple(dict.fromkeys(kept)))

    def resolve(self, path: str, *, write: bool = False) -> Path:
        """Refuse paths outside the workspace (by `..`, absolute, or symlink), secrets, and
        writes under .git, .qac and the protected folders."""
        if not path or "\x00" in path:
            raise ToolError("a path is required (relative to the workspace root)")
        if len(path) > MAX_PATH_CHARS or path.count("/") >= MAX_PATH_DEPTH:
            raise ToolError(
                f"{path[:80]}…: refused, a path may have at most {MAX_PATH_DEPTH} parts and "
                f"{MAX_PATH_CHARS} characters"
            )
        root = self.root.resolve()
        candidate = Path(path).expanduser() if path.startswith("~") else Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        raw = Path(unescape_bytes(str(candidate)))
        if raw != candidate and not os.path.lexists(candidate) and os.path.lexists(raw):
            candidate = raw  # a non-UTF-8 name, as the tools showed it
        resolved = candidate.resolve()
        if not self.guarded:
            return resolved
        if not resolved.is_relative_to(root):
            how = "a symlink pointing" if _through_symlink(candidate, root) else "a path"
            raise ToolError(
                f"{path}: refused, {how} outside the workspace; only files under the "
                "workspace root can be used"
            )
        if covered(resolved, self._secrets) or covered(candidate, self._secrets):
            raise ToolError(f"{path}: refused, it holds credentials or qac's own files")
        if write and not self.writable:
            raise ToolError(f"{path}: refused, the workspace is read-only (--sandbox read-only)")
        if write:
            first = resolved.relative_to(root).parts[:1]
            if first and first[0] in PROTECTED_DIRS:
                raise ToolError(
                    f"{path}: refused, the {first[0]} directory is read-only (git's state and "
                    "qac's project config are never written by tools)"
                )
            linked = [real_path(root / name) for name in PROTECTED_DIRS]
            if covered(resolved, [p for p in linked if p != root]):
                raise ToolError(f"{path}: refused, .git and .qac are read-only (through a link)")
            if covered(resolved, [real_path(p) for p in self.protected]):
                raise ToolError(f"{path}: refused, qac writes this folder itself")
        return resolved

    def relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def write_text(self, path: Path, text: str) -> None:
        """Write a file atomically (a crash never leaves half a file), through a fresh temporary
        file that no planted symlink can redirect. Callers get `path` from resolve(write=True),
        which enforces the guard and read-only mode."""
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        write_text_atomically(path, text, mode)

    def contains(self, path: Path) -> bool:
        """Whether a path, symlinks followed, lies inside the workspace and is no secret: what
        a walk (grep, glob) may open."""
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):
            return False
        if not resolved.is_relative_to(self.root.resolve()):
            return False
        return not self.guarded or covered(resolved, self._secrets) is None


def _through_symlink(candidate: Path, root: Path) -> bool:
    parts = candidate.relative_to(root).parts if candidate.is_relative_to(root) else ()
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


class JobDir:
    """A job's output directory, held open by descriptor from the job's start: every component
    inside the workspace is opened without following links (a planted `.qac-out -> ~` is refused,
    not followed), and each file is written to a fresh name and renamed into place, so a link
    planted at `fix.patch` is replaced, never written through. The sandbox is kept out of it
    by a mount (see `masked`)."""

    def __init__(self, path: Path, handle: int) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def open(cls, path: Path, *, workspace: Path) -> JobDir:
        """Create (or open) `path`; components under the workspace must be real directories."""
        workspace = workspace.resolve()
        # Lexically, not by resolving: a link on the way is what must be refused.
        path = Path(os.path.normpath(path if path.is_absolute() else Path.cwd() / path))
        try:
            if path.is_relative_to(workspace):
                handle = os.open(workspace, DIRECTORY_FLAGS)
                for part in path.relative_to(workspace).parts:
                    handle = _open_child(handle, part)
            else:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                handle = os.open(path, DIRECTORY_FLAGS)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the output directory {path}: {exc.strerror or exc} (a link or a "
                "file where a directory must be is refused; pass another --out)"
            ) from None
        return cls(path, handle)

    def write(self, name: str, data: bytes, mode: int = PRIVATE_FILE) -> Path:
        """Write `name` in this directory: a new file (O_EXCL, O_NOFOLLOW) renamed into place."""
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            handle = os.open(temporary, flags, mode, dir_fd=self._handle)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view) :]
            finally:
                os.close(handle)
            os.replace(temporary, name, src_dir_fd=self._handle, dst_dir_fd=self._handle)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path / name}: {exc.strerror or exc}") from None
        return self.path / name

    def ignore_itself(self) -> None:
        """A `.gitignore` of `*`, so the folder never dirties the tree or enters a commit; one
        that is already there (perhaps committed) is left as it is."""
        try:
            os.lstat(".gitignore", dir_fd=self._handle)
        except FileNotFoundError:
            self.write(".gitignore", b"*\n", mode=0o644)

    def close(self) -> None:
        if self._handle >= 0:
            os.close(self._handle)
            self._handle = -1


def _open_child(parent: int, name: str) -> int:
    """Open (creating it 0700 if missing) the directory `name` under the descriptor `parent`,
    refusing a link; closes `parent`."""
    try:
        try:
            return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=parent)
            return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    finally:
        os.close(parent)


def write_private(path: Path, text: str) -> None:
    """A file only the user can read (session exports hold file contents and command output),
    0600 from its creation; an existing file keeps its own mode."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(text)
