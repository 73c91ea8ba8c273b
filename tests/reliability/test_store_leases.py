"""One writer per session: a second qac on a session in use is refused with one line and exit 2,
and a lease whose holder is gone (exited, killed, a zombie, a reused pid, a silent other host)
is taken over. Real processes and a real SQLite file throughout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.lease import STALE_AFTER_S
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message, SessionInfo
from tests.conftest import run_process, server_args, spawn_qac

SLOW = turn(thinking="still thinking " * 300, pieces=300, chunk_delay=0.1)
"""A response that takes 30 seconds: the first qac is mid-stream while the second tries."""

HOLDER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from qwen_agent_cli.store import SessionStore
    store = SessionStore(Path(sys.argv[1]))
    store.acquire(sys.argv[2])
    print("held", flush=True)
    if sys.argv[3] == "exit":
        os._exit(0)  # gone without giving the lease back
    sys.stdin.read()
    store.close()
    """
)


def in_use(session_id: str, pid: int) -> str:
    return (
        f"qac: session {session_id} is in use by another qac (pid {pid} on "
        f"{socket.gethostname()}); wait for it to finish or start a new session\n"
    )


def start_first(server: ScriptedServer, repo: Path) -> tuple[subprocess.Popen[str], str]:
    """A qac mid-response on a new session; returns it once it is streaming."""
    proc = spawn_qac(
        "run", "first", *server_args(server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert proc.stdout is not None
    session_id = str(json.loads(proc.stdout.readline())["session_id"])
    while json.loads(proc.stdout.readline())["type"] != "thinking":
        pass
    return proc, session_id


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=30)
    return out, err


@pytest.fixture
def store(clean_environ: Path) -> Iterator[SessionStore]:
    opened = SessionStore(clean_environ / "sessions.db")
    yield opened
    opened.close()


def new_session(store: SessionStore, session_id: str = "s-1") -> str:
    info = SessionInfo(
        id=session_id,
        repository="r",
        workdir="/w",
        provider="vllm",
        model="m",
        system_prompt="s",
        context="c",
    )
    return store.create(info).id


@contextlib.contextmanager
def holder(store: SessionStore, session_id: str, how: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that takes the session's lease; "hold" keeps it until stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.path), session_id, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def lease_rows(store: SessionStore) -> list[tuple[str, int]]:
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        return [(str(s), int(p)) for s, p in db.execute("SELECT session_id, pid FROM leases")]


def plant_lease(store: SessionStore, session_id: str, **columns: object) -> None:
    row: dict[str, object] = {
        "session_id": session_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": "",
        "acquired_at": time.time(),
        "heartbeat_at": time.time(),
        **columns,
    }
    with contextlib.closing(sqlite3.connect(store.path)) as db, db:
        db.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?)", tuple(row.values()))


def test_a_second_qac_on_a_session_in_use_is_refused_and_the_first_keeps_it_intact(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(SLOW)
    first, session_id = start_first(model_server, repo)
    try:
        resumed = run_process(
            "run", "second", "--resume", session_id, *server_args(model_server), "-C", str(repo)
        )
        continued = run_process(
            "run", "second", "--continue", *server_args(model_server), "-C", str(repo)
        )
        removed = run_process("sessions", "rm", session_id)
    finally:
        first.send_signal(signal.SIGINT)
        _, errors = finish(first)
    assert (resumed.code, resumed.stdout, resumed.stderr) == (2, "", in_use(session_id, first.pid))
    assert (continued.code, continued.stderr) == (2, in_use(session_id, first.pid))
    assert (removed.code, removed.stderr) == (2, in_use(session_id, first.pid))
    assert first.returncode == 130, errors
    assert len(model_server.requests) == 1

    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    try:
        messages = store.messages(session_id)
    finally:
        store.close()
    assert [(m.role, m.content) for m in messages] == [("user", "first"), ("assistant", None)]
    assert messages[1].interrupted

    # Ctrl-C gave the lease back: the session continues, extending what was sent before.
    model_server.script(turn(text="carried on"))
    again = run_process(
        "run", "third", "--resume", session_id, *server_args(model_server), "-C", str(repo)
    )
    assert (again.code, again.stdout) == (0, "carried on\n"), again.stderr


def test_a_lease_left_by_a_killed_qac_is_taken_over(model_server: ScriptedServer, repo: Path):
    model_server.script(SLOW)
    first, session_id = start_first(model_server, repo)
    first.kill()
    finish(first)

    model_server.script(turn(text="taken over"))
    again = run_process(
        "run", "go on", "--resume", session_id, *server_args(model_server), "-C", str(repo)
    )
    assert (again.code, again.stdout) == (0, "taken over\n"), again.stderr


def test_a_live_holder_keeps_its_session_until_it_lets_go(store: SessionStore):
    session_id = new_session(store)
    with holder(store, session_id, "hold") as other:
        message = in_use(session_id, other.pid).removeprefix("qac: ").rstrip("\n")
        with pytest.raises(StoreError) as refused:
            store.acquire(session_id)
        assert str(refused.value) == message
        with pytest.raises(StoreError, match="in use by another qac"):
            store.append_message(session_id, Message(role="user", content="interleaved"))
        with pytest.raises(StoreError, match="in use by another qac"):
            store.remove(session_id)
        assert other.stdin is not None
        other.stdin.close()
        assert other.wait(timeout=30) == 0
    assert lease_rows(store) == []
    store.acquire(session_id)
    store.append_message(session_id, Message(role="user", content="mine now"))
    assert [m.content for m in store.messages(session_id)] == ["mine now"]


@pytest.mark.parametrize("gone", ["exited", "killed", "zombie"])
def test_a_lease_whose_holder_is_gone_is_taken_over(store: SessionStore, gone: str):
    session_id = new_session(store)
    with holder(store, session_id, "hold" if gone == "killed" else "exit") as other:
        if gone == "killed":
            other.send_signal(signal.SIGKILL)
        # Wait for the exit without reaping it: until then it is a zombie holding the pid.
        os.waitid(os.P_PID, other.pid, os.WEXITED | os.WNOWAIT)
        if gone != "zombie":
            other.wait(timeout=30)
        assert lease_rows(store) == [(session_id, other.pid)]
        store.acquire(session_id)
    assert lease_rows(store) == [(session_id, os.getpid())]


def test_a_reused_pid_is_not_mistaken_for_the_holder(store: SessionStore):
    session_id = new_session(store)
    with holder(store, session_id, "hold") as other:
        # The lease names a live pid, but a process that started at another time.
        plant_lease(store, session_id, pid=other.pid, started="1")
        store.acquire(session_id)
    assert lease_rows(store) == [(session_id, os.getpid())]


def test_a_lease_from_another_host_lapses_only_without_a_heartbeat(store: SessionStore):
    session_id = new_session(store)
    plant_lease(store, session_id, pid=1, host="elsewhere.example")
    with pytest.raises(StoreError, match=r"in use by another qac \(pid 1 on elsewhere.example\)"):
        store.acquire(session_id)
    plant_lease(
        store,
        session_id,
        pid=1,
        host="elsewhere.example",
        heartbeat_at=time.time() - STALE_AFTER_S - 1,
    )
    store.acquire(session_id)
    assert lease_rows(store) == [(session_id, os.getpid())]


def test_writing_refreshes_the_heartbeat_and_one_store_holds_one_lease(store: SessionStore):
    first, second = new_session(store, "s-1"), new_session(store, "s-2")
    store.acquire(first)
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        db.execute("UPDATE leases SET heartbeat_at = 0")
        db.commit()
        store.append_message(first, Message(role="user", content="hi"))
        assert db.execute("SELECT heartbeat_at FROM leases").fetchone()[0] > 0
    store.acquire(second)
    assert lease_rows(store) == [(second, os.getpid())]
    store.close()
    assert lease_rows(store) == []
