"""The MCP client against real servers: mcp-server-time and mcp-server-git over stdio, and the
toolbox server (tests/mcp_servers/toolbox.py, the SDK's own Server) over stdio, streamable HTTP
and SSE. Every wait is for an event (a line, a file, a process gone), never a fixed sleep."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.mcp_client import McpHub, McpResult
from qwen_agent_cli.mcp_config import ServerConfig, server_from_table, servers_from
from qwen_agent_cli.mcp_shape import RESULT_LIMIT, parameters_of, tool_name
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.trust import TrustStore
from tests.mcp_servers.toolbox import PNG

BIN = Path(sys.executable).parent
TOOLBOX = Path(__file__).parent / "mcp_servers" / "toolbox.py"
PATIENT = 120.0
"""Startup and exit deadlines: generous, since a busy two-core machine starts Python slowly;
they bound a wait for an event, they are never slept."""
BOX_TOOLS = [
    "mcp__{}__" + "a" * 45 + "_" + hashlib.sha256(b"a" * 70).hexdigest()[:8],
    "mcp__{}__big",
    "mcp__{}__crash",
    "mcp__{}__echo",
    "mcp__{}__fail",
    "mcp__{}__hang",
    "mcp__{}__image",
    "mcp__{}__no_schema_here_" + hashlib.sha256(b"no.schema here").hexdigest()[:8],
    "mcp__{}__resources",
    "mcp__{}__shapes",
    "mcp__{}__structured",
]


def box(name: str, *extra: str) -> ServerConfig:
    args = (str(TOOLBOX), "stdio", *extra)
    return ServerConfig(name=name, command=sys.executable, args=args, startup_timeout=PATIENT)


def python(name: str, code: str, startup_timeout: float = PATIENT) -> ServerConfig:
    return ServerConfig(
        name=name, command=sys.executable, args=("-c", code), startup_timeout=startup_timeout
    )


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that is not us."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] != "Z"


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + PATIENT
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def children() -> set[int]:
    """Live processes whose parent is this test process."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.add(int(entry.name))
    return {pid for pid in found if alive(pid)}


def read_pid(path: Path) -> int:
    deadline = time.monotonic() + PATIENT
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return int(path.read_text())


@contextlib.contextmanager
def served(transport: str) -> Iterator[str]:
    """The toolbox over HTTP; it prints its URL once its socket listens."""
    process = subprocess.Popen(
        [sys.executable, str(TOOLBOX), transport], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        process.terminate()
        process.wait(PATIENT)
        process.stdout.close()


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with served("http") as url:
        yield url


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("git") / "project"
    path.mkdir()
    (path / "README.md").write_text("hello\n")
    init_repository(path, "initial")
    (path / "new.txt").write_text("untracked\n")
    return path.resolve()


@pytest.fixture(scope="module")
def hub(http_url: str, git_repo: Path) -> Iterator[McpHub]:
    servers = [
        ServerConfig(name="time", command=str(BIN / "mcp-server-time"), startup_timeout=PATIENT),
        ServerConfig(
            name="git",
            command=str(BIN / "mcp-server-git"),
            args=("--repository", str(git_repo)),
            startup_timeout=PATIENT,
        ),
        ServerConfig(
            name="web", transport="http", url=http_url, allow=("echo",), startup_timeout=PATIENT
        ),
    ]
    with McpHub(servers, dict(os.environ)) as started:
        assert started.wait_ready() == []
        yield started


def test_tools_are_sorted_named_and_normalised(hub: McpHub, http_url: str) -> None:
    tools = hub.tools()
    names = [t.name for t in tools]
    assert [(t.server, t.name) for t in tools] == sorted((t.server, t.name) for t in tools)
    assert {"mcp__git__git_status", "mcp__git__git_log"} <= set(names)
    assert [n for n in names if not n.startswith("mcp__git__")] == [
        "mcp__time__convert_time",
        "mcp__time__get_current_time",
        *[name.format("web") for name in BOX_TOOLS],
    ]
    assert all(len(name) <= 64 for name in names)
    assert {t.name for t in tools if t.allowed} == {"mcp__web__echo"}
    by_name = {t.name: t for t in tools}
    assert by_name["mcp__time__get_current_time"].parameters["required"] == ["timezone"]
    assert "title" not in by_name["mcp__time__get_current_time"].parameters
    assert by_name["mcp__web__shapes"].parameters == {
        "type": "object",
        "properties": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
                "description": "Where.",
            },
            "label": {"type": "string"},
            "tree": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            },
        },
        "required": ["point"],
        "additionalProperties": False,
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            },
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            },
        },
    }
    # A second session sees the same bytes: the tools array is part of the cached prefix.
    server = ServerConfig(name="web", transport="http", url=http_url, allow=("echo",))
    with McpHub([server], {}) as again:
        assert json.dumps([vars_of(t) for t in again.tools()]) == json.dumps(
            [vars_of(t) for t in tools if t.server == "web"]
        )


def vars_of(tool: object) -> dict[str, object]:
    return {name: getattr(tool, name) for name in tool.__slots__}  # type: ignore[attr-defined]


def test_time_and_git_answer_with_text(hub: McpHub, git_repo: Path) -> None:
    result = hub.call("mcp__time__get_current_time", {"timezone": "UTC"})
    assert not result.is_error
    assert json.loads(result.text)["timezone"] == "UTC"
    status = hub.call("mcp__git__git_status", {"repo_path": str(git_repo)})
    assert not status.is_error, status.text
    assert "On branch main" in status.text
    assert "new.txt" in status.text


def test_results_become_text_and_images(hub: McpHub) -> None:
    assert hub.call("mcp__web__echo", {"text": "héllo"}) == McpResult("héllo")
    assert hub.call("mcp__web__image", {}) == McpResult("a pixel:", [("image/png", PNG)])
    assert hub.call("mcp__web__fail", {}) == McpResult("it went wrong", is_error=True)
    assert hub.call("mcp__web__resources", {}) == McpResult(
        "inside\n[binary resource file:///b.bin (application/octet-stream, 10 bytes)]"
    )
    assert hub.call("mcp__web__structured", {}) == McpResult('{\n  "answer": 42\n}')
    big = hub.call("mcp__web__big", {})
    assert big.text == "x" * RESULT_LIMIT + "\n[cut: the tool returned 150000 characters]"


def test_a_call_past_its_timeout_is_an_error_and_the_hub_stays_usable(hub: McpHub) -> None:
    began = time.monotonic()
    result = hub.call("mcp__web__hang", {}, timeout=1)
    assert result == McpResult(
        "MCP tool hang on web did not answer within 1s (cancelled)", is_error=True
    )
    assert time.monotonic() - began < 1 + 30
    assert hub.call("mcp__web__echo", {"text": "still here"}) == McpResult("still here")


def test_the_older_sse_transport_works_too() -> None:
    with served("sse") as url:
        server = ServerConfig(name="old", transport="sse", url=url, startup_timeout=PATIENT)
        with McpHub([server], {}) as hub:
            assert hub.wait_ready() == []
            assert hub.call("mcp__old__echo", {"text": "via sse"}) == McpResult("via sse")


def test_unknown_tools_are_error_results(hub: McpHub) -> None:
    assert hub.call("mcp__nope__x", {}) == McpResult("unknown MCP tool mcp__nope__x", [], True)
    assert hub.call("mcp__time__nope", {}).is_error


def test_a_crash_mid_call_fails_the_server_and_later_calls_answer_at_once(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "box.pid"
    with McpHub([box("box", "--pid-file", str(pid_file))], dict(os.environ)) as crashing:
        assert crashing.wait_ready() == []
        pid = read_pid(pid_file)
        result = crashing.call("mcp__box__crash", {})
        assert result == McpResult(
            "MCP server box stopped during the call (it exited)", is_error=True
        )
        wait_gone(pid)
        assert crashing.call("mcp__box__echo", {"text": "x"}) == McpResult(
            "MCP server box is not running (it exited)", is_error=True
        )
        [status] = crashing.status()
        assert (status.state, status.error) == ("failed", "it exited")


def test_servers_that_fail_to_start_are_left_out_with_notices(tmp_path: Path) -> None:
    servers = [
        ServerConfig(name="time", command=str(BIN / "mcp-server-time"), startup_timeout=PATIENT),
        ServerConfig(name="bad", command="qac-no-such-command"),
        python("dies", "import sys; sys.stderr.write('boom: no token\\n'); sys.exit(3)"),
        python("slow", "import sys; sys.stdin.read()", startup_timeout=1),
        ServerConfig(name="off", command="qac-no-such-command", enabled=False),
    ]
    with McpHub(servers, dict(os.environ)) as partial:
        assert partial.wait_ready() == [
            "MCP server bad did not start: command not found: qac-no-such-command; left out",
            "MCP server dies did not start: it exited (boom: no token); left out",
            "MCP server slow did not answer within 1s; left out",
        ]
        assert {t.server for t in partial.tools()} == {"time"}
        assert not partial.call("mcp__time__get_current_time", {"timezone": "UTC"}).is_error
        assert partial.call("mcp__slow__x", {}) == McpResult(
            "MCP server slow is not running (did not answer within 1s)", is_error=True
        )
        assert [(s.name, s.state) for s in partial.status()] == [
            ("bad", "failed"),
            ("dies", "failed"),
            ("off", "disabled"),
            ("slow", "failed"),
            ("time", "ready"),
        ]


def test_close_stops_every_server(tmp_path: Path) -> None:
    before = children()
    lingering = box("a", "--pid-file", str(tmp_path / "a"), "--linger")
    hub = McpHub([lingering, box("b")], dict(os.environ))
    hub.start()
    assert hub.wait_ready() == []
    pid = read_pid(tmp_path / "a")
    assert len(children() - before) == 2
    hub.close()
    hub.close()
    assert not alive(pid)
    assert children() - before == set()
    assert hub.call("mcp__a__echo", {}) == McpResult(
        "MCP server a is not running (the MCP servers were stopped)", is_error=True
    )


OWNER = """
import os, sys, time
from qwen_agent_cli.mcp_client import McpHub
from qwen_agent_cli.mcp_config import ServerConfig
args = (sys.argv[1], "stdio", "--pid-file", sys.argv[2], "--linger")
server = ServerConfig(name="box", command=sys.executable, args=args, startup_timeout=120)
print(McpHub([server], dict(os.environ)).wait_ready(), flush=True)
time.sleep(600)
"""


def test_a_server_dies_with_a_killed_owner(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup, and this server outlives its stdin: only the parent-death
    signal the guard armed stops it."""
    pid_file = tmp_path / "box.pid"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(TOOLBOX), str(pid_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert owner.stdout is not None
    assert owner.stdout.readline() == "[]\n"
    pid = read_pid(pid_file)
    assert alive(pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait(PATIENT)
    owner.stdout.close()
    wait_gone(pid)


def test_importing_the_client_does_not_import_the_sdk() -> None:
    code = "import sys, qwen_agent_cli.mcp_client; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"
    with McpHub([ServerConfig(name="off", command="x", enabled=False)], {}) as idle:
        assert idle.wait_ready() == []
        assert idle.tools() == []


MCP_JSON = {
    "mcpServers": {
        "time": {"command": "mcp-server-time"},
        "clock": {"command": str(BIN / "mcp-server-time"), "env": {"TZ": "${MY_TZ:-UTC}"}},
        "remote": {"type": "streamable-http", "url": "https://example.com/mcp"},
    }
}


def test_mcp_json_starts_nothing_until_the_project_is_trusted(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text(json.dumps(MCP_JSON))
    user = {"time": {"command": str(BIN / "mcp-server-time")}}
    assert servers_from(user, tmp_path, False) == (
        [ServerConfig(name="time", command=str(BIN / "mcp-server-time"), cwd=str(tmp_path))],
        ["3 MCP servers in .mcp.json were not started: this project is not trusted (qac trust)"],
    )
    servers, notices = servers_from(user, tmp_path, True, env={})
    source = str(tmp_path / ".mcp.json")
    assert servers == [
        ServerConfig(
            name="clock",
            command=str(BIN / "mcp-server-time"),
            env={"TZ": "UTC"},
            cwd=str(tmp_path),
            source=source,
        ),
        ServerConfig(name="remote", transport="http", url="https://example.com/mcp", source=source),
        ServerConfig(name="time", command=str(BIN / "mcp-server-time"), cwd=str(tmp_path)),
    ]
    assert notices == [
        f"MCP server time in {source} was not started: your config has a server of that name"
    ]


def test_mcp_json_leading_out_of_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(MCP_JSON))
    project = tmp_path / "project"
    project.mkdir()
    (project / ".mcp.json").symlink_to(outside)
    servers, [notice] = servers_from({}, project, True)
    assert servers == []
    assert notice.startswith(f"{project / '.mcp.json'} was not read: ")
    assert "outside" in notice


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"command": "x", "colour": 1}, "[mcp.servers.s] colour is not a known key"),
        ({"command": "x", "url": "http://h"}, "[mcp.servers.s] needs either command"),
        ({}, "[mcp.servers.s] needs either command"),
        ({"command": ["x"]}, "[mcp.servers.s] command must be a string"),
        ({"command": "x", "args": "a b"}, "[mcp.servers.s] args must be a list of strings"),
        ({"command": "x", "env": {"A": 1}}, "[mcp.servers.s] env must be a table of strings"),
        ({"url": "ftp://h"}, "[mcp.servers.s] url must start with http://"),
        ({"command": "x", "timeout": 0}, "[mcp.servers.s] timeout must be a number of seconds"),
        ({"command": "x", "enabled": "no"}, "[mcp.servers.s] enabled must be true or false"),
    ],
)
def test_bad_user_tables_name_the_table_and_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        servers_from({"s": table}, None, False)
    assert str(caught.value).startswith(message)


def test_server_names_must_fit_tool_names() -> None:
    with pytest.raises(ConfigError, match=r"\[mcp.servers.a b\]: the server name 'a b' must"):
        server_from_table("a b", {"command": "x"})


def test_variables_expand_in_env_and_headers_only_when_set() -> None:
    tables = {
        "api": {"url": "https://h/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
        "local": {"command": "x", "env": {"HOME_DIR": "${HOME}/x", "LEVEL": "${LEVEL:-info}"}},
    }
    assert servers_from(tables, None, False, env={"TOKEN": "t0k", "HOME": "/h"}) == (
        [
            ServerConfig(
                name="api",
                transport="http",
                url="https://h/mcp",
                headers={"Authorization": "Bearer t0k"},
            ),
            ServerConfig(name="local", command="x", env={"HOME_DIR": "/h/x", "LEVEL": "info"}),
        ],
        [],
    )
    servers, notices = servers_from(tables, None, False, env={"HOME": "/h"})
    assert [s.name for s in servers] == ["local"]
    assert notices == [
        "MCP server api was not started: headers.Authorization uses ${TOKEN}, which is not set"
    ]


def test_tool_names_are_sanitised_deterministically() -> None:
    assert tool_name("git", "git_status") == "mcp__git__git_status"
    digest = hashlib.sha256(b"read file").hexdigest()[:8]
    assert tool_name("fs", "read file") == f"mcp__fs__read_file_{digest}"
    long = tool_name("server", "t" * 80)
    assert len(long) == 64
    assert long == tool_name("server", "t" * 80)
    assert long != tool_name("server", "t" * 81)


def test_schemas_are_normalised_for_the_tool_call_parsers() -> None:
    assert parameters_of(None) == {"type": "object", "properties": {}}
    assert parameters_of(
        {
            "type": "object",
            "properties": {"a": {"type": ["string", "null"], "default": None}, "b": True},
            "required": ["a", "a", "zzz"],
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "definitions": {"X": {"type": "integer"}},
        }
    ) == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {}},
        "required": ["a"],
    }
    assert parameters_of(
        {
            "properties": {"x": {"$ref": "#/definitions/X", "description": "d"}},
            "definitions": {"X": {"type": "integer"}},
        }
    ) == {"type": "object", "properties": {"x": {"type": "integer", "description": "d"}}}


def test_qac_mcp_add_list_and_remove(qac, clean_environ: Path, tmp_path: Path) -> None:
    config = clean_environ / "config.toml"
    clean_environ.mkdir()
    config.write_text('# mine\nprovider = "vllm"  # keep me\n')
    time_server = str(BIN / "mcp-server-time")
    added = qac(
        *("mcp", "add", "time", "--command", time_server, "--arg", "--local-timezone"),
        *("--arg", "UTC", "--allow", "get_current_time", "--timeout", "30"),
    )
    assert (added.code, added.stdout) == (0, f"added MCP server time to {config}\n")
    assert config.read_text() == (
        '# mine\nprovider = "vllm"  # keep me\n\n'
        "[mcp.servers.time]\n"
        f'command = "{time_server}"\n'
        'args = ["--local-timezone", "UTC"]\n'
        'allow = ["get_current_time"]\n'
        "timeout = 30.0\n"
    )
    again = qac("mcp", "add", "time", "--url", "http://127.0.0.1:1/mcp")
    assert (again.code, again.stderr) == (
        2,
        f"qac: {config} already has an MCP server time; `qac mcp remove time` first\n",
    )
    assert qac("mcp", "add", "web", "--url", "http://127.0.0.1:1/mcp").code == 0
    listed = qac("mcp", "list", "-C", str(tmp_path))
    assert listed.code == 0
    lines = listed.stdout.splitlines()
    assert lines[:3] == [
        "time  ready, 2 tools  (user config)",
        "  convert_time",
        "  get_current_time  (allowed without asking)",
    ]
    assert lines[3].startswith("web  failed: did not start: ")
    assert qac("mcp", "remove", "web").code == 0
    assert qac("mcp", "remove", "time").stdout == f"removed MCP server time from {config}\n"
    assert config.read_text() == '# mine\nprovider = "vllm"  # keep me\n\n'
    missing = qac("mcp", "remove", "time")
    assert (missing.code, missing.stderr) == (
        2,
        f"qac: {config} has no MCP server time (see `qac mcp list`)\n",
    )
    assert qac("mcp", "add", "x", "--command", "c", "--url", "http://h").code == 2


def test_qac_mcp_list_shows_a_project_server_once_trusted(qac, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    servers = {"mcpServers": {"clock": {"command": str(BIN / "mcp-server-time")}}}
    (project / ".mcp.json").write_text(json.dumps(servers))
    untrusted = qac("mcp", "list", "-C", str(project))
    assert untrusted.code == 0
    assert "1 MCP server in .mcp.json was not started: this project is not trusted" in (
        untrusted.stderr
    )
    assert "clock" not in untrusted.stdout
    TrustStore(tmp_path / "qac-home").trust(project)
    trusted = qac("mcp", "list", "-C", str(project))
    assert trusted.code == 0
    assert trusted.stdout.splitlines()[0] == (
        f"clock  ready, 2 tools  ({project.resolve() / '.mcp.json'})"
    )
