"""Streaming replies from the model: retries, timeouts, the cap on one response, and the mapping
of SDK and transport errors into our error tree, shared by both wire formats; and the chat
completions format over the `openai` SDK's HTTP client (request body from `wire`, response
folded by `stream`). The Anthropic Messages format is `anthropic_provider`; `make_provider`
picks one by the profile, so nothing above this layer knows which format is on the wire.

Owns all HTTP to the model; imports each SDK lazily so commands that never call a model (and
runs on the other format) stay fast.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from qwen_agent_cli import hints
from qwen_agent_cli.errors import DeadlineError, ProviderError
from qwen_agent_cli.events import ErrorEvent, Event
from qwen_agent_cli.profiles import Price, Profile
from qwen_agent_cli.stream import Accumulator, absorb
from qwen_agent_cli.types import Message, Usage
from qwen_agent_cli.wire import BodyEncoder

if TYPE_CHECKING:
    from openai import OpenAI

CONNECT_TIMEOUT = 10.0
PLACEHOLDER_KEY = "not-needed"
CHARS_PER_TOKEN_CAP = 16
"""A response longer than max_tokens times this many characters is cut by the client: four
times what a token ever takes, so only a server ignoring max_tokens meets it."""
UNCAPPED_RESPONSE_CHARS = 4 * 1024 * 1024
"""The cap on one response's characters when no max_tokens is sent."""


def preload(wire_format: str = "openai") -> None:
    """Import the format's SDK ahead of need (called on a thread while the store and context
    load)."""
    if wire_format == "anthropic":
        from qwen_agent_cli.anthropic_provider import sdk_module
    else:
        sdk_module = _openai
    sdk_module()


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


class Folding(Protocol):
    """What a format's accumulator offers the shared attempt loop."""

    size: int
    finish_reason: str | None

    def empty(self) -> bool: ...

    def final_usage(self, price: Price | None) -> Usage | None: ...

    def message(self, model: str, usage: Usage | None, *, interrupted: bool = False) -> Message: ...


class Encoder(Protocol):
    def encode(
        self, system: str, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> bytes: ...


class ChatProvider:
    """One model endpoint. `stream` yields Thinking/Text events and returns the final Message;
    a format supplies the body, the opened stream, and how its events fold."""

    def __init__(
        self,
        profile: Profile,
        api_key: str,
        *,
        thinking: bool = True,
        preserve: bool = True,
        retry: RetryPolicy | None = None,
        request_timeout: float = 600.0,
        idle_timeout: float = 90.0,
        price: Price | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self.thinking = thinking
        self.preserve = preserve
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        limit = profile.max_tokens
        self.response_cap = limit * CHARS_PER_TOKEN_CAP if limit else UNCAPPED_RESPONSE_CHARS
        self.price = price
        self._api_key = api_key or PLACEHOLDER_KEY
        self._sleep = sleep
        self._encoder: Encoder

    @property
    def model(self) -> str:
        return self.profile.model

    def encode(
        self, system: str, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> bytes:
        """The request body, from the format's encoder (which keeps what it encoded before)."""
        return self._encoder.encode(system, messages, tools)

    def _open(self, body: bytes, timeouts: Any) -> Iterable[Any]:
        raise NotImplementedError

    def _accumulator(self) -> Folding:
        raise NotImplementedError

    def _fold(self, acc: Any, chunk: Any) -> Iterable[Event]:
        raise NotImplementedError

    def list_models(self) -> list[str]:
        raise NotImplementedError

    def _sdk_module(self) -> ModuleType:
        """The SDK module whose exceptions and timeouts this format uses."""
        raise NotImplementedError

    def _errors(self, wait: float | None = None) -> _mapped_errors:
        return _mapped_errors(self.profile, self._sdk_module(), wait)

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
        body = self.encode(system, messages, tools)
        attempt = 0
        while True:
            _check_deadline(deadline)
            try:
                return (yield from self._attempt(body, deadline))
            except _Retryable as exc:
                if attempt >= self.retry.retries:
                    raise ProviderError(
                        f"model API failed after {attempt + 1} attempts: {exc.reason}; {exc.hint}"
                    ) from exc
                delay = self.retry.delay(attempt, exc.retry_after)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise DeadlineError("the run's time budget ran out while retrying") from exc
                yield ErrorEvent(
                    message=f"{exc.reason}; retrying in {delay:.1f}s",
                    retrying=True,
                    slow=exc.stalled or delay >= 1.0,
                )
                self._sleep(delay)
                attempt += 1

    def _attempt(self, body: bytes, deadline: float | None) -> Generator[Event, None, Message]:
        acc = self._accumulator()
        ends = time.monotonic() + self.request_timeout
        if deadline is not None:
            ends = min(ends, deadline)
        try:
            wait = self._wait(ends)
            with self._errors(wait):
                chunks = self._open(body, self._timeout(wait))
                for chunk in chunks:
                    yield from self._fold(acc, chunk)
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        _close(chunks)
                        raise DeadlineError("the run's time budget ran out mid-response")
                    if now >= ends:
                        _close(chunks)
                        raise _Retryable(
                            f"the response took longer than {self.request_timeout:g}s "
                            "(request_timeout)",
                            hint=hints.TOO_SLOW,
                        )
                    if acc.size > self.response_cap:
                        _close(chunks)
                        acc.finish_reason = "length"
                        yield ErrorEvent(
                            message=f"the response passed {self.response_cap:,} characters, "
                            "more than max_tokens allows; it was cut there"
                        )
                        break
        except KeyboardInterrupt:
            return acc.message(self.model, None, interrupted=True)
        if acc.finish_reason is None:
            raise _Retryable(
                "the response stream was cut off before it finished", hint=hints.CUT_OFF
            )
        if acc.empty():
            raise _Retryable("the model sent an empty response", hint=hints.CUT_OFF)
        return acc.message(self.model, acc.final_usage(self.price))

    def _timeout(self, total: float) -> Any:
        return self._sdk_module().Timeout(total, connect=min(CONNECT_TIMEOUT, total))

    def _wait(self, ends: float) -> float:
        """Silence allowed while connecting and between chunks: the idle timeout, never past
        the attempt's end."""
        return round(max(min(self.idle_timeout, ends - time.monotonic()), 0.001), 3)


class Provider(ChatProvider):
    """Chat completions (`/chat/completions`) over the `openai` SDK."""

    def __init__(self, profile: Profile, api_key: str, **options: Any) -> None:
        super().__init__(profile, api_key, **options)
        self._client: OpenAI | None = None
        self._encoder = BodyEncoder(profile, thinking=self.thinking, preserve=self.preserve)

    def _sdk(self) -> OpenAI:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                api_key=self._api_key, base_url=self.profile.base_url, max_retries=0
            )
        return self._client

    def _sdk_module(self) -> ModuleType:
        return _openai()

    def _accumulator(self) -> Accumulator:
        return Accumulator()

    def _fold(self, acc: Accumulator, chunk: Any) -> Iterable[Event]:
        return absorb(acc, chunk)

    def _open(self, body: bytes, timeouts: Any) -> Iterable[Any]:
        from openai import Stream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        chunks: Iterable[Any] = self._sdk().post(
            "/chat/completions",
            cast_to=ChatCompletion,
            content=body,
            options={"headers": {"Content-Type": "application/json"}, "timeout": timeouts},
            stream=True,
            stream_cls=Stream[ChatCompletionChunk],
        )
        return chunks

    def list_models(self) -> list[str]:
        """The model ids the endpoint offers (for `qac doctor`)."""
        try:
            with self._errors():
                return [m.id for m in self._sdk().models.list(timeout=self._timeout(15.0))]
        except _Retryable as exc:
            raise ProviderError(exc.reason) from exc


def _openai() -> ModuleType:
    import openai

    return openai


def make_provider(profile: Profile, api_key: str, **options: Any) -> ChatProvider:
    """The provider for the profile's wire format: one interface for the agent, doctor and CI."""
    if profile.format == "anthropic":
        from qwen_agent_cli.anthropic_provider import AnthropicProvider

        return AnthropicProvider(profile, api_key, **options)
    return Provider(profile, api_key, **options)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and deadline - time.monotonic() <= 0:
        raise DeadlineError("the run's time budget ran out")


def _close(chunks: Iterable[Any]) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        close()


class _Retryable(Exception):
    """A failure worth another attempt; `hint` is what the user can do once none is left."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        *,
        stalled: bool = False,
        hint: str = "run `qac doctor` to check the endpoint",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.stalled = stalled
        self.hint = hint


RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error"})
"""Error types of an `error` event mid-stream (Anthropic format) worth another attempt; the
HTTP status of such a response is 200, so its type is all there is to go on."""


class _mapped_errors:
    """Turn SDK and transport exceptions into _Retryable or ProviderError, in one place, for
    either SDK (both raise the same family of exceptions)."""

    def __init__(self, profile: Profile, sdk: ModuleType, wait: float | None = None) -> None:
        self.profile = profile
        self.sdk = sdk
        self.wait = wait

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None or isinstance(
            exc, KeyboardInterrupt | GeneratorExit | _Retryable | ProviderError
        ):
            return
        sdk = self.sdk
        where = self.profile.base_url
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            message = _server_message(exc)
            if status < 300:  # an error event inside a stream that began well
                if _error_type(exc) in RETRYABLE_ERROR_TYPES:
                    raise _Retryable(
                        f"{where} failed mid-response: {message}", hint=hints.OVERLOADED
                    ) from exc
                raise ProviderError(
                    f"{where} failed mid-response: {message}; {hints.refused(status, self.profile)}"
                ) from exc
            if status == 429 or status >= 500:
                hint = hints.RATE_LIMITED if status == 429 else hints.OVERLOADED
                raise _Retryable(
                    f"HTTP {status} from {where}: {message}", _retry_after(exc), hint=hint
                ) from exc
            hint = hints.refused(status, self.profile)
            raise ProviderError(f"HTTP {status} from {where}: {message}; {hint}") from exc
        if isinstance(exc, sdk.APITimeoutError) or _is_read_timeout(exc):
            # Before the first byte or between chunks: the SDK reports both as a timeout.
            silent = f"sent nothing for {self.wait:g}s" if self.wait else "timed out"
            raise _Retryable(f"{where} {silent}", stalled=True, hint=hints.SILENT) from exc
        if isinstance(exc, sdk.APIConnectionError):
            why = hints.connect_reason(exc)
            raise _Retryable(f"cannot connect to {where} ({why})", hint=hints.UNREACHABLE) from exc
        if isinstance(exc, sdk.APIError):
            hint = hints.endpoint(self.profile)
            raise _Retryable(f"bad response from {where}: {exc}", hint=hint) from exc
        if _is_transport_error(exc):
            raise _Retryable(
                f"connection to {where} failed mid-response: {exc}", hint=hints.DROPPED
            ) from exc


def _error_type(exc: Any) -> str:
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _is_read_timeout(exc: BaseException) -> bool:
    return any(cls.__name__ in ("ReadTimeout", "TimeoutException") for cls in type(exc).__mro__)


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
