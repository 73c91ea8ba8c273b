"""Each attack is a scripted model turn run through the real bubblewrap sandbox; each must fail
with a clear tool error (or show nothing secret) while the session goes on to the next step.
docs/SECURITY.md lists them with their results."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_agent_cli.guard import secret_paths
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args
from tests.security.conftest import PRIVATE_KEY, SECRETS


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on 127.0.0.1 that records every connection it accepts."""
    accepted: list[str] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, address = server.accept()
            except TimeoutError:
                continue
            accepted.append(str(address))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def sleepers(seconds: str = "1017") -> list[str]:
    """Processes on this machine still running `sleep SECONDS` (an unusual number per test, so
    other work on the machine is not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline == b"sleep\x00" + seconds.encode() + b"\x00":
                found.append(entry.name)
    return found


def shell(command: str, **extra: object) -> dict[str, object]:
    return turn(tool_call=("shell", {"command": command, **extra}))


def test_attacks_fail_and_the_session_goes_on(
    qac,
    model_server: ScriptedServer,
    repo: Path,
    tmp_path: Path,
    fake_home: Path,
    listener: tuple[int, list[str]],
):
    port, accepted = listener
    target = tmp_path / "target.txt"
    target.write_text("outside the workspace")
    (repo / "escape").symlink_to(target)
    attacks: list[tuple[str, dict[str, object]]] = [
        ("write /etc/x", shell("echo x > /etc/x")),
        ("write ../outside", shell("echo x > ../outside")),
        ("write into the real home", shell(f"echo x > {fake_home}/x")),
        ("write .git/hooks/pre-commit", shell("echo 'rm -rf ~' > .git/hooks/pre-commit")),
        ("write_file ../", turn(tool_call=("write_file", {"path": "../outside2", "content": "x"}))),
        (
            "write_file absolute",
            turn(
                tool_call=("write_file", {"path": str(tmp_path / "absolute.txt"), "content": "x"})
            ),
        ),
        ("write_file symlink", turn(tool_call=("write_file", {"path": "escape", "content": "x"}))),
        (
            "edit_file symlink",
            turn(tool_call=("edit_file", {"path": "escape", "old": "outside", "new": "pwned"})),
        ),
        (
            "edit_file ../",
            turn(
                tool_call=("edit_file", {"path": "../target.txt", "old": "outside", "new": "pwned"})
            ),
        ),
        ("read_file symlink", turn(tool_call=("read_file", {"path": "escape"}))),
        ("cat ~/.ssh/id_rsa", shell(f"cat {fake_home}/.ssh/id_rsa")),
        (
            "connect to 127.0.0.1",
            shell(
                f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\""
            ),
        ),
        ("env and /proc/self/environ", shell("env; tr '\\0' '\\n' < /proc/self/environ")),
        ("sleep 1017 with children", shell("sleep 1017 & sleep 1017 & wait", timeout=2)),
        ("50 MB of output", shell("head -c 50000000 /dev/zero | tr '\\0' 'a'")),
        ("deny-listed git push", shell("git push origin main")),
        ("fork bomb", shell(":(){ :|:& };:")),
    ]
    model_server.script(*(a for _, a in attacks), turn(text="still here"))

    out = qac(
        "run",
        "attack",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )

    assert out.code == 0, out.stderr
    assert out.lines()[-1]["result"] == "still here"
    results = [e for e in out.lines() if e["type"] == "tool_result"]
    assert len(results) == len(attacks)
    outcome = {
        name: (str(r["output"]), bool(r["is_error"]))
        for (name, _), r in zip(attacks, results, strict=True)
    }

    for name in ("write /etc/x", "write ../outside", "write .git/hooks/pre-commit"):
        text, is_error = outcome[name]
        assert is_error, (name, text)
        assert "Read-only file system" in text, (name, text)
    text, is_error = outcome["write into the real home"]
    assert is_error, text
    assert "Read-only file system" in text or "No such file" in text, text
    for name in ("write_file ../", "write_file absolute", "edit_file ../"):
        text, is_error = outcome[name]
        assert is_error, (name, text)
        assert "outside the workspace" in text, (name, text)
    for name in ("write_file symlink", "edit_file symlink", "read_file symlink"):
        text, is_error = outcome[name]
        assert is_error, (name, text)
        assert "symlink pointing outside the workspace" in text, (name, text)
    text, is_error = outcome["cat ~/.ssh/id_rsa"]
    assert is_error
    assert "No such file" in text
    assert PRIVATE_KEY not in text
    text, is_error = outcome["connect to 127.0.0.1"]
    assert is_error, text
    assert "Network is unreachable" in text or "Connection refused" in text, text
    assert accepted == []
    text, _ = outcome["env and /proc/self/environ"]
    assert "PATH=" in text
    for value in SECRETS.values():
        assert value not in text
    assert "QAC_HOME" not in text
    text, is_error = outcome["sleep 1017 with children"]
    assert is_error
    assert "timed out after 2s" in text
    assert sleepers() == []
    text, _ = outcome["50 MB of output"]
    assert "output truncated" in text
    assert len(text) < 25_000
    for name, pattern in (("deny-listed git push", "git push*"), ("fork bomb", ":(){*")):
        text, is_error = outcome[name]
        assert is_error
        assert f"refused: the command matches the deny pattern '{pattern}'" in text

    assert not Path("/etc/x").exists()
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "outside2").exists()
    assert not (tmp_path / "absolute.txt").exists()
    assert not (fake_home / "x").exists()
    assert target.read_text() == "outside the workspace"
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_read_only_mode_keeps_the_workspace_unchanged(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(shell("echo x > new.txt; echo y >> calc.py"), turn(text="ok"))
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--sandbox",
        "read-only",
        "--output-format",
        "stream-json",
    )
    result = next(e for e in out.lines() if e["type"] == "tool_result")
    assert "Read-only file system" in str(result["output"])
    assert not (repo / "new.txt").exists()
    assert "y" not in (repo / "calc.py").read_text().splitlines()


def test_workspace_writes_and_toolchains_work_inside_the_sandbox(
    qac, model_server: ScriptedServer, repo: Path
):
    model_server.script(
        shell('python3 -c \'open("made.txt", "w").write("hi")\' && echo $HOME && pwd'),
        turn(text="ok"),
    )
    out = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    result = next(e for e in out.lines() if e["type"] == "tool_result")
    assert result["is_error"] is False, result
    assert str(result["output"]).splitlines()[1:3] == ["/tmp/home", str(repo)]
    assert (repo / "made.txt").read_text() == "hi"


def test_sandbox_off_says_so_once_and_runs_directly(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(shell("echo direct"), shell("echo again"), turn(text="ok"))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo), "--sandbox", "off")
    assert out.code == 0
    assert out.stderr == "qac: no sandbox (--sandbox off): commands run directly as you\n"


def test_an_unusable_sandbox_exits_4_with_the_fix(
    qac, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("QAC_SANDBOX_BWRAP", str(fake))
    out = qac("run", "x", "--provider", "vllm", "-C", str(repo))
    read_only = qac("run", "x", "--provider", "vllm", "-C", str(repo), "--sandbox", "read-only")
    monkeypatch.setenv("QAC_SANDBOX_BWRAP", str(tmp_path / "no-such-bwrap"))
    missing = qac("run", "x", "--provider", "vllm", "-C", str(repo))
    assert (out.code, read_only.code, missing.code) == (4, 4, 4)
    assert "apt-get install bubblewrap" in missing.stderr
    assert out.stderr.count("\n") == 1
    assert "setting up uid map: Permission denied" in out.stderr
    assert "apparmor_restrict_unprivileged_userns" in out.stderr


@pytest.mark.parametrize(
    ("mode", "config", "refused"),
    [
        ("ask", "", ["edit_file", "shell"]),
        ("auto-edit", "", ["shell"]),
        ("auto-edit", "[approval]\nallow = ['echo *']\n", []),
        ("auto", "[approval]\nallow = ['echo *']\ndeny = ['echo ok*']\n", ["shell"]),
    ],
)
def test_approval_modes_refuse_without_waiting_on_stdin(
    qac, model_server: ScriptedServer, repo: Path, mode: str, config: str, refused: list[str]
):
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text(config)
    assert qac("trust", str(repo)).code == 0  # allow lists apply only from a trusted project
    model_server.script(
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        shell("echo ok"),
        turn(tool_call=("read_file", {"path": "calc.py"})),
        turn(text="done"),
    )
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--approval",
        mode,
        "--output-format",
        "stream-json",
    )
    assert out.code == 0
    results = {str(e["name"]): str(e["output"]) for e in out.lines() if e["type"] == "tool_result"}
    assert sorted(n for n, o in results.items() if o.startswith("refused:")) == refused
    assert not results["read_file"].startswith("refused")


def test_symlinks_planted_by_the_shell_cannot_leak_or_redirect_writes(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-outside\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    model_server.script(
        shell(
            f"ln -s {secret} leak.txt; ln -s {victim} .notes.md.qac-tmp; "
            f"ln -s {tmp_path} outdir; mkfifo pipe"
        ),
        turn(tool_call=("grep", {"pattern": "TOPSECRET"})),
        turn(tool_call=("glob", {"pattern": "**/*.txt"})),
        turn(tool_call=("write_file", {"path": "notes.md", "content": "ESCAPED WRITE"})),
        turn(tool_call=("read_file", {"path": "pipe"})),
        turn(text="done"),
    )
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--output-format",
        "stream-json",
    )
    assert out.code == 0, out.stderr
    results = [str(e["output"]) for e in out.lines() if e["type"] == "tool_result"]
    assert results[0].startswith("exit code 0"), results[0]
    assert results[1] == "no matches for TOPSECRET"
    assert "secret" not in results[2]
    assert "victim" not in results[2]
    assert results[3] == "created notes.md (1 lines)"
    assert victim.read_text() == "untouched\n"
    assert (repo / "notes.md").read_text() == "ESCAPED WRITE"
    assert "not a regular file" in results[4]


def test_read_only_mode_also_stops_the_file_tools(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(tool_call=("write_file", {"path": "new.txt", "content": "x"})),
        turn(tool_call=("edit_file", {"path": "calc.py", "old": "//", "new": "/"})),
        turn(text="ok"),
    )
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--sandbox",
        "read-only",
        "--approval",
        "ask",
        "--output-format",
        "stream-json",
    )
    results = [str(e["output"]) for e in out.lines() if e["type"] == "tool_result"]
    assert all("the workspace is read-only" in r for r in results), results
    assert not (repo / "new.txt").exists()
    assert "//" in (repo / "calc.py").read_text()


def test_working_in_the_home_directory_hides_only_its_secrets(tmp_path: Path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(PRIVATE_KEY)
    (home / "project.txt").write_text("visible\n")
    from qwen_agent_cli.sandbox import make_executor

    executor = make_executor(
        "workspace-write",
        workspace=home,
        env={"PATH": os.environ["PATH"]},
        network=False,
        masked=secret_paths([home]),
        homes=[home],
    )
    result = executor.run(
        "cat project.txt; ls -A .ssh | wc -l; echo made > new.txt", cwd=home, timeout=10
    )
    assert result.output.split() == ["visible", "0"]
    assert (home / "new.txt").read_text() == "made\n"


def test_a_toolchain_beside_the_hidden_store_runs_and_the_store_stays_hidden(tmp_path: Path):
    from qwen_agent_cli.sandbox import make_executor

    prefix = tmp_path / "tools" / "venv"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib").mkdir()
    (prefix / "lib" / "data.txt").write_text("library data\n")
    tool = prefix / "bin" / "mytool"
    tool.write_text(f"#!/bin/sh\ncat {prefix}/lib/data.txt\n")
    tool.chmod(0o755)
    store = tmp_path / "tools" / "qac-home"
    store.mkdir()
    (store / "sessions.db").write_text("SECRET-STORE")
    workspace = tmp_path / "work" / "repo"
    workspace.mkdir(parents=True)
    executor = make_executor(
        "workspace-write",
        workspace=workspace,
        network=False,
        masked=[store],
        env={"PATH": f"{prefix / 'bin'}:/usr/bin:/bin"},
    )
    result = executor.run(f"mytool; cat {store}/sessions.db", cwd=workspace, timeout=10)
    assert result.output.startswith("library data\n"), result.output
    assert "SECRET-STORE" not in result.output


def test_a_workspace_inside_a_repository_sees_the_rest_read_only(tmp_path: Path, repo: Path):
    from qwen_agent_cli.sandbox import make_executor

    sub = repo / "pkg"
    sub.mkdir()
    executor = make_executor(
        "workspace-write",
        workspace=sub,
        env={"PATH": os.environ["PATH"]},
        network=False,
        masked=[tmp_path / "qac-home"],
    )
    result = executor.run(
        "git status --short >/dev/null && echo git-ok; cat ../calc.py | head -1; "
        "echo x > ../outside.txt; echo y > inside.txt",
        cwd=sub,
        timeout=10,
    )
    assert "git-ok" in result.output
    assert "def average(values):" in result.output
    assert "Read-only file system" in result.output
    assert (sub / "inside.txt").read_text() == "y\n"
    assert not (repo / "outside.txt").exists()
