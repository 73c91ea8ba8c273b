"""A real MCP server for the tests, on the SDK's low-level Server: one tool per behaviour the
client must handle, with raw schemas the client has to normalise and tools/list in pages.

    python toolbox.py stdio [--pid-file F] [--linger]
                                               serve over stdin/stdout (and, lingering, stay
                                               alive after stdin closes, as some servers do)
    python toolbox.py http|sse                 serve streamable HTTP (or the older SSE transport)
                                               on 127.0.0.1, and print the URL
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PAGE = 3
EMPTY: dict[str, Any] = {"type": "object", "properties": {}}
SHAPES = {
    "title": "shapesArguments",
    "type": "object",
    "properties": {
        "point": {"$ref": "#/$defs/Point", "description": "Where."},
        "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "tree": {"$ref": "#/$defs/Node"},
    },
    "required": ["point", "gone"],
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
TOOLS = [
    types.Tool(
        name="echo",
        description="Echo the text back.",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
    ),
    types.Tool(name="image", description="A tiny PNG.", input_schema=EMPTY),
    types.Tool(name="fail", description="Answer with isError.", input_schema=EMPTY),
    types.Tool(name="hang", description="Never answer.", input_schema=EMPTY),
    types.Tool(name="crash", description="Exit the process mid-call.", input_schema=EMPTY),
    types.Tool(name="resources", description="Embedded resources.", input_schema=EMPTY),
    types.Tool(name="structured", description="Structured content only.", input_schema=EMPTY),
    types.Tool(name="big", description="Too much text.", input_schema=EMPTY),
    types.Tool(name="shapes", description="A schema to normalise.", input_schema=SHAPES),
    types.Tool(name="no.schema here", description=None, input_schema={"type": "object"}),
    types.Tool(name="a" * 70, description="A very long name.", input_schema=EMPTY),
]


def text(value: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=value)]


async def list_tools(
    _ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    more = start + PAGE < len(TOOLS)
    return types.ListToolsResult(
        tools=TOOLS[start : start + PAGE], next_cursor=str(start + PAGE) if more else None
    )


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    arguments = params.arguments or {}
    match params.name:
        case "echo":
            return types.CallToolResult(content=text(str(arguments.get("text", ""))))
        case "image":
            data = base64.b64encode(PNG).decode()
            content: list[types.ContentBlock] = [
                *text("a pixel:"),
                types.ImageContent(type="image", data=data, mime_type="image/png"),
            ]
            return types.CallToolResult(content=content)
        case "fail":
            return types.CallToolResult(content=text("it went wrong"), is_error=True)
        case "hang":
            await anyio.Event().wait()
        case "crash":
            os._exit(3)
        case "resources":
            blob = base64.b64encode(b"\0" * 10).decode()
            return types.CallToolResult(
                content=[
                    types.EmbeddedResource(
                        type="resource",
                        resource=types.TextResourceContents(uri="file:///a.txt", text="inside"),
                    ),
                    types.EmbeddedResource(
                        type="resource",
                        resource=types.BlobResourceContents(
                            uri="file:///b.bin", blob=blob, mime_type="application/octet-stream"
                        ),
                    ),
                ]
            )
        case "structured":
            return types.CallToolResult(content=[], structured_content={"answer": 42})
        case "big":
            return types.CallToolResult(content=text("x" * 150_000))
    return types.CallToolResult(content=text(f"no tool {params.name}"), is_error=True)


SERVER: Server[Any] = Server("toolbox", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio() -> None:
    async with stdio_server() as (read, write):
        await SERVER.run(read, write, SERVER.create_initialization_options())


def sse_app() -> Starlette:
    sse = SseServerTransport("/messages/")

    async def connect(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await SERVER.run(read, write, SERVER.create_initialization_options())
        return Response()

    routes = [Route("/sse", connect, methods=["GET"]), Mount("/messages/", sse.handle_post_message)]
    return Starlette(routes=routes)


def serve_http(transport: str) -> None:
    """Bind first and print the URL after: once the line is read, connections are accepted."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    path = "/mcp" if transport == "http" else "/sse"
    print(f"http://127.0.0.1:{sock.getsockname()[1]}{path}", flush=True)
    app = SERVER.streamable_http_app() if transport == "http" else sse_app()
    config = uvicorn.Config(app, log_level="error", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http", "sse"])
    parser.add_argument("--pid-file")
    parser.add_argument("--linger", action="store_true")
    args = parser.parse_args()
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    if args.transport != "stdio":
        serve_http(args.transport)
    else:
        anyio.run(serve_stdio)
        while args.linger:
            signal.pause()


if __name__ == "__main__":
    main()
