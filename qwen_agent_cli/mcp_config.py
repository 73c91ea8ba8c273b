"""Which MCP servers a session starts: the user's `[mcp.servers.NAME]` tables, checked, and a
trusted project's `.mcp.json` (DESIGN §11: an untrusted project starts nothing on the host).

Imports `errors` and the guard only; never reads the process environment (it is passed in).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from qwen_agent_cli.config import MCP_PROJECT_FILE
from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.guard import read_capped

MCP_JSON = str(MCP_PROJECT_FILE)
MCP_JSON_LIMIT = 1_000_000
USER_SOURCE = "user config"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Server names: they become part of tool names `mcp__SERVER__TOOL`, which providers limit to
64 characters of this set."""
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Transport = Literal["stdio", "http", "sse"]
HTTP_TYPES: Mapping[str, Transport] = {"http": "http", "streamable-http": "http", "sse": "sse"}
NO_ENV: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One MCP server as qac runs it; `source` says where it was configured."""

    name: str
    transport: Transport = "stdio"
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Set over the user's environment for a stdio server; `${VAR}` already expanded."""
    cwd: str | None = None
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    timeout: float = 60.0
    """Seconds one tool call may take."""
    startup_timeout: float = 15.0
    """Seconds the server may take to start and list its tools before it is left out."""
    allow: tuple[str, ...] = ()
    """Tool names (as the server names them) that run without asking."""
    source: str = USER_SOURCE


KEYS = frozenset(f.name for f in dataclasses.fields(ServerConfig)) - {"name", "source"}
"""The keys of a `[mcp.servers.NAME]` table: the fields, so the two cannot drift."""


def servers_from(
    settings_tables: Mapping[str, Mapping[str, Any]],
    project_dir: Path | None,
    trusted_project: bool,
    *,
    env: Mapping[str, str] = NO_ENV,
) -> tuple[list[ServerConfig], list[str]]:
    """The servers to start and the notices to show. A bad user table is a ConfigError (the
    user's own file); a bad `.mcp.json` entry is only a notice (the repository's file)."""
    notices: list[str] = []
    cwd = str(project_dir) if project_dir is not None else None
    servers: dict[str, ServerConfig] = {}
    for name, table in settings_tables.items():
        server, problem = _expanded(server_from_table(name, table, cwd), env)
        if problem:
            notices.append(problem)
        else:
            servers[name] = server
    if project_dir is not None:
        for server in _from_mcp_json(project_dir, trusted_project, notices):
            if server.name in servers or server.name in settings_tables:
                notices.append(
                    f"MCP server {server.name} in {server.source} was not started: "
                    "your config has a server of that name"
                )
                continue
            server, problem = _expanded(server, env)
            if problem:
                notices.append(problem)
            else:
                servers[server.name] = server
    return sorted(servers.values(), key=lambda s: s.name), notices


def check_name(name: str, where: str) -> None:
    """A name tool names can carry (refused here, not when the model first calls the tool)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: the server name {name!r} must be 1 to 32 letters, digits, _ or -"
        )


def server_from_table(name: str, table: Mapping[str, Any], cwd: str | None = None) -> ServerConfig:
    """One `[mcp.servers.NAME]` table, checked; `cwd` is where a stdio server runs unless the
    table says."""
    where = f"[mcp.servers.{name}]"
    check_name(name, where)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"{where} {unknown[0]} is not a known key ({', '.join(sorted(KEYS))})")
    has_command, has_url = "command" in table, "url" in table
    if has_command == has_url:
        raise ConfigError(f"{where} needs either command (a local server) or url, not both")
    transport: Transport = "stdio"
    if has_url:
        kind = _text(table, "transport", where, "http")
        if kind not in HTTP_TYPES:
            raise ConfigError(f"{where} transport must be http or sse with a url, got {kind!r}")
        transport = HTTP_TYPES[kind]
        _check_url(_text(table, "url", where), where)
    elif _text(table, "transport", where, "stdio") != "stdio":
        raise ConfigError(f"{where} transport must be stdio with a command")
    command = _text(table, "command", where)
    if has_command and not command.strip():
        raise ConfigError(f"{where} command is empty")
    directory = _text(table, "cwd", where) or None
    return ServerConfig(
        name=name,
        transport=transport,
        command=command,
        args=_strings(table, "args", where),
        env=_string_map(table, "env", where),
        cwd=str(Path(directory).expanduser()) if directory else cwd,
        url=_text(table, "url", where),
        headers=_string_map(table, "headers", where),
        enabled=_flag(table, "enabled", where),
        timeout=_seconds(table, "timeout", where, 60.0),
        startup_timeout=_seconds(table, "startup_timeout", where, 15.0),
        allow=_strings(table, "allow", where),
    )


def _from_mcp_json(project: Path, trusted: bool, notices: list[str]) -> list[ServerConfig]:
    """The project's servers, read through the guard (a link out of the project is refused)."""
    path = project / MCP_JSON
    if not path.exists() and not path.is_symlink():
        return []
    try:
        data = json.loads(read_capped(project, MCP_JSON, MCP_JSON_LIMIT)[:MCP_JSON_LIMIT])
        entries = data["mcpServers"]
        if not isinstance(entries, dict):
            raise TypeError("mcpServers must be an object")
    except (ToolError, ValueError, KeyError, TypeError) as exc:
        notices.append(f"{path} was not read: {_reason(exc)}")
        return []
    if not trusted:
        if entries:
            count = len(entries)
            were = "server in .mcp.json was" if count == 1 else "servers in .mcp.json were"
            notices.append(
                f"{count} MCP {were} not started: this project is not trusted (qac trust)"
            )
        return []
    servers = []
    for name, entry in entries.items():
        try:
            servers.append(_from_json_entry(str(name), entry, project, str(path)))
        except ConfigError as exc:
            notices.append(f"MCP server {name} in {path} was not started: {exc}")
    return servers


def _from_json_entry(name: str, entry: Any, project: Path, source: str) -> ServerConfig:
    """One `mcpServers` entry in the shape other clients write (keys they add are ignored)."""
    where = f"mcpServers.{name}"
    check_name(name, where)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    kind = _text(entry, "type", where, "stdio" if "command" in entry else "http")
    if kind == "stdio":
        command = _text(entry, "command", where)
        if not command.strip():
            raise ConfigError(f"{where} needs a command")
        directory = _text(entry, "cwd", where)
        return ServerConfig(
            name=name,
            command=command,
            args=_strings(entry, "args", where),
            env=_string_map(entry, "env", where),
            cwd=str(project / directory) if directory else str(project),
            source=source,
        )
    if kind not in HTTP_TYPES:
        raise ConfigError(f"{where} type must be stdio, http, streamable-http or sse")
    url = _text(entry, "url", where)
    _check_url(url, where)
    return ServerConfig(
        name=name,
        transport=HTTP_TYPES[kind],
        url=url,
        headers=_string_map(entry, "headers", where),
        source=source,
    )


def _expanded(server: ServerConfig, env: Mapping[str, str]) -> tuple[ServerConfig, str]:
    """`${VAR}` and `${VAR:-default}` in env and header values; a variable that is not set
    leaves the server out with a notice (an empty token would fail less clearly later)."""
    missing: list[str] = []
    if not server.enabled:
        return server, ""

    def expand(values: Mapping[str, str], label: str) -> dict[str, str]:
        def one(key: str, value: str) -> str:
            def replace(match: re.Match[str]) -> str:
                name, default = match.group(1), match.group(2)
                if name in env:
                    return env[name]
                if default is None:
                    missing.append(f"{label}.{key} uses ${{{name}}}, which is not set")
                return default or ""

            return VARIABLE.sub(replace, value)

        return {key: one(key, value) for key, value in values.items()}

    expanded = dataclasses.replace(
        server, env=expand(server.env, "env"), headers=expand(server.headers, "headers")
    )
    if missing:
        return server, f"MCP server {server.name} was not started: {missing[0]}"
    return expanded, ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return "it has no mcpServers object"
    return str(exc)


def _text(table: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where} {key} must be a string, got {value!r}")
    return value


def _flag(table: Mapping[str, Any], key: str, where: str) -> bool:
    value = table.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be true or false, got {value!r}")
    return value


def _seconds(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
        raise ConfigError(f"{where} {key} must be a number of seconds above 0, got {value!r}")
    return float(value)


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} {key} must be a list of strings, got {value!r}")
    return tuple(value)


def _string_map(table: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where} {key} must be a table of strings, got {value!r}")
    return dict(value)


def _check_url(url: str, where: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where} url must start with http:// or https://, got {url!r}")
