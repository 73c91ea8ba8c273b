"""The one rule for host-side file access on the repository's behalf (DESIGN §11): which paths
are secrets (one list serves the sandbox mounts and the file tools), and reading a repository
file only when, links resolved, it is a regular file inside the workspace, size-capped.

Imports nothing from qac but `errors`; the sandbox, the context, the map and the REPL use it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from qwen_agent_cli.errors import ToolError

SECRET_DIRS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".azure",
    ".password-store",
    ".terraform.d",
    ".local/share/keyrings",
)
"""Directories under a home that hold keys, tokens or credentials."""
SECRET_FILES = (
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pypirc",
    ".boto",
    ".s3cfg",
    ".my.cnf",
    ".vault-token",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".m2/settings.xml",
    ".m2/settings-security.xml",
    ".gradle/gradle.properties",
    ".composer/auth.json",
    ".pub-cache/credentials.json",
    ".nuget/NuGet/NuGet.Config",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".node_repl_history",
)
"""Files under a home (or a toolchain folder in it) that hold credentials or typed secrets."""
PROTECTED_DIRS = (".git", ".qac")
"""Workspace folders the model may read but never write: git's state and qac's project config."""


def homes(env: Mapping[str, str]) -> list[Path]:
    """Every home a secret may sit in: `$HOME` and the account's home from passwd (they differ
    under sudo, in containers and when HOME is overridden)."""
    found = []
    if env.get("HOME"):
        found.append(Path(env["HOME"]).expanduser())
    with contextlib.suppress(KeyError, OSError):
        found.append(Path(pwd.getpwuid(os.getuid()).pw_dir))
    return list(dict.fromkeys(real_path(p) for p in found if str(p) not in ("", "/")))


def secret_paths(home_dirs: Iterable[Path]) -> list[Path]:
    """The secret directories and files of each home, whether or not they exist now (a refused
    path must stay refused when the model tries to create it)."""
    return [home / name for home in home_dirs for name in (*SECRET_DIRS, *SECRET_FILES)]


def real_path(path: Path) -> Path:
    """`path` with its links resolved, or as it is when that fails (a loop, a permission)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, links resolved, lies in `root` (itself included)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def covered(path: Path, by: Sequence[Path]) -> Path | None:
    """The first of `by` that is `path` or one of its parents."""
    return next((p for p in by if path == p or path.is_relative_to(p)), None)


def read_capped(root: Path, name: str | Path, limit: int) -> bytes:
    """Read at most `limit` + 1 bytes of a repository file, so callers can tell it was longer.

    Refused with a ToolError: a path that leaves `root` once links are resolved, anything that
    is not a regular file (a FIFO would hang, /dev/zero never ends), an unreadable file."""
    resolved = real_path(root / name)
    if not resolved.is_relative_to(real_path(root)):
        raise ToolError(f"{name}: refused, it leads outside the workspace")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        handle = os.open(resolved, flags)
    except OSError as exc:
        raise ToolError(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise ToolError(f"{name}: refused, not a regular file")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(handle, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(handle)
