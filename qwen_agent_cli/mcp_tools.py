"""The user's MCP servers as tools of a run: started once per process (a REPL that reassembles
its agent keeps them), their tools wrapped as qac tools named `mcp__SERVER__TOOL`, and what went
wrong at start said once.

The SDK stays behind `mcp_client`; nothing here imports it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent_cli.config import Settings
from qwen_agent_cli.images import image_from_bytes
from qwen_agent_cli.mcp_client import McpHub, McpTool
from qwen_agent_cli.mcp_config import ServerConfig, servers_from
from qwen_agent_cli.tools.base import Output, Tool, ToolContext
from qwen_agent_cli.types import Image

_HUBS: dict[str, McpHub] = {}
START_DELAY = 0.5
"""Seconds after the tools are offered from the cache before the servers start."""
_SAID: set[str] = set()


@dataclass(slots=True)
class McpSetup:
    """The servers of this run (None: none configured) and the notices still to be said."""

    hub: McpHub | None
    notices: list[str] = field(default_factory=list)
    servers: list[ServerConfig] = field(default_factory=list)
    cache: Path | None = None
    _listed: list[McpTool] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure_started(self) -> None:
        """Start the servers now, if nothing has yet (a call, `/mcp`, or the timer below)."""
        with self._lock:
            if self.hub is not None:
                self.hub.start()

    def tools(self, *, images: bool) -> list[Tool]:
        """The servers' tools. Known from an earlier run of the same servers, they are offered
        at once and the servers get ready while the first request is answered; the first time,
        this waits for the servers (each up to its startup timeout)."""
        if self.hub is None:
            return []
        return [_wrap(self, tool, images) for tool in self.listed()]

    def listed(self) -> list[McpTool]:
        if self._listed is None:
            self._listed = self._cached()
            if self._listed is None:
                self.ensure_started()
                self.notices += _unsaid(self.hub.wait_ready() if self.hub else [])
                self._listed = self.hub.tools() if self.hub else []
                self._remember(self._listed)
            elif self.hub is not None:
                # Known tools: the first request goes out without waiting, and the servers
                # start a moment later, so their start (the SDK alone imports for about half a
                # second) does not compete with it; a call that comes first starts them itself.
                hub = self.hub
                timer = threading.Timer(START_DELAY, self._refresh, args=(hub,))
                timer.daemon = True
                timer.start()
                atexit.register(timer.cancel)  # a run over before it fires starts nothing
        return self._listed

    def _refresh(self, hub: McpHub) -> None:
        self.ensure_started()
        self._remember(hub.tools())

    def allowed(self) -> frozenset[str]:
        """The tools the user's config lets run without asking."""
        return frozenset(tool.name for tool in self.listed() if tool.allowed)

    def _cached(self) -> list[McpTool] | None:
        """Every enabled server's tools as the last run listed them, or None if one is missing
        (the allow list is read from the config, never from the cache)."""
        if self.cache is None:
            return None
        known = self._known()
        found: list[McpTool] = []
        for server in self.servers:
            if not server.enabled:
                continue
            entry = known.get(_key(server))
            if not isinstance(entry, list):
                return None
            try:
                found += [
                    McpTool(**{**tool, "allowed": tool["tool"] in server.allow}) for tool in entry
                ]
            except (TypeError, KeyError):
                return None
        return sorted(found, key=lambda tool: (tool.server, tool.name))

    def _known(self) -> dict[str, Any]:
        """The tool lists kept by earlier runs, by server key (none when the file is missing or
        damaged: the servers are then waited for, and the file written afresh)."""
        try:
            data = json.loads(self.cache.read_text("utf-8")) if self.cache else {}
            known = data.get("servers", {})
        except (OSError, ValueError, AttributeError):
            return {}
        return known if isinstance(known, dict) else {}

    def _remember(self, tools: list[McpTool]) -> None:
        """Keep the servers' tool lists for the next run (a failed server is not kept)."""
        if self.cache is None:
            return
        by_server: dict[str, list[dict[str, Any]]] = {}
        for tool in tools:
            data = dataclasses.asdict(tool)
            data.pop("allowed")
            by_server.setdefault(tool.server, []).append(data)
        known = self._known()
        for server in self.servers:
            if server.name in by_server:
                known[_key(server)] = by_server[server.name]
        with contextlib.suppress(OSError):
            self.cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = self.cache.with_name(f".{self.cache.name}.{os.getpid()}")
            temporary.write_text(json.dumps({"servers": known}), "utf-8")
            temporary.replace(self.cache)


def _unsaid(notices: list[str]) -> list[str]:
    """The notices this process has not said yet (a REPL reassembles its agent: once each)."""
    fresh = [notice for notice in dict.fromkeys(notices) if notice not in _SAID]
    _SAID.update(fresh)
    return fresh


def _key(server: ServerConfig) -> str:
    """A server's identity for the cache: everything that could change what it offers."""
    return hashlib.sha256(repr(server).encode()).hexdigest()


def start_servers(
    settings: Settings, env: Mapping[str, str], workdir: Path, cache: Path | None = None
) -> McpSetup:
    """Start the configured servers in the background (at once: they get ready while the
    snapshot is taken), or reuse the ones this process already started with the same config."""
    servers, notices = servers_from(
        settings.mcp_servers, workdir, settings.project_trusted, env=env
    )
    fresh = _unsaid(notices)
    if not any(server.enabled for server in servers):
        return McpSetup(None, fresh)
    key = repr(servers)
    hub = _HUBS.get(key)
    if hub is None:
        hub = _HUBS[key] = McpHub(servers, env)
    setup = McpSetup(hub, fresh, servers, cache)
    if setup._cached() is None:
        setup.ensure_started()  # tools unknown: start now, they are needed before the request
    return setup


def describe_servers(hub: McpHub) -> list[str]:
    """One line per server (state, tool count, where it is configured) and one per tool, for
    `qac mcp list`, `/mcp` and `qac doctor` (the hub started)."""
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


def _wrap(setup: McpSetup, found: McpTool, images: bool) -> Tool:
    def call(ctx: ToolContext, **arguments: Any) -> Output:
        setup.ensure_started()
        assert setup.hub is not None
        result = setup.hub.call(found.name, arguments)
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
