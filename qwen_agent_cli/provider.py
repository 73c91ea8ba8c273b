"""Streaming chat completions over the `openai` SDK: the wire rules for thinking, retries, and
the mapping of SDK and transport errors into our error tree.

Owns all HTTP to the model; imports `openai` lazily so commands that never call a model stay fast.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qwen_agent_cli.config import Price, Profile
from qwen_agent_cli.errors import DeadlineError, ProviderError
from qwen_agent_cli.events import ErrorEvent, Event, Text, Thinking
from qwen_agent_cli.types import Message, ToolCall, Usage

if TYPE_CHECKING:
    from openai import OpenAI

CONNECT_TIMEOUT = 10.0
PLACEHOLDER_KEY = "not-needed"


def preload() -> None:
    """Import the SDK ahead of need (called on a thread while the store and context load)."""
    import openai  # noqa: F401


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins, within max_delay."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.base_delay * (2.0**attempt), self.max_delay)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def to_request(
    system: str,
    messages: Sequence[Message],
    profile: Profile,
    *,
    thinking: bool,
    preserve: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build the wire messages and the extra body fields for one request.

    With preservation on, every assistant message carries its reasoning in the profile's
    field(s) and the profile's switch is a JSON `true`. Off, reasoning before the last user
    message is dropped and no switch is sent, as the chat templates do by default.
    """
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for index, message in enumerate(messages):
        keep_reasoning = preserve or index > last_user
        wire.append(_wire_message(message, profile, keep_reasoning))
    return wire, _switches(profile, thinking=thinking, preserve=preserve)


def _wire_message(message: Message, profile: Profile, keep_reasoning: bool) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role != "assistant":
        return {"role": message.role, "content": message.content or ""}
    out: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if keep_reasoning:
        fields = profile.reasoning_fields
        if "reasoning_details" in fields and message.reasoning_details:
            out["reasoning_details"] = list(message.reasoning_details)
        elif message.reasoning is not None:
            for name in fields:
                if name != "reasoning_details":
                    out[name] = message.reasoning
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def _switches(profile: Profile, *, thinking: bool, preserve: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if profile.thinking_switch == "top_level":
        body["enable_thinking"] = thinking
    elif profile.thinking_switch == "chat_template_kwargs":
        body["chat_template_kwargs"] = {"enable_thinking": thinking}
    elif profile.thinking_switch == "reasoning_effort" and not thinking:
        body["reasoning_effort"] = "none"
    elif profile.thinking_switch == "openrouter":
        body["reasoning"] = {"enabled": thinking}
    if preserve and profile.honours_preserve(profile.model):
        if profile.preserve_switch == "top_level":
            body["preserve_thinking"] = True
        elif profile.preserve_switch == "chat_template_kwargs":
            body.setdefault("chat_template_kwargs", {})["preserve_thinking"] = True
    return body


def cost_of(usage: Usage, price: Price | None, reported: float | None = None) -> float:
    """USD for one response, from the price table, else the server's own figure, else 0."""
    if price is None:
        return reported or 0.0
    cached = usage.cached_tokens or 0
    cached_price = price.cached_input if price.cached_input is not None else price.input
    return (
        (usage.prompt_tokens - cached) * price.input
        + cached * cached_price
        + usage.completion_tokens * price.output
    ) / 1_000_000


@dataclass(slots=True)
class _Accumulator:
    """Pieces of one streamed response, joined in arrival order."""

    reasoning: list[str] = field(default_factory=list)
    reasoning_field: str | None = None
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def message(self, model: str, usage: Usage | None, *, interrupted: bool = False) -> Message:
        calls = (
            ()
            if interrupted
            else tuple(
                ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"])
                for i, c in sorted(self.calls.items())
            )
        )
        return Message(
            role="assistant",
            content="".join(self.content) or None,
            reasoning="".join(self.reasoning) if self.reasoning_field else None,
            reasoning_field=self.reasoning_field,
            reasoning_details=tuple(self.details[k] for k in sorted(self.details)) or None,
            tool_calls=calls,
            interrupted=interrupted,
            usage=usage,
            model=model,
        )


class Provider:
    """One model endpoint. `stream` yields Thinking/Text events and returns the final Message."""

    def __init__(
        self,
        profile: Profile,
        api_key: str,
        *,
        thinking: bool = True,
        preserve: bool = True,
        retry: RetryPolicy | None = None,
        request_timeout: float = 600.0,
        price: Price | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self.thinking = thinking
        self.preserve = preserve
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.price = price
        self._api_key = api_key or PLACEHOLDER_KEY
        self._sleep = sleep
        self._client: OpenAI | None = None

    @property
    def model(self) -> str:
        return self.profile.model

    def _sdk(self) -> OpenAI:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                api_key=self._api_key, base_url=self.profile.base_url, max_retries=0
            )
        return self._client

    def stream(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]],
        *,
        deadline: float | None = None,
    ) -> Generator[Event, None, Message]:
        """Send one request, retrying transient failures; a KeyboardInterrupt returns what arrived
        so far as an interrupted message instead of losing it."""
        wire, extra = to_request(
            system, messages, self.profile, thinking=self.thinking, preserve=self.preserve
        )
        attempt = 0
        while True:
            timeout = self._timeout_before(deadline)
            try:
                return (yield from self._attempt(wire, extra, tools, timeout, deadline))
            except _Retryable as exc:
                if attempt >= self.retry.retries:
                    raise ProviderError(
                        f"model API failed after {attempt + 1} attempts: {exc.reason}"
                    ) from exc
                delay = self.retry.delay(attempt, exc.retry_after)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise DeadlineError("the run's time budget ran out while retrying") from exc
                yield ErrorEvent(message=f"{exc.reason}; retrying in {delay:.1f}s", retrying=True)
                self._sleep(delay)
                attempt += 1

    def _timeout_before(self, deadline: float | None) -> float:
        if deadline is None:
            return self.request_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineError("the run's time budget ran out")
        return min(self.request_timeout, remaining)

    def _attempt(
        self,
        wire: list[dict[str, Any]],
        extra: dict[str, Any],
        tools: Sequence[dict[str, Any]],
        timeout: float,
        deadline: float | None,
    ) -> Generator[Event, None, Message]:
        acc = _Accumulator()
        try:
            with _mapped_errors(self.profile):
                chunks = self._open(wire, extra, tools, timeout)
                for chunk in chunks:
                    yield from _absorb(acc, chunk)
                    if deadline is not None and time.monotonic() >= deadline:
                        _close(chunks)
                        raise DeadlineError("the run's time budget ran out mid-response")
        except KeyboardInterrupt:
            return acc.message(self.model, None, interrupted=True)
        if acc.finish_reason is None:
            raise _Retryable("the response stream was cut off before it finished")
        if not (acc.content or acc.reasoning or acc.calls or acc.details):
            raise _Retryable("the model sent an empty response")
        usage = _usage(acc.usage, self.price)
        return acc.message(self.model, usage)

    def _open(
        self,
        wire: list[dict[str, Any]],
        extra: dict[str, Any],
        tools: Sequence[dict[str, Any]],
        timeout: float,
    ) -> Iterable[Any]:
        from openai import NOT_GIVEN

        completions: Any = self._sdk().chat.completions
        chunks: Iterable[Any] = completions.create(
            model=self.model,
            messages=wire,
            tools=list(tools) if tools else NOT_GIVEN,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra or None,
            timeout=_timeout(timeout),
        )
        return chunks

    def list_models(self) -> list[str]:
        """The model ids the endpoint offers (for `qac doctor`)."""
        try:
            with _mapped_errors(self.profile):
                return [m.id for m in self._sdk().models.list(timeout=_timeout(15.0))]
        except _Retryable as exc:
            raise ProviderError(exc.reason) from exc


def _close(chunks: Iterable[Any]) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        close()


def _timeout(total: float) -> Any:
    import openai

    return openai.Timeout(total, connect=min(CONNECT_TIMEOUT, total))


def _absorb(acc: _Accumulator, chunk: Any) -> Iterable[Event]:
    """Fold one chunk into the accumulator, yielding what the UI should see now."""
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        acc.usage = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
    for choice in getattr(chunk, "choices", None) or ():
        delta = choice.delta
        if delta is not None:
            for name in ("reasoning_content", "reasoning"):
                piece = getattr(delta, name, None)
                if isinstance(piece, str):
                    acc.reasoning_field = acc.reasoning_field or name
                    if piece:
                        acc.reasoning.append(piece)
                        yield Thinking(text=piece)
                    break
            for detail in getattr(delta, "reasoning_details", None) or ():
                _merge_detail(acc.details, dict(detail))
            if delta.content:
                acc.content.append(delta.content)
                yield Text(text=delta.content)
            for call in delta.tool_calls or ():
                slot = acc.calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    slot["id"] = call.id
                if call.function is not None:
                    if call.function.name:
                        slot["name"] = call.function.name
                    if call.function.arguments:
                        slot["arguments"] += call.function.arguments
        if choice.finish_reason:
            acc.finish_reason = choice.finish_reason


def _merge_detail(details: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    """OpenRouter streams reasoning_details in pieces that share an index; join their text."""
    index = int(piece.get("index", len(details)))
    current = details.get(index)
    if current is None:
        details[index] = piece
        return
    for key, value in piece.items():
        if key in ("text", "summary", "data") and isinstance(value, str):
            current[key] = current.get(key, "") + value
        elif key not in current or current[key] in (None, ""):
            current[key] = value


def _usage(raw: dict[str, Any] | None, price: Price | None) -> Usage | None:
    """Normalise the final usage chunk across providers (wire-formats.md §4)."""
    if raw is None:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens", raw.get("cached_tokens"))
    reasoning = completion_details.get("reasoning_tokens", raw.get("reasoning_tokens"))
    usage = Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached) if cached is not None else None,
        reasoning_tokens=int(reasoning) if reasoning is not None else None,
    )
    reported = raw.get("cost")
    cost = cost_of(usage, price, float(reported) if isinstance(reported, int | float) else None)
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=cost,
    )


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _mapped_errors:
    """Turn SDK and transport exceptions into _Retryable or ProviderError, in one place."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None or isinstance(
            exc, KeyboardInterrupt | GeneratorExit | _Retryable | ProviderError
        ):
            return
        import openai

        where = self.profile.base_url
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _server_message(exc)
            if status == 429 or status >= 500:
                raise _Retryable(
                    f"HTTP {status} from {where}: {message}", _retry_after(exc)
                ) from exc
            hint = ""
            if status in (401, 403):
                key = self.profile.key_env or "the API key"
                hint = f" (check {key}, or pass --api-key-env)"
            elif status == 404:
                hint = f" (is the model {self.profile.model!r} served there?)"
            raise ProviderError(f"HTTP {status} from {where}: {message}{hint}") from exc
        if isinstance(exc, openai.APITimeoutError):
            raise _Retryable(f"the request to {where} timed out") from exc
        if isinstance(exc, openai.APIConnectionError):
            raise _Retryable(f"cannot connect to {where}: {exc.__cause__ or exc}") from exc
        if isinstance(exc, openai.APIError):
            raise _Retryable(f"bad response from {where}: {exc}") from exc
        if _is_transport_error(exc):
            raise _Retryable(f"connection to {where} failed mid-response: {exc}") from exc


def _is_transport_error(exc: BaseException) -> bool:
    """httpx-family errors raised while iterating a stream, whichever httpx the SDK uses."""
    return any(
        cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
        for cls in type(exc).__mro__
    ) or isinstance(exc, ConnectionError | json.JSONDecodeError)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", exc))


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
