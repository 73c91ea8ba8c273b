"""The user's MCP servers as tools of a run: started once per process (a REPL that reassembles
its agent keeps them), their tools wrapped as qac tools named `mcp__SERVER__TOOL`, and what went
wrong at start said once.

The SDK stays behind `mcp_client`; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent_cli.config import Settings
from qwen_agent_cli.images import image_from_bytes
from qwen_agent_cli.mcp_client import McpHub, McpTool
from qwen_agent_cli.mcp_config import servers_from
from qwen_agent_cli.tools.base import Output, Tool, ToolContext
from qwen_agent_cli.types import Image

_HUBS: dict[str, McpHub] = {}
_SAID: set[str] = set()


@dataclass(slots=True)
class McpSetup:
    """The servers of this run (None: none configured) and the notices still to be said."""

    hub: McpHub | None
    notices: list[str] = field(default_factory=list)

    def tools(self, *, images: bool) -> list[Tool]:
        """The servers' tools, once they are ready or left out (this waits for them)."""
        if self.hub is None:
            return []
        for notice in self.hub.wait_ready():
            if notice not in _SAID:
                _SAID.add(notice)
                self.notices.append(notice)
        return [_wrap(self.hub, tool, images) for tool in self.hub.tools()]

    def allowed(self) -> frozenset[str]:
        """The tools the user's config lets run without asking."""
        if self.hub is None:
            return frozenset()
        return frozenset(tool.name for tool in self.hub.tools() if tool.allowed)


def start_servers(settings: Settings, env: Mapping[str, str], workdir: Path) -> McpSetup:
    """Start the configured servers in the background (at once: they get ready while the
    snapshot is taken), or reuse the ones this process already started with the same config."""
    servers, notices = servers_from(
        settings.mcp_servers, workdir, settings.project_trusted, env=env
    )
    fresh = [n for n in notices if n not in _SAID]
    _SAID.update(fresh)
    if not any(server.enabled for server in servers):
        return McpSetup(None, fresh)
    key = repr(servers)
    hub = _HUBS.get(key)
    if hub is None:
        hub = _HUBS[key] = McpHub(servers, env).start()
    return McpSetup(hub, fresh)


def describe_servers(hub: McpHub) -> list[str]:
    """One line per server (state, tool count, where it is configured) and one per tool, for
    `qac mcp list`, `/mcp` and `qac doctor`."""
    allowed = {(tool.server, tool.tool) for tool in hub.tools() if tool.allowed}
    lines = []
    for status in hub.status():
        state: str = status.state
        if status.state == "ready":
            count = len(status.tools)
            state = f"ready, {count} tool{'' if count == 1 else 's'}"
        elif status.error:
            state = f"{status.state}: {status.error}"
        lines.append(f"{status.name}  {state}  ({status.source})")
        lines += [
            f"  {tool}{'  (allowed without asking)' if (status.name, tool) in allowed else ''}"
            for tool in status.tools
        ]
    return lines


def _wrap(hub: McpHub, found: McpTool, images: bool) -> Tool:
    def call(ctx: ToolContext, **arguments: Any) -> Output:
        result = hub.call(found.name, arguments)
        text = result.text
        kept: tuple[Image, ...] = ()
        if result.images and images:
            kept = tuple(image_from_bytes(data, mime) for mime, data in result.images)
        elif result.images:
            shown = ", ".join(f"{mime}, {len(data):,} bytes" for mime, data in result.images)
            text += f"\n[the tool returned images ({shown}); this model does not take images]"
        return Output(text, failed=result.is_error, images=kept)

    description = found.description or f"{found.tool} (MCP server {found.server})"
    return Tool(
        name=found.name,
        description=description,
        parameters=found.parameters,
        fn=call,
        read_only=False,
        external=True,
    )
