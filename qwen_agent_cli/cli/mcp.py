"""`qac mcp`: the MCP servers of the user's config (and of a trusted project's `.mcp.json`):
list them with their tools, add and remove them in the user config file (comments kept)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from qwen_agent_cli.cli.app import (
    app,
    error,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    DirOpt,
)
from qwen_agent_cli.errors import ConfigError

mcp_app = typer.Typer(help="List, add and remove MCP servers.", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")

Repeated = list[str] | None


@mcp_app.command("list")
def mcp_list(directory: DirOpt = None) -> None:
    """Start the configured servers, show each with its tools, then stop them."""
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.mcp_client import McpHub
    from qwen_agent_cli.mcp_config import servers_from
    from qwen_agent_cli.mcp_tools import describe_servers

    workdir = workdir_of(directory)
    env = dict(os.environ)
    settings = settings_for(workdir)
    servers, notices = servers_from(
        settings.mcp_servers, workdir, settings.project_trusted, env=env
    )
    for notice in notices:
        error(notice)
    if not servers:
        show("no MCP servers are configured; add one with `qac mcp add`")
        return
    with McpHub(servers, env) as hub:
        hub.wait_ready()
        for line in describe_servers(hub):
            show(line)


@mcp_app.command("add")
def mcp_add(
    name: Annotated[str, typer.Argument(help="The server's name: letters, digits, _ and -.")],
    command: Annotated[
        str | None, typer.Option("--command", help="The program of a local (stdio) server.")
    ] = None,
    arg: Annotated[Repeated, typer.Option("--arg", help="An argument of the program.")] = None,
    env: Annotated[
        Repeated, typer.Option("--env", metavar="K=V", help="A variable set for the program.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="A streamable HTTP server.")] = None,
    header: Annotated[
        Repeated,
        typer.Option("--header", metavar="K=V", help="An HTTP header; ${VAR} reads a variable."),
    ] = None,
    allow: Annotated[
        Repeated, typer.Option("--allow", metavar="TOOL", help="A tool run without asking.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", metavar="N", help="Seconds one call may take.")
    ] = None,
) -> None:
    """Add a server to your user config file."""
    from qwen_agent_cli.mcp_config import check_name, server_from_table

    check_name(name, "qac mcp add")
    if (command is None) == (url is None):
        raise ConfigError("give either --command (a local server) or --url (a remote one)")
    if command is None and (arg or env):
        raise ConfigError("--arg and --env go with --command")
    if url is None and header:
        raise ConfigError("--header goes with --url")
    table: dict[str, Any] = {"command": command} if command is not None else {"url": url}
    if arg:
        table["args"] = list(arg)
    if env:
        table["env"] = _pairs(env, "--env")
    if header:
        table["headers"] = _pairs(header, "--header")
    if allow:
        table["allow"] = list(allow)
    if timeout is not None:
        table["timeout"] = timeout
    server_from_table(name, table)
    path, document = _user_document()
    servers = _servers(document, create=True)
    if name in servers:
        raise ConfigError(f"{path} already has an MCP server {name}; `qac mcp remove {name}` first")
    servers[name] = _toml_table(table)
    _write(path, document)
    show(f"added MCP server {name} to {path}")


@mcp_app.command("remove")
def mcp_remove(name: Annotated[str, typer.Argument(help="The server's name.")]) -> None:
    """Remove a server from your user config file."""
    path, document = _user_document()
    servers = _servers(document, create=False)
    if servers is None or name not in servers:
        raise ConfigError(f"{path} has no MCP server {name} (see `qac mcp list`)")
    del servers[name]
    if not servers:
        del document["mcp"]["servers"]
        if not document["mcp"]:
            del document["mcp"]
    _write(path, document)
    show(f"removed MCP server {name} from {path}")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sign, rest = value.partition("=")
        if not sign or not key.strip():
            raise ConfigError(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key.strip()] = rest
    return pairs


def _user_document() -> tuple[Path, Any]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from qwen_agent_cli.assemble import user_config_file

    path = user_config_file(os.environ)
    try:
        text = path.read_text("utf-8") if path.exists() else ""
        return path, tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def _servers(document: Any, *, create: bool) -> Any:
    """The `[mcp.servers]` table, made (as headers only) when asked."""
    import tomlkit

    for key in ("mcp", "servers"):
        if key not in document:
            if not create:
                return None
            document[key] = tomlkit.table(is_super_table=True)
        document = document[key]
        if not isinstance(document, dict):
            raise ConfigError(f"the config's {key} must be a table")
    return document


def _toml_table(values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in values.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        table[key] = value
    return table


def _write(path: Path, document: Any) -> None:
    """Replace the file whole, keeping its mode, so a failed write leaves the old one."""
    import tomlkit

    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
        if path.exists():
            temporary.chmod(path.stat().st_mode & 0o7777)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write config file {path}: {exc}") from exc
