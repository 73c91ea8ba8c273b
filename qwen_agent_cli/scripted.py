"""A scripted model server: a real HTTP server on loopback that speaks OpenAI chat completions and
Anthropic Messages (`/v1/messages`, encoded by `scripted_anthropic`), streaming and plain, plays
one list of scripted turns for both, records every request, checks the prefix-cache invariant, and
injects faults. Used by the tests, `qac demo` and the benchmarks.

Standard library only, so it ships in the wheel and starts in milliseconds.

A turn is a dict:
    {"thinking": "...", "text": "...", "tool_calls": [{"name": "read_file", "arguments": {...}}],
     "usage": {...}, "delay": 0.0, "chunk_delay": 0.0, "pieces": 3,
     "fault": {"status": 429, "retry_after": 1, "message": "..."},
     "cut": "reasoning" | "content" | "tool_args", "empty": true, "reset_prefix": true}
In-process only: "gate": a threading.Event the turn waits on ("gate_after": N frames first).
Anthropic only: "redacted": [data, ...], "signature": "...", "stream_error": {type, message}.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qwen_agent_cli import scripted_anthropic as anthropic
from qwen_agent_cli import scripted_openai as openai

DEFAULT_MODEL = "qwen3.6-plus"


def turn(
    *,
    thinking: str | None = None,
    text: str | None = None,
    tool_call: tuple[str, dict[str, Any] | str] | None = None,
    tool_calls: list[tuple[str, dict[str, Any] | str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build one scripted turn; `tool_call=("edit_file", {...})` is the common case.

    Extras: delay (s before answering), chunk_delay, pieces, cut (reasoning | content |
    tool_args: drop the connection there), empty, fault ({status, retry_after, message}),
    stall_after (chunks sent before going silent; stall_for: for how long), endless (content
    until the client hangs up), same_id (every call in the reply gets this id), usage, gate (a
    threading.Event: the server holds the answer until the test sets it, so a test waits for
    what the client shows meanwhile, not for time; gate_after: frames sent before holding).
    Anthropic only: redacted (redacted_thinking data strings), signature, stream_error
    ({type, message})."""
    data: dict[str, Any] = dict(extra)
    if thinking is not None:
        data["thinking"] = thinking
    if text is not None:
        data["text"] = text
    calls = list(tool_calls or []) + ([tool_call] if tool_call else [])
    if calls:
        data["tool_calls"] = [{"name": name, "arguments": args} for name, args in calls]
    return data


class ScriptedServer:
    """Plays `turns` in order, one per chat-completions request."""

    def __init__(
        self,
        turns: list[dict[str, Any]] | None = None,
        *,
        reasoning_field: str = "reasoning_content",
        model: str = DEFAULT_MODEL,
        check_prefix: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        max_model_len: int | None = None,
    ) -> None:
        self.turns: list[dict[str, Any]] = list(turns or [])
        self.reasoning_field = reasoning_field
        self.model = model
        self.check_prefix = check_prefix
        self.max_model_len = max_model_len
        """Reported on GET /v1/models as vLLM does (None: left out, as hosted APIs do)."""
        self.requests: list[dict[str, Any]] = []
        self.formats: list[str] = []
        """"openai" or "anthropic" per request, in the order of `requests`."""
        self.credentials: list[str] = []
        """The Authorization (else x-api-key) header of every POST: where a key is sent."""
        self.timings: list[tuple[float, float]] = []
        """(received, answered) per request, on the monotonic clock, for benchmarks."""
        self.violations: list[str] = []
        self.played = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.stopped = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The base URL for Anthropic clients, which append `/v1/messages` themselves."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def remaining(self) -> int:
        return len(self.turns) - self.played

    def script(self, *turns: dict[str, Any]) -> None:
        with self._lock:
            self.turns.extend(turns)

    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_turn(self, body: dict[str, Any], protocol: str = "openai") -> dict[str, Any] | None:
        """Record the request, check invariants, and hand out the next turn (either protocol)."""
        with self._lock:
            script_turn = self.turns[self.played] if self.played < len(self.turns) else None
            reset = bool(script_turn and script_turn.get("reset_prefix"))
            if protocol == "anthropic":
                previous = self.previous(body, protocol)
                prefix = self.check_prefix and not reset
                found = anthropic.check_request(
                    body, previous if prefix else None, len(self.requests) + 1
                )
                self.violations.extend(found)
            else:
                self._check(body, reset)
            self.requests.append(body)
            self.formats.append(protocol)
            if script_turn is None:
                self.violations.append(f"request {len(self.requests)} has no scripted turn")
                return None
            self.played += 1
            return script_turn

    def previous(self, body: dict[str, Any], protocol: str) -> dict[str, Any] | None:
        """The last request of `protocol` recorded before `body` (or before now, if not recorded):
        each protocol's prefix and cache estimate compare with its own kind of request."""
        index = next((i for i, r in enumerate(self.requests) if r is body), len(self.requests))
        pairs = zip(self.requests[:index], self.formats[:index], strict=False)
        return next((r for r, f in reversed(list(pairs)) if f == protocol), None)

    def _check(self, body: dict[str, Any], reset: bool) -> None:
        messages = body.get("messages") or []
        number = len(self.requests) + 1
        roles = [m.get("role") for m in messages]
        if "developer" in roles:
            self.violations.append(f"request {number} uses the developer role")
        if roles.count("system") > 1 or ("system" in roles and roles[0] != "system"):
            self.violations.append(f"request {number}: the system message must come first, once")
        called = {
            c.get("id")
            for m in messages
            for c in (m.get("tool_calls") or [])
            if isinstance(c, dict)
        }
        for m in messages:
            if m.get("role") == "tool" and m.get("tool_call_id") not in called:
                self.violations.append(f"request {number}: tool result without a call")
        previous = self.previous(body, "openai")
        if not self.check_prefix or reset or previous is None:
            return
        before = previous.get("messages") or []
        if _canonical(messages[: len(before)]) != _canonical(before):
            self.violations.append(f"request {number} does not extend request {number - 1}")
        if previous.get("tools") != body.get("tools"):
            self.violations.append(f"request {number} changed the tools")

    def cached_tokens(self, body: dict[str, Any]) -> int:
        """A plausible cache hit: the length of the prefix shared with the previous request."""
        previous = self.previous(body, "openai")
        if previous is None:
            return 0
        a = json.dumps(previous.get("messages"))
        b = json.dumps(body.get("messages"))
        shared = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            shared += 1
        return shared // 4


def _canonical(messages: list[Any]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if self.path.split("?")[0].rstrip("/").endswith("/models"):
                # Fields of both SDKs' model objects and list pages.
                model: dict[str, object] = {
                    "id": server.model,
                    "object": "model",
                    "owned_by": "scripted",
                }
                model.update(type="model", display_name=server.model, created_at=_CREATED)
                if server.max_model_len is not None:
                    model["max_model_len"] = server.max_model_len
                page = {"object": "list", "data": [model], "has_more": False}
                self._json(200, {**page, "first_id": server.model, "last_id": server.model})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            received = time.monotonic()
            try:
                self._post()
            finally:
                with server._lock:
                    server.timings.append((received, time.monotonic()))

        def _post(self) -> None:
            with server._lock:
                key = self.headers.get("Authorization") or self.headers.get("x-api-key")
                server.credentials.append(key or "")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            path = self.path.split("?")[0].rstrip("/")
            protocol = "anthropic" if path.endswith("/messages") else "openai"
            if protocol == "openai" and not path.endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            script_turn = server.next_turn(body, protocol)
            if script_turn is None:
                message = "scripted server: no turn left to play"
                self._json(500, _error(protocol, 500, {"message": message}))
                return
            time.sleep(float(script_turn.get("delay", 0)))
            if script_turn.get("gate_after") is None:
                _hold(server, script_turn)
            fault = script_turn.get("fault")
            if fault:
                headers = {}
                if fault.get("retry_after") is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                status = int(fault.get("status", 500))
                self._json(status, _error(protocol, status, fault), headers)
            elif protocol == "anthropic":
                with server._lock:
                    previous = server.previous(body, protocol)
                usage = anthropic.usage(body, previous, script_turn)
                if body.get("stream"):
                    frames = anthropic.events(body, script_turn, usage, server.model)
                    self._stream(frames, script_turn, chunked=True)
                else:
                    self._json(200, anthropic.message(body, script_turn, usage, server.model))
            elif body.get("stream"):
                frames = (
                    c if c is None else b"data: " + c.encode() + b"\n\n"
                    for c in openai.chunks(server, body, script_turn)
                )
                self._stream(frames, script_turn, trailer=b"data: [DONE]\n\n")
            else:
                self._json(200, openai.completion(server, body, script_turn))

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _stream(
            self,
            frames: Iterable[bytes | None],
            script_turn: dict[str, Any],
            *,
            trailer: bytes = b"",
            chunked: bool = False,
        ) -> None:
            """Write SSE frames; None drops the connection. Chunked framing (HTTP/1.1) makes that
            drop an error a client sees, not a quiet end of a close-delimited body."""
            if chunked:
                self.protocol_version = "HTTP/1.1"
                self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
            self.end_headers()
            delay = float(script_turn.get("chunk_delay", 0))
            stall_after = script_turn.get("stall_after")
            gate_after = script_turn.get("gate_after")

            def write(data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                self.wfile.flush()

            try:
                for number, frame in enumerate(frames):
                    if frame is None or server.stopped.is_set():
                        return
                    if gate_after is not None and number == int(gate_after):
                        _hold(server, script_turn)
                    if stall_after is not None and number == int(stall_after):
                        # Keep the connection open and send nothing, as a hung server does.
                        server.stopped.wait(float(script_turn.get("stall_for", 3600)))
                        return
                    write(frame)
                    if delay:
                        time.sleep(delay)
                if trailer:
                    write(trailer)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


_CREATED = "2026-01-01T00:00:00Z"


def _hold(server: ScriptedServer, script_turn: dict[str, Any]) -> None:
    """Wait for the turn's gate to open (or the server to stop)."""
    gate = script_turn.get("gate")
    if gate is None:
        return
    while not gate.wait(0.05) and not server.stopped.is_set():
        pass


def _error(protocol: str, status: int, fault: dict[str, Any]) -> dict[str, Any]:
    """The error body of `protocol` for an HTTP error."""
    if protocol == "anthropic":
        return anthropic.error_body(status, fault)
    return {"error": {"message": fault.get("message", f"scripted fault {status}")}}


def load_script(data: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A script file is a list of turns, or {"turns": [...], "reasoning_field": ..., ...}."""
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict) and isinstance(data.get("turns"), list):
        options = {
            k: v for k, v in data.items() if k in ("reasoning_field", "model", "check_prefix")
        }
        return data["turns"], options
    raise ValueError("a script is a JSON list of turns or an object with a 'turns' list")
