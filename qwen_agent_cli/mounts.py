"""The bubblewrap mount layout (DESIGN §6, §11): which host directories a sandboxed command
sees, and what is covered inside them (secrets, qac's own files, host unix sockets).

Pure planning: builds argument lists, runs nothing. Imports only `guard` (and its errors).
"""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.guard import PROTECTED_DIRS, SECRET_DIRS, covered, read_capped, real_path

SYSTEM_DIRS: tuple[str, ...] = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
SYSTEM_DIRS += ("opt", "sys", "nix", "gnu", "snap")
SANDBOX_HOME = "/tmp/home"


@functools.cache
def system_mounts(scratch_bytes: int = 0) -> tuple[str, ...]:
    """The base of every sandbox: system directories read-only (symlinked ones, as on merged-/usr
    systems, recreated as links), fresh /dev and /proc, a private /tmp, /var/tmp and /dev/shm
    (each at most `scratch_bytes` when that is set), and an empty /run. Nothing else of the host
    (/home, /root, /run, /var/lib, /srv, /mnt) is there at all."""
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    size = ["--size", str(scratch_bytes)] if scratch_bytes else []
    args += ["--dev", "/dev", *size, "--tmpfs", "/dev/shm", "--proc", "/proc"]
    args += [*size, "--tmpfs", "/tmp", "--dir", SANDBOX_HOME, "--dir", "/var"]
    args += [*size, "--tmpfs", "/var/tmp", "--dir", "/run", "--symlink", "../run", "/var/run"]
    return tuple(args)


@functools.cache
def system_roots() -> tuple[Path, ...]:
    """The host directories `system_mounts` makes visible, links resolved."""
    roots = [(Path("/") / name).resolve() for name in SYSTEM_DIRS]
    return tuple(dict.fromkeys(r for r in roots if r.is_dir()))


def host_unix_sockets(table: Path = Path("/proc/net/unix")) -> list[Path]:
    """Paths of the unix sockets bound in this network namespace (the host's, seen from qac).
    A read-only mount does not stop connect(), so each visible one is covered."""
    try:
        lines = table.read_text("utf-8", "surrogateescape").splitlines()[1:]
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[7].startswith("/"):
            found.append(Path(fields[7]))
    return found


TOOLCHAIN_HOMES = (
    ("RUSTUP_HOME", ".rustup"),
    ("CARGO_HOME", ".cargo"),
    ("NVM_DIR", ".nvm"),
    ("PYENV_ROOT", ".pyenv"),
    ("ASDF_DATA_DIR", ".asdf"),
    ("MISE_DATA_DIR", ".local/share/mise"),
    ("VOLTA_HOME", ".volta"),
    ("SDKMAN_DIR", ".sdkman"),
    ("BUN_INSTALL", ".bun"),
    ("GOPATH", "go"),
)
"""Version managers and toolchains that live under a home, by the variable that names their
folder. The sandbox's HOME is a throwaway one, so each is bound back read-only (credential files
in them stay covered) and its variable points at it: `cargo` from rustup, nvm's `node`, pyenv's
shims and Go's module cache work as in the user's shell."""


def toolchain_env(env: Mapping[str, str]) -> dict[str, str]:
    """Each toolchain folder that exists: the user's own setting of its variable, else the
    usual folder under HOME."""
    home = env.get("HOME", "")
    found: dict[str, str] = {}
    for name, default in TOOLCHAIN_HOMES:
        value = env.get(name) or (str(Path(home) / default) if home else "")
        if value and Path(value).is_absolute() and Path(value).is_dir():
            found[name] = value
    return found


GIT_POINTER_LIMIT = 4096
"""Bytes of a `.git` file or a worktree's `gitdir`/`commondir` read: git's own are one line."""


def _small_text(root: Path, name: str) -> str | None:
    """A short regular file's text (no link followed out of `root`, no FIFO), or None."""
    try:
        data = read_capped(root, name, GIT_POINTER_LIMIT)
    except ToolError:
        return None
    if len(data) > GIT_POINTER_LIMIT:
        return None
    return data.decode("utf-8", "replace").strip()


def linked_git_dir(checkout: Path) -> Path | None:
    """The common git directory of a linked worktree (`git worktree add`), whose `.git` is a
    file naming a folder outside it. Only when that folder names this checkout's `.git` back,
    as git writes it: a `.git` file alone is repository content, and must not show the sandbox
    another folder of the host."""
    pointer = _small_text(checkout, ".git")
    if pointer is None or not pointer.startswith("gitdir:"):
        return None
    here = real_path(checkout)
    private = real_path(checkout / pointer.removeprefix("gitdir:").strip())
    back, common = _small_text(private, "gitdir"), _small_text(private, "commondir")
    if back is None or common is None or private.is_relative_to(here):
        return None  # git's own worktree files never lie inside the worktree
    if real_path(private / back) != here / ".git":
        return None
    common_dir = real_path(private / common)
    if private.parent != common_dir / "worktrees" or here.is_relative_to(common_dir):
        return None
    if not all((common_dir / name).is_dir() for name in ("objects", "refs")):
        return None
    return common_dir


class MountPlan:
    """The mounts of one sandboxed command beyond the system base, ordered parents first so a
    mask inside a bind is mounted after it, and read-only remounts last."""

    def __init__(self, workspace: Path, homes: Sequence[Path]) -> None:
        self.workspace = workspace
        self.homes = homes
        self.mounts: list[tuple[Path, list[str]]] = []
        self.visible: list[Path] = [*system_roots()]
        self.read_only: list[Path] = []

    def _bind(self, path: Path, how: str = "--ro-bind") -> None:
        self.mounts.append((path, [how, str(path), str(path)]))
        self.visible.append(path)

    def add_toolchains(self, path_var: str) -> None:
        """PATH entries and qac's own interpreter, wherever they are, read-only."""
        for root in _toolchain_paths(path_var, self.homes):
            if not covered(root, [*self.visible, self.workspace]):
                self._bind(root)

    def add_toolchain_homes(self, env: Mapping[str, str]) -> None:
        """The folders `toolchain_env` named in the command's environment, read-only."""
        for name, _ in TOOLCHAIN_HOMES:
            value = env.get(name)
            if not value:
                continue
            folder = real_path(Path(value))
            if folder.is_dir() and not covered(folder, [*self.visible, self.workspace]):
                self._bind(folder)

    def add_workspace(self, *, writable: bool) -> None:
        workspace = self.workspace
        # A workspace inside a repository sees the rest of it read-only (git, imports work).
        repository = next((d for d in workspace.parents if (d / ".git").exists()), None)
        if repository is not None and not covered(repository, self.visible):
            self._bind(repository)
        parent = workspace.parent
        if repository is None and parent != Path("/tmp") and parent.is_relative_to("/tmp"):
            # Under the private /tmp the parent would be writable scratch: `../x` must fail
            # loudly there too, as it does against the read-only root everywhere else.
            self.mounts.append((parent, ["--tmpfs", str(parent)]))
            self.read_only.append(parent)
        self._bind(workspace, "--bind" if writable else "--ro-bind")
        linked = linked_git_dir(repository or workspace)
        if linked is not None and not covered(linked, [*self.visible]):
            # A linked worktree's history lives in its main repository's .git: read-only, as
            # the workspace's own .git is, so `git log` and `git diff` work there too.
            self._bind(linked)
        for name in PROTECTED_DIRS:
            inner = workspace / name
            if inner.is_symlink():
                # A committed `.qac -> somewhere/in/the/tree`: what it names is protected.
                inner = real_path(inner)
                if not inner.is_relative_to(workspace) or inner == workspace:
                    continue
            if inner.exists():
                self._bind(inner)

    def mask(self, paths: Sequence[Path]) -> None:
        """Cover each existing path that would be visible: a folder with an empty read-only
        tmpfs, a file with /dev/null. The workspace itself (or a folder holding it) is kept."""
        for path in dict.fromkeys(real_path(p) for p in paths):
            if self.workspace.is_relative_to(path) or not path.exists():
                continue
            if not self.shows(path):
                continue
            if path.is_dir():
                self.mounts.append((path, ["--tmpfs", str(path)]))
                self.read_only.append(path)
            else:
                self.mounts.append((path, ["--ro-bind", "/dev/null", str(path)]))

    def mask_sockets(self, sockets: Sequence[Path]) -> None:
        for path in sockets:
            if self.shows(path) and _is_socket(path):
                self.mounts.append((path, ["--ro-bind", "/dev/null", str(path)]))

    def shows(self, path: Path) -> bool:
        """Whether the sandbox sees `path`: the deepest mount holding it is a bind, not an
        empty tmpfs."""
        binds = [p for p in self.visible if path.is_relative_to(p)]
        empties = [p for p in self.read_only if path.is_relative_to(p)]
        if not binds:
            return False
        return not empties or max(len(p.parts) for p in binds) > max(len(p.parts) for p in empties)

    def add_resolver(self) -> None:
        """With the network on, /etc/resolv.conf often links into /run: bind what it names."""
        target = real_path(Path("/etc/resolv.conf"))
        if target.is_file() and not covered(target, self.visible):
            self._bind(target)

    def args(self) -> list[str]:
        args: list[str] = []
        for _, mount in sorted(self.mounts, key=lambda m: len(m[0].parts)):
            args += mount
        for path in dict.fromkeys(self.read_only):
            args += ["--remount-ro", str(path)]
        return [*args, "--remount-ro", "/"]


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False


def _toolchain_paths(path_var: str, homes: Sequence[Path]) -> list[Path]:
    """What to bind so the user's programs run: for each PATH entry and the interpreter running
    qac, a version manager's whole dot-folder under a home (~/.pyenv, ~/.cargo), ~/.local's
    program folders, or an install prefix (a venv: bin/ and lib/). Never a secret folder."""
    wanted: list[Path] = []
    candidates = [Path(p) for p in path_var.split(os.pathsep) if p]
    candidates += [Path(sys.prefix), Path(sys.base_prefix)]
    for entry in candidates:
        resolved = real_path(entry)
        if not resolved.is_absolute() or not resolved.is_dir():
            continue
        home = covered(resolved, homes)
        if home is not None and resolved != home:
            top = home / resolved.relative_to(home).parts[0]
            if top.name in SECRET_DIRS:
                continue
            if top.name == ".local":
                keep = [top / "bin", top / "lib", top / "share" / "pipx"]
            elif top.name.startswith("."):
                keep = [top]
            else:
                prefix = resolved.parent if resolved.name == "bin" else resolved
                keep = [resolved if prefix == home else prefix]
        elif home is None:
            keep = [resolved.parent if resolved.name == "bin" else resolved]
        else:
            continue
        wanted += [k for k in keep if k.is_dir() and k not in wanted]
    return wanted
