"""MCP servers as remote tools: one background thread runs an asyncio loop that connects every
server, lists its tools once, and serves calls made from other threads.

The only module that imports the MCP SDK, lazily (it is slow to import), so a session without
servers pays nothing. Never prints or reads the process environment: notices are returned,
the user's environment is passed in.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from qwen_agent_cli import __version__
from qwen_agent_cli.mcp_config import ServerConfig
from qwen_agent_cli.mcp_shape import McpResult as McpResult
from qwen_agent_cli.mcp_shape import McpTool as McpTool
from qwen_agent_cli.mcp_shape import ServerStatus as ServerStatus
from qwen_agent_cli.mcp_shape import State, parameters_of, shaped_result, tool_name

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from anyio import CancelScope
    from mcp import ClientSession
    from mcp.shared.message import SessionMessage
    from mcp.types import CallToolResult

GUARD_ARGS = ("-I", "-S", str(Path(__file__).with_name("orphan_guard.py")))
"""Python isolated and without site: the guard is stdlib only, and the server's directory
(perhaps a repository) cannot put a module of its own in its way."""
CALL_SLACK = 5.0
"""Seconds past a call's timeout before the caller stops waiting on the loop itself."""
CLOSE_WAIT = 15.0
"""Seconds close() waits: the SDK gives a stdio server 2 s after closing its stdin, then 2 s
after SIGTERM, before SIGKILL."""
READY_GRACE = 2.0
STDERR_TAIL = 300


class _Link:
    """One server's connection; its fields change under the hub's lock."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.state: State = "starting" if config.enabled else "disabled"
        self.error = ""
        self.tools: list[McpTool] = []
        self.session: ClientSession | None = None
        self.scope: CancelScope | None = None
        self.errlog: IO[bytes] | None = None
        self.deadline = 0.0
        self.gone = asyncio.Event()

    def tail(self) -> str:
        """The last line the server wrote on stderr (pread: the server shares the offset)."""
        if self.errlog is None or self.errlog.closed:
            return ""
        handle = self.errlog.fileno()
        start = max(0, os.fstat(handle).st_size - STDERR_TAIL)
        lines = os.pread(handle, STDERR_TAIL, start).decode("utf-8", "replace").splitlines()
        return next((line.strip() for line in reversed(lines) if line.strip()), "")


class McpHub:
    """Every configured server, connected concurrently. Usable from any thread; `call` never
    raises. `wait_ready` settles the tool list once; it never changes after, since it is part
    of the prompt prefix."""

    def __init__(self, servers: list[ServerConfig], env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._links = {s.name: _Link(s) for s in sorted(servers, key=lambda s: s.name)}
        self._lock = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = asyncio.Event()
        self._notices: list[str] | None = None
        self._tools: list[McpTool] = []
        self._by_name: dict[str, tuple[_Link, str]] = {}
        self._closed = False

    def __enter__(self) -> McpHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> McpHub:
        """Connect every enabled server in the background; returns at once."""
        starting = [link for link in self._links.values() if link.state == "starting"]
        if self._thread is not None or self._closed or not starting:
            return self
        for link in starting:
            link.deadline = time.monotonic() + link.config.startup_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="qac-mcp", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def wait_ready(self, timeout: float | None = None) -> list[str]:
        """Block until every server is ready or failed, or its startup_timeout (or `timeout`)
        passed; returns one notice per server left out. A late server stays out."""
        self.start()
        with self._lock:
            if self._notices is None:
                until = max((link.deadline for link in self._links.values()), default=0.0)
                until += READY_GRACE
                if timeout is not None:
                    until = min(until, time.monotonic() + timeout)
                self._lock.wait_for(self._settled, max(0.0, until - time.monotonic()))
            if self._notices is None:  # another thread may have settled while this one waited
                self._settle()
            return list(self._notices or [])

    def tools(self) -> list[McpTool]:
        """The remote tools sorted by server, then tool: the same list all session long."""
        self.wait_ready()
        return list(self._tools)

    def call(self, name: str, arguments: dict[str, Any], timeout: float | None = None) -> McpResult:
        """Run one tool. A timeout, a crash, a protocol error or an unknown tool is an error
        result the model can read, never an exception."""
        self.wait_ready()
        link, tool = self._by_name.get(name, (None, ""))
        if link is None:
            return McpResult(self._unknown(name), is_error=True)
        with self._lock:
            session, loop = link.session, self._loop
            if self._closed or link.state != "ready" or session is None or loop is None:
                why = "the MCP servers were stopped" if self._closed else link.error
                return McpResult(
                    f"MCP server {link.config.name} is not running ({why})", is_error=True
                )
        seconds = timeout if timeout is not None else link.config.timeout
        scopes: list[CancelScope] = []
        work = self._call(link, session, tool, arguments, seconds, scopes)
        try:
            future = asyncio.run_coroutine_threadsafe(work, loop)
        except RuntimeError:  # the loop closed in between
            work.close()
            return McpResult("the MCP servers were stopped", is_error=True)
        try:
            return future.result(seconds + CALL_SLACK)
        except concurrent.futures.TimeoutError:
            self._cancel(future, scopes)
            return McpResult(_timed_out(link, tool, seconds), is_error=True)
        except concurrent.futures.CancelledError:
            return McpResult("the MCP servers were stopped during the call", is_error=True)
        except BaseException:
            self._cancel(future, scopes)  # interrupted: the remote call stops too
            raise

    def status(self) -> list[ServerStatus]:
        """Each server's state, for `qac mcp list` and `/mcp`."""
        with self._lock:
            return [
                ServerStatus(
                    x.config.name, x.state, tuple(t.tool for t in x.tools), x.error, x.config.source
                )
                for x in self._links.values()
            ]

    def close(self) -> None:
        """Stop every server and the loop thread; idempotent, and run at exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if self._thread is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(CLOSE_WAIT)

    def _settled(self) -> bool:
        return all(link.state != "starting" for link in self._links.values())

    def _settle(self) -> None:
        """Freeze what startup gave (under the lock): servers still starting are left out."""
        notices = []
        for link in self._links.values():
            if link.state == "starting":
                self._fail_locked(link, _too_slow(link))
            if link.state == "failed":
                why = link.error if link.error.startswith("did not") else f"stopped ({link.error})"
                notices.append(f"MCP server {link.config.name} {why}; left out")
            for tool in link.tools if link.state == "ready" else ():
                if tool.name not in self._by_name:
                    self._by_name[tool.name] = (link, tool.tool)
                    self._tools.append(tool)
        self._notices = notices

    def _unknown(self, name: str) -> str:
        parts = name.split("__")
        link = self._links.get(parts[1]) if len(parts) > 2 and parts[0] == "mcp" else None
        if link is not None and link.state != "ready":
            return f"MCP server {link.config.name} is not running ({link.error or link.state})"
        return f"unknown MCP tool {name}"

    def _fail_locked(self, link: _Link, error: str) -> None:
        if link.state in ("starting", "ready"):
            link.state, link.error = "failed", error
            if link.scope is not None and self._loop is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(link.scope.cancel)
        self._lock.notify_all()

    def _fail(self, link: _Link, error: str) -> None:
        with self._lock:
            self._fail_locked(link, error)

    def _cancel(self, future: concurrent.futures.Future[McpResult], scopes: list[Any]) -> None:
        """Stop a call: one not begun never begins; one under way leaves its scope."""
        future.cancel()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                for scope in scopes:
                    self._loop.call_soon_threadsafe(scope.cancel)

    def _run(self) -> None:
        """The loop thread. It spawns the stdio servers too, so their parent-death signal (tied
        to the thread that forked them) fires when qac dies, not before."""
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:  # a bug here must not become a thread traceback on the terminal
            for link in self._links.values():
                self._fail(link, f"failed: {_reason(exc)}")
        finally:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        logger = logging.getLogger("mcp")
        if not logger.handlers:  # else Python's last-resort handler prints the SDK's warnings
            logger.addHandler(logging.NullHandler())
        import anyio

        async with anyio.create_task_group() as group:
            for link in self._links.values():
                if link.state == "starting":
                    group.start_soon(self._serve, link)
            await self._stop.wait()
            group.cancel_scope.cancel()

    async def _serve(self, link: _Link) -> None:
        """Connect and list the tools within the startup deadline, then hold the connection
        until stop or the server goes away."""
        import anyio

        with contextlib.ExitStack() as files:
            if link.config.transport == "stdio":
                link.errlog = files.enter_context(tempfile.TemporaryFile())
            try:
                with anyio.move_on_after(max(0.0, link.deadline - time.monotonic())) as scope:
                    with self._lock:
                        if link.state != "starting":  # given up on before the loop got here
                            return
                        link.scope = scope
                    async with contextlib.AsyncExitStack() as stack:
                        session = await self._connect(link, stack)
                        tools = await _list_tools(link.config, session)
                        with self._lock:
                            if link.state != "starting":
                                return
                            link.state, link.session, link.tools = "ready", session, tools
                            scope.deadline = math.inf
                            self._lock.notify_all()
                        await link.gone.wait()
                        self._fail(link, _exited(link))
                if link.state == "starting":
                    self._fail(link, _too_slow(link))
            except Exception as exc:  # the SDK's errors, mapped at this one boundary
                self._fail(link, _start_error(link, exc))

    async def _connect(self, link: _Link, stack: AsyncExitStack) -> ClientSession:
        from mcp import ClientSession
        from mcp.types import Implementation

        config = link.config
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=sys.executable,  # through the guard: it dies with qac (orphan_guard)
                args=[*GUARD_ARGS, str(os.getpid()), _resolve(config, self._env), *config.args],
                env={**self._env, **config.env},
                cwd=config.cwd,
            )
            errlog: Any = link.errlog  # the SDK's hint says TextIO; only fileno() is used
            transport: Any = stdio_client(params, errlog=errlog)
        elif config.transport == "http":
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(
                headers=dict(config.headers), timeout=httpx2.Timeout(30, read=300)
            )
            await stack.enter_async_context(client)
            transport = streamable_http_client(config.url, http_client=client)
        else:
            from mcp.client.sse import sse_client

            transport = sse_client(config.url, headers=dict(config.headers))
        read, write = await stack.enter_async_context(transport)
        info = Implementation(name="qac", version=__version__)
        session = ClientSession(_Watched(read, link.gone), write, client_info=info)
        await stack.enter_async_context(session)
        await session.initialize()
        return session

    async def _call(
        self,
        link: _Link,
        session: ClientSession,
        tool: str,
        arguments: dict[str, Any],
        seconds: float,
        scopes: list[CancelScope],
    ) -> McpResult:
        import anyio
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        name = link.config.name
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            try:
                result = await session.call_tool(tool, arguments, read_timeout_seconds=seconds)
            except MCPError as exc:
                if exc.code == REQUEST_TIMEOUT:
                    return McpResult(_timed_out(link, tool, seconds), is_error=True)
                if exc.code != CONNECTION_CLOSED:
                    return McpResult(
                        f"MCP server {name} refused {tool}: {exc.message}", is_error=True
                    )
                self._fail(link, _exited(link))
                return McpResult(
                    f"MCP server {name} stopped during the call ({link.error})", is_error=True
                )
            except Exception as exc:  # the SDK's errors, mapped at this one boundary
                return McpResult(f"MCP tool {tool} on {name} failed: {_reason(exc)}", is_error=True)
            return _result(result)
        return McpResult(f"the call to MCP tool {tool} on {name} was cancelled", is_error=True)


class _Watched:
    """The transport's read stream, setting `gone` when it ends: the server went away."""

    def __init__(self, stream: Any, gone: asyncio.Event) -> None:
        self._stream, self._gone = stream, gone

    @property
    def last_context(self) -> Any:
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        import anyio

        try:
            item: SessionMessage | Exception = await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._gone.set()
            raise
        return item

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _Watched:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _list_tools(config: ServerConfig, session: ClientSession) -> list[McpTool]:
    """Every page of tools/list, named and normalised, sorted by name."""
    from mcp.types import PaginatedRequestParams

    found, cursor, seen = [], None, set()
    while True:
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        found.extend(page.tools)
        cursor = page.next_cursor
        if not cursor or cursor in seen:  # a repeated cursor would loop forever
            break
        seen.add(cursor)
    tools: dict[str, McpTool] = {}
    for tool in found:
        name = tool_name(config.name, tool.name)
        description = (tool.description or "").strip()
        schema = parameters_of(tool.input_schema)
        allowed = tool.name in config.allow
        tools.setdefault(name, McpTool(name, config.name, tool.name, description, schema, allowed))
    return [tools[name] for name in sorted(tools)]


def _result(result: CallToolResult) -> McpResult:
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return shaped_result(data.get("content", []), data.get("structuredContent"), result.is_error)


def _resolve(config: ServerConfig, env: Mapping[str, str]) -> str:
    """The command as execvp will find it, looked up here for a clear 'not found'."""
    if config.cwd is not None and not Path(config.cwd).is_dir():
        raise FileNotFoundError(f"its directory {config.cwd} does not exist")
    if "/" in config.command:
        return config.command
    found = shutil.which(config.command, path={**env, **config.env}.get("PATH"))
    if found is None:
        raise FileNotFoundError(f"command not found: {config.command}")
    return found


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED

    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        return "the connection closed"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _start_error(link: _Link, exc: Exception) -> str:
    if link.state != "starting":
        return f"failed: {_reason(exc)}"
    why, tail = _reason(exc), link.tail()
    if why == "the connection closed" and link.config.transport == "stdio":
        why = "it exited"
    return f"did not start: {why}{f' ({tail})' if tail else ''}"


def _exited(link: _Link) -> str:
    if link.config.transport != "stdio":
        return "it closed the connection"
    tail = link.tail()
    return f"it exited: {tail}" if tail else "it exited"


def _too_slow(link: _Link) -> str:
    began = link.deadline - link.config.startup_timeout
    waited = min(link.config.startup_timeout, time.monotonic() - began)
    return f"did not answer within {waited:.0f}s"


def _timed_out(link: _Link, tool: str, seconds: float) -> str:
    return f"MCP tool {tool} on {link.config.name} did not answer within {seconds:g}s (cancelled)"
