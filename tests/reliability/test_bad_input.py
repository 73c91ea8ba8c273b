"""Bad input, table-driven: everything a user can get wrong ends in one readable line on stderr,
the right exit code and no traceback; file-tool mistakes go back to the model as clear errors.
docs/RELIABILITY.md lists the cases."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.sandbox import find_bwrap
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import SessionInfo
from tests.conftest import server_args, spawn_qac


@dataclass
class Env:
    repo: Path
    tmp: Path
    home: Path
    urls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    phrase: str
    setup: Callable[[Env], None] | None = None
    env: tuple[tuple[str, str], ...] = ()


def write(relative: str, text: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = Path(relative.format(repo=env.repo, tmp=env.tmp, home=env.home))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return setup


def stored_session(env: Env) -> None:
    store = SessionStore(env.home / "sessions.db")
    store.create(
        SessionInfo(
            id="s-1",
            repository="r",
            workdir=str(env.repo),
            provider="vllm",
            model="m",
            system_prompt="s",
            context="c",
        )
    )
    store.close()


def newer_store(env: Env) -> None:
    env.home.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(env.home / "sessions.db")) as db, db:
        db.execute("PRAGMA user_version = 99")


def dirty(env: Env) -> None:
    (env.repo / "calc.py").write_text("changed\n")


VLLM = ("--provider", "vllm")
CASES: dict[str, Case] = {
    "unknown flag": Case(("run", "x", "--bogus"), 2, "No such option"),
    "unknown sessions command": Case(("sessions", "bogus"), 2, "No such command"),
    "REPL without a terminal": Case(("fix it",), 2, "the REPL needs a terminal"),
    "bad --sandbox": Case(("run", "x", "--sandbox", "maybe"), 2, "sandbox must be one of"),
    "bad --approval": Case(("run", "x", "--approval", "often"), 2, "approval must be one of"),
    "bad --output-format": Case(("run", "x", "--output-format", "xml"), 2, "output_format"),
    "non-number --max-turns": Case(("run", "x", "--max-turns", "many"), 2, "Invalid value"),
    "zero --max-turns": Case(("run", "x", "--max-turns", "0"), 2, "max_turns must be at least"),
    "negative --max-cost": Case(("run", "x", "--max-cost", "-1"), 2, "max_cost must be a number"),
    "zero --timeout": Case(("run", "x", "--timeout", "0"), 2, "timeout must be a number greater"),
    "nan --timeout": Case(("run", "x", "--timeout", "nan"), 2, "timeout must be a number greater"),
    "nan --max-cost": Case(("run", "x", "--max-cost", "nan"), 2, "max_cost must be a number"),
    "port out of range": Case(
        ("run", "x", *VLLM, "--base-url", "http://127.0.0.1:70000/v1"), 2, "Port out of range"
    ),
    "base_url without a host": Case(("run", "x", "--base-url", "http://:80/v1"), 2, "has no host"),
    "--compact-at above 1": Case(("run", "x", "--compact-at", "1.5"), 2, "compact_at must be"),
    "negative --map-tokens": Case(("run", "x", "--map-tokens", "-5"), 2, "map_tokens must be"),
    "malformed user config": Case(
        ("run", "x"), 2, "is not valid TOML", write("{home}/config.toml", "max_turns = = 3")
    ),
    "malformed project config": Case(
        ("run", "x", "-C", "{repo}"),
        2,
        "is not valid TOML",
        write("{repo}/.qac/config.toml", "[sandbox\n"),
    ),
    "unknown config key": Case(
        ("run", "x"),
        2,
        "colour is not a known setting",
        write("{home}/config.toml", "colour = 'blue'\n"),
    ),
    "wrong config type": Case(
        ("run", "x"),
        2,
        "max_turns must be an integer",
        write("{home}/config.toml", "max_turns = 'ten'\n"),
    ),
    "bad QAC_ variable": Case(
        ("run", "x"), 2, "QAC_MAX_TURNS has a bad value", env=(("QAC_MAX_TURNS", "ten"),)
    ),
    "unknown provider": Case(("run", "x", "--provider", "nowhere"), 2, "unknown provider"),
    "unknown provider in config": Case(
        ("run", "x"),
        2,
        "unknown provider 'nope'",
        write("{home}/config.toml", "provider = 'nope'\n"),
    ),
    "profile without base_url": Case(
        ("run", "x", "--provider", "mine"),
        2,
        "needs a string",
        write("{home}/config.toml", "[providers.mine]\nmodel='m'\n"),
    ),
    "missing API key": Case(
        ("run", "x", "--provider", "dashscope", "-C", "{repo}"), 2, "DASHSCOPE_API_KEY is not set"
    ),
    "unset --api-key-env": Case(
        ("run", "x", "--provider", "openai", "--api-key-env", "NO_VAR", "-C", "{repo}"),
        2,
        "NO_VAR is not set",
    ),
    "unreachable endpoint": Case(
        ("run", "x", *VLLM, "--base-url", "http://127.0.0.1:9/v1", "-C", "{repo}"),
        3,
        "cannot connect",
    ),
    "endpoint that is not HTTP": Case(
        ("run", "x", *VLLM, "--base-url", "{garbage}", "-C", "{repo}"), 3, "model API failed"
    ),
    "endpoint that is not an OpenAI API": Case(
        ("run", "x", *VLLM, "--base-url", "{html}", "-C", "{repo}"), 3, "model API failed"
    ),
    "401 from the server": Case(
        ("run", "x", *VLLM, "--base-url", "{unauthorized}", "-C", "{repo}"), 3, "HTTP 401"
    ),
    "unknown --resume id": Case(
        ("run", "x", *VLLM, "--resume", "nope", "-C", "{repo}"), 2, "no session 'nope'"
    ),
    "--resume with --continue": Case(("run", "x", "--resume", "a", "--continue"), 2, "either"),
    "--continue with no session": Case(
        ("run", "x", *VLLM, "--continue", "-C", "{repo}"), 2, "no earlier session"
    ),
    "-C to a missing directory": Case(("run", "x", "-C", "{tmp}/missing"), 2, "no such directory"),
    "-C to a file": Case(("run", "x", "-C", "{repo}/calc.py"), 2, "not a directory"),
    "empty prompt": Case(("run", "  "), 2, "the prompt is empty"),
    "ci outside a git repository": Case(
        ("ci", "--test-cmd", "true", *VLLM, "-C", "{tmp}"), 2, "needs a git repository"
    ),
    "ci on a dirty tree": Case(
        ("ci", "--test-cmd", "true", *VLLM, "-C", "{repo}"), 2, "uncommitted changes", dirty
    ),
    "ci --issue file missing": Case(
        ("ci", "--test-cmd", "true", "--issue", "{tmp}/none.md"), 2, "cannot read the issue file"
    ),
    "ci --issue with --prompt": Case(
        ("ci", "--test-cmd", "t", "--issue", "a", "--prompt", "b"), 2, "either --issue"
    ),
    "import a file that is not JSON Lines": Case(
        ("sessions", "import", "{tmp}/x.jsonl"),
        2,
        "not a qac session record",
        write("{tmp}/x.jsonl", "hello\nworld\n"),
    ),
    "import a truncated export": Case(
        ("sessions", "import", "{tmp}/t.jsonl"),
        2,
        "line 2",
        write(
            "{tmp}/t.jsonl",
            '{"type": "session", "format": '
            '"qac-session", "version": 1, "session": {"id": "x",'
            ' "repository": "r", "workdir": "w", "provider": '
            '"p", "model": "m", "system_prompt": "s", "context":'
            ' "c"}}\n{"type": "message", "seq": 0, "cre',
        ),
    ),
    "import a missing file": Case(("sessions", "import", "{tmp}/none.jsonl"), 2, "cannot read"),
    "show an unknown session": Case(("sessions", "show", "zzz"), 2, "no session 'zzz'"),
    "remove an unknown session": Case(("sessions", "rm", "zzz"), 2, "no session 'zzz'"),
    "export to an unwritable path": Case(
        ("sessions", "export", "s-1", "-o", "/proc/qac/x"), 2, "cannot write", stored_session
    ),
    "store that is not SQLite": Case(
        ("sessions", "list", "--store", "{tmp}/bad.db"),
        2,
        "cannot open the session store",
        write("{tmp}/bad.db", "not a database " * 200),
    ),
    "store from a newer qac": Case(("sessions", "list"), 2, "written by a newer qac", newer_store),
    "store in an impossible place": Case(
        ("sessions", "list", "--store", "/proc/qac/s.db"), 2, "cannot create the session store"
    ),
    "config init over an existing file": Case(
        ("config", "init"), 2, "already exists", write("{home}/config.toml", "")
    ),
}


class _Garbage(threading.Thread):
    """A TCP server that answers every connection with bytes that are not HTTP."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            connection.sendall(b"\x00\x01 this is not http \xff\r\n\r\n")
            connection.close()


class _Html(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    garbage = _Garbage()
    garbage.start()
    html = ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=html.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    unauthorized = ScriptedServer([turn(fault={"status": 401, "message": "bad key"})] * 50)
    unauthorized.start()
    yield {
        "garbage": f"http://127.0.0.1:{garbage.sock.getsockname()[1]}/v1",
        "html": f"http://127.0.0.1:{html.server_address[1]}/v1",
        "unauthorized": unauthorized.url,
    }
    garbage.stopped.set()
    garbage.join()
    garbage.sock.close()
    html.shutdown()
    html.server_close()
    unauthorized.stop()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAC_RETRIES", "1")
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.01")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(
    qac,
    repo: Path,
    tmp_path: Path,
    clean_environ: Path,
    endpoints: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
):
    case = CASES[name]
    env = Env(repo, tmp_path, clean_environ, endpoints)
    if case.setup:
        case.setup(env)
    for key, value in case.env:
        monkeypatch.setenv(key, value)
    args = [a.format(repo=repo, tmp=tmp_path, home=clean_environ, **endpoints) for a in case.args]
    out = qac(*args)
    assert out.code == case.code, out.stderr
    assert out.stderr.startswith("qac: ")
    assert out.stderr.count("\n") == 1, out.stderr
    assert case.phrase in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def bwrap_run(
    args: list[str], setup: str, tmp_path: Path, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    """Run `qac` inside bubblewrap with a read-only or a tiny filesystem for its store."""
    bwrap = find_bwrap()
    assert bwrap is not None
    command = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--bind",
        "/tmp",
        "/tmp",
        *extra,
        "--",
        "/bin/sh",
        "-c",
        f'{setup} exec "$0" -m qwen_agent_cli "$@"',
        sys.executable,
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ)
    )


def test_read_only_store(tmp_path: Path, clean_environ: Path):
    store = SessionStore(clean_environ / "sessions.db")
    store.close()
    done = bwrap_run(
        ["run", "x", "--provider", "vllm", "-C", str(tmp_path)],
        "",
        tmp_path,
        ["--ro-bind", str(clean_environ), str(clean_environ)],
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("qac: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "session store" in done.stderr
    assert "Traceback" not in done.stderr


def test_full_disk(tmp_path: Path):
    full = "/tmp/qac-full-disk"
    done = bwrap_run(
        ["run", "x", "--provider", "vllm", "-C", str(tmp_path), "--store", f"{full}/s.db"],
        f"head -c 200000 /dev/zero > {full}/filler 2>/dev/null;",
        tmp_path,
        ["--size", "204800", "--tmpfs", full],
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("qac: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "session store" in done.stderr
    assert "Traceback" not in done.stderr


TOOL_CASES = {
    "read a binary file": (("read_file", {"path": "blob.bin"}), "is a binary file"),
    "read a 50 MB file": (("read_file", {"path": "huge.txt"}), "read on with offset=2001"),
    "edit a 50 MB file": (
        ("edit_file", {"path": "huge.txt", "old": "a", "new": "b"}),
        "too large to edit",
    ),
    "edit a non-UTF-8 file": (
        ("edit_file", {"path": "latin.txt", "old": "caf", "new": "x"}),
        "not UTF-8 text",
    ),
    "read a non-UTF-8 file": (("read_file", {"path": "latin.txt"}), "not valid UTF-8"),
    "edit a binary file": (
        ("edit_file", {"path": "blob.bin", "old": "a", "new": "b"}),
        "is a binary file",
    ),
}


def test_file_tool_mistakes_go_back_to_the_model(qac, model_server: ScriptedServer, repo: Path):
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (repo / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with (repo / "huge.txt").open("w") as handle:
        line = "x" * 99 + "\n"
        for _ in range(500_000):
            handle.write(line)
    model_server.script(*(turn(tool_call=c) for c, _ in TOOL_CASES.values()), turn(text="ok"))
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert out.code == 0, out.stderr
    results = [e for e in out.lines() if e["type"] == "tool_result"]
    for (name, (_, phrase)), result in zip(TOOL_CASES.items(), results, strict=True):
        assert phrase in str(result["output"]), name
        assert len(str(result["output"])) < 25_000, name


def spawn_run(server: ScriptedServer, repo: Path) -> subprocess.Popen[str]:
    return spawn_qac(
        "run", "x", *server_args(server), "-C", str(repo), "--output-format", "stream-json"
    )


@pytest.mark.parametrize(
    ("stage", "script", "wait_for"),
    [
        ("waiting for the model", [turn(text="late", delay=5)], "session"),
        ("streaming", [turn(thinking="slow " * 50, pieces=50, chunk_delay=0.1)], "thinking"),
        ("running a tool", [turn(tool_call=("shell", {"command": "sleep 30"}))], "tool_call"),
    ],
)
def test_ctrl_c_at_each_stage(repo: Path, stage: str, script: list[dict[str, Any]], wait_for: str):
    with ScriptedServer(script, check_prefix=False) as server:
        proc = spawn_run(server, repo)
        assert proc.stdout is not None
        assert proc.stderr is not None
        while json.loads(proc.stdout.readline())["type"] != wait_for:
            pass
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        rest, errors = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        code = proc.wait(timeout=15)
        server.turns.clear()
        server.played = 0
    assert code == 130, (stage, errors)
    assert errors.startswith("qac: interrupted"), errors
    assert errors.count("\n") == 1, errors
    assert json.loads(rest.splitlines()[-1])["status"] == "interrupted"
