"""SIGTERM and SIGHUP (CI runners, `timeout`, `docker stop`, a closed terminal) stop qac the way
Ctrl-C does: the result is printed, one stderr line, exit 128 + the signal; and a tool command
never outlives qac, even with `--sandbox off` and qac killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args, spawn_qac

PATIENCE = 60.0


def running(marker: str) -> bool:
    """A live process (not a zombie) whose command line holds marker; found through /proc, as
    a sandboxed command's own pid is one of its namespace."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def wait_until(check: Callable[[], object], what: str) -> None:
    """Poll for an event (a file, a process gone); the bound only turns a hang into a failure."""
    give_up = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.02)


def start_tool_run(
    server: ScriptedServer, repo: Path, marker: str, *extra: str
) -> subprocess.Popen[str]:
    proc = spawn_qac(
        "run", "x", *server_args(server), "-C", str(repo), "--output-format", "stream-json", *extra
    )
    assert proc.stdout is not None
    while json.loads(proc.stdout.readline())["type"] != "tool_call":
        pass
    wait_until(lambda: running(marker), "the tool command to start")
    return proc


def unique_sleep() -> str:
    """`sleep` for longer than any test, with a duration no other process has."""
    return f"{300 + time.monotonic_ns() % 1_000_000 / 1_000_000:.6f}"


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGHUP, 129, "hung up (SIGHUP)")],
)
@pytest.mark.parametrize("sandbox", ["workspace-write", "off"])
def test_sigterm_and_sighup_end_the_run_with_a_result(
    repo: Path, signum: int, code: int, words: str, sandbox: str
):
    marker = unique_sleep()
    command = f"sleep {marker}; echo never"
    script = [turn(tool_call=("shell", {"command": command})), turn(text="unused")]
    with ScriptedServer(script, check_prefix=False) as server:
        proc = start_tool_run(server, repo, marker, "--sandbox", sandbox)
        proc.send_signal(signum)
        rest, errors = proc.communicate(timeout=PATIENCE)
        server.turns.clear()
        server.played = 0
    assert proc.returncode == code, errors
    last = errors.splitlines()[-1]
    assert last.startswith(f"qac: {words} (status interrupted); continue with `qac run"), errors
    assert errors.count("\n") == (2 if sandbox == "off" else 1), errors
    result = json.loads(rest.splitlines()[-1])
    assert result["type"] == "result"
    assert result["status"] == "interrupted"
    wait_until(lambda: not running(marker), "the tool's processes to end")


def test_a_killed_qac_leaves_no_tool_command_running_with_the_sandbox_off(repo: Path):
    marker = unique_sleep()
    script = [turn(tool_call=("shell", {"command": f"exec sleep {marker}"}))]
    with ScriptedServer([*script, turn(text="unused")], check_prefix=False) as server:
        proc = start_tool_run(server, repo, marker, "--sandbox", "off")
        proc.kill()
        proc.communicate(timeout=PATIENCE)
        server.turns.clear()
        server.played = 0
    wait_until(lambda: not running(marker), "the orphaned tool command to be killed")


def test_an_ignored_sighup_stays_ignored(repo: Path):
    """`nohup qac run ...`: the user asked for the run to survive a closed terminal."""
    marker = unique_sleep()
    command = f"while [ ! -e go ]; do sleep 0.05; done; : {marker}"
    script = [turn(tool_call=("shell", {"command": command})), turn(text="done")]
    with ScriptedServer(script, check_prefix=False) as server:
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            proc = start_tool_run(server, repo, marker)
        finally:
            signal.signal(signal.SIGHUP, previous)
        proc.send_signal(signal.SIGHUP)
        (repo / "go").touch()
        rest, errors = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0, errors
    assert json.loads(rest.splitlines()[-1])["status"] == "done"


def test_a_signal_while_a_process_starts_waits_until_the_process_is_owned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held while Popen runs (else the child would have no owner to kill it), then raised."""
    import os

    from qwen_agent_cli import signals

    monkeypatch.setattr(signals, "received", None)
    previous = signal.signal(signal.SIGTERM, signals._raise)
    try:
        signals.hold()
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: signals.received == signal.SIGTERM, "the handler to run")
        with pytest.raises(signals.Interrupted) as raised:
            signals.release()
        assert raised.value.signum == signal.SIGTERM
        signals.release()  # nothing held any more: nothing raised
    finally:
        signal.signal(signal.SIGTERM, previous)
