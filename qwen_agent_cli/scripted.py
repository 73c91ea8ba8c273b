"""A scripted model server: a real HTTP server on loopback that speaks OpenAI chat completions
(streaming and plain), plays a list of scripted turns, records every request, checks the
prefix-cache invariant, and injects faults. Used by the tests, `qac demo` and the benchmarks.

Standard library only, so it ships in the wheel and starts in milliseconds.

A turn is a dict:
    {"thinking": "...", "text": "...", "tool_calls": [{"name": "read_file", "arguments": {...}}],
     "usage": {...}, "delay": 0.0, "chunk_delay": 0.0, "pieces": 3,
     "fault": {"status": 429, "retry_after": 1, "message": "..."},
     "cut": "reasoning" | "content" | "tool_args", "empty": true, "reset_prefix": true}
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    until the client hangs up), same_id (every call in the reply gets this id), usage."""
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
    ) -> None:
        self.turns: list[dict[str, Any]] = list(turns or [])
        self.reasoning_field = reasoning_field
        self.model = model
        self.check_prefix = check_prefix
        self.requests: list[dict[str, Any]] = []
        self.credentials: list[str] = []
        """The Authorization header of every POST (tests check where a key is sent)."""
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

    def next_turn(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Record the request, check invariants, and hand out the next turn."""
        with self._lock:
            script_turn = self.turns[self.played] if self.played < len(self.turns) else None
            reset = bool(script_turn and script_turn.get("reset_prefix"))
            self._check(body, reset)
            self.requests.append(body)
            if script_turn is None:
                self.violations.append(f"request {len(self.requests)} has no scripted turn")
                return None
            self.played += 1
            return script_turn

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
        if not self.check_prefix or reset or not self.requests:
            return
        previous = self.requests[-1]
        before = previous.get("messages") or []
        if _canonical(messages[: len(before)]) != _canonical(before):
            self.violations.append(f"request {number} does not extend request {number - 1}")
        if previous.get("tools") != body.get("tools"):
            self.violations.append(f"request {number} changed the tools")

    def cached_tokens(self, body: dict[str, Any]) -> int:
        """A plausible cache hit: the length of the prefix shared with the previous request."""
        if len(self.requests) < 2:
            return 0
        a = json.dumps(self.requests[-2].get("messages"))
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
            if self.path.rstrip("/").endswith("/models"):
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": server.model, "object": "model", "owned_by": "scripted"}],
                    },
                )
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
                server.credentials.append(self.headers.get("Authorization") or "")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            script_turn = server.next_turn(body)
            if script_turn is None:
                self._json(500, {"error": {"message": "scripted server: no turn left to play"}})
                return
            time.sleep(float(script_turn.get("delay", 0)))
            fault = script_turn.get("fault")
            if fault:
                headers = {}
                if fault.get("retry_after") is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                message = fault.get("message", f"scripted fault {fault.get('status', 500)}")
                self._json(int(fault.get("status", 500)), {"error": {"message": message}}, headers)
                return
            if body.get("stream"):
                self._stream(body, script_turn)
            else:
                self._json(200, _completion(server, body, script_turn))

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: dict[str, Any], script_turn: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            delay = float(script_turn.get("chunk_delay", 0))
            stall_after = script_turn.get("stall_after")
            try:
                for number, chunk in enumerate(_chunks(server, body, script_turn)):
                    if chunk is None or server.stopped.is_set():
                        return
                    if stall_after is not None and number == int(stall_after):
                        # Keep the connection open and send nothing, as a hung server does.
                        server.stopped.wait(float(script_turn.get("stall_for", 3600)))
                        return
                    self.wfile.write(b"data: " + chunk.encode() + b"\n\n")
                    self.wfile.flush()
                    if delay:
                        time.sleep(delay)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


def _pieces(text: str, count: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(count, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _calls(script_turn: dict[str, Any]) -> list[dict[str, str]]:
    calls = []
    for index, call in enumerate(script_turn.get("tool_calls") or []):
        args = call.get("arguments", {})
        raw = args if isinstance(args, str) else json.dumps(args)
        ident = call.get("id") or script_turn.get("same_id")
        calls.append(
            {
                "id": ident or f"call_{index}_{zlib.crc32(raw.encode()):08x}",
                "name": call["name"],
                "arguments": raw,
            }
        )
    return calls


def _usage(server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]) -> Any:
    if "usage" in script_turn:
        return script_turn["usage"]
    thinking = script_turn.get("thinking") or ""
    produced = len(thinking) + len(script_turn.get("text") or "")
    produced += sum(len(c["arguments"]) for c in _calls(script_turn))
    prompt = len(json.dumps(body.get("messages"))) // 4
    return {
        "prompt_tokens": prompt,
        "completion_tokens": produced // 4 + 1,
        "total_tokens": prompt + produced // 4 + 1,
        "prompt_tokens_details": {"cached_tokens": server.cached_tokens(body)},
        "completion_tokens_details": {"reasoning_tokens": len(thinking) // 4},
    }


def _chunks(
    server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]
) -> Iterator[str | None]:
    """The SSE data payloads of one turn; None means: cut the connection here."""
    field = script_turn.get("reasoning_field", server.reasoning_field)
    count = int(script_turn.get("pieces", 3))
    cut = script_turn.get("cut")
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model", server.model),
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
                **top,
            }
        )

    if script_turn.get("empty"):
        yield chunk({"role": "assistant", "content": ""}, "stop")
        return
    yield chunk({"role": "assistant", "content": None, field: ""})
    while script_turn.get("endless"):  # until the client hangs up or the server stops
        yield chunk({"content": script_turn.get("text") or "and so on " * 100})
    thinking = _pieces(script_turn.get("thinking") or "", count)
    for index, piece in enumerate(thinking):
        if cut == "reasoning" and index == len(thinking) // 2:
            yield None
        yield chunk({field: piece})
    text = _pieces(script_turn.get("text") or "", count)
    for index, piece in enumerate(text):
        if cut == "content" and index == len(text) // 2:
            yield None
        yield chunk({"content": piece})
    calls = _calls(script_turn)
    for index, call in enumerate(calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    }
                ]
            }
        )
        parts = _pieces(call["arguments"], count)
        for number, part in enumerate(parts):
            if cut == "tool_args" and number == len(parts) // 2:
                yield None
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": "",
                            "type": "function",
                            "function": {"arguments": part},
                        }
                    ]
                }
            )
    if cut:
        yield None
    yield chunk({"content": ""}, "tool_calls" if calls else "stop")
    yield json.dumps(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.get("model", server.model),
            "choices": [],
            "usage": _usage(server, body, script_turn),
        }
    )


def _completion(
    server: ScriptedServer, body: dict[str, Any], script_turn: dict[str, Any]
) -> dict[str, Any]:
    field = script_turn.get("reasoning_field", server.reasoning_field)
    calls = _calls(script_turn)
    message: dict[str, Any] = {"role": "assistant", "content": script_turn.get("text") or ""}
    if script_turn.get("thinking"):
        message[field] = script_turn["thinking"]
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", server.model),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": _usage(server, body, script_turn),
    }


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
