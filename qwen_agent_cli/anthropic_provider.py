"""The Anthropic Messages format (`POST {base}/v1/messages`) over the official `anthropic` SDK's
HTTP client: the body from `anthropic_wire`, the events folded by `anthropic_stream`, retries,
timeouts and error mapping shared with chat completions in `provider`.

The SDK is imported on first use only: it takes about a second to import.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from qwen_agent_cli.anthropic_stream import BlockAccumulator, fold
from qwen_agent_cli.anthropic_wire import AnthropicBodyEncoder
from qwen_agent_cli.errors import ProviderError
from qwen_agent_cli.events import Event
from qwen_agent_cli.profiles import Profile
from qwen_agent_cli.provider import ChatProvider, _Retryable

if TYPE_CHECKING:
    from anthropic import Anthropic


def sdk_module() -> ModuleType:
    import anthropic

    return anthropic


def sdk_base_url(base_url: str) -> str:
    """The root the SDK appends `/v1/messages` to: a URL given with a trailing `/v1` (as for
    chat completions, a common slip) is taken without it."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class AnthropicProvider(ChatProvider):
    """Anthropic Messages over the `anthropic` SDK."""

    def __init__(self, profile: Profile, api_key: str, **options: Any) -> None:
        super().__init__(profile, api_key, **options)
        self._client: Anthropic | None = None
        self._encoder = AnthropicBodyEncoder(
            profile, thinking=self.thinking, preserve=self.preserve
        )

    def _sdk(self) -> Anthropic:
        if self._client is None:
            from anthropic import Anthropic

            # Every credential and the endpoint are passed explicitly, so the SDK consults no
            # ANTHROPIC_* variable or profile file for them: the key is the one qac chose.
            self._client = Anthropic(
                api_key=self._api_key,
                base_url=sdk_base_url(self.profile.base_url),
                max_retries=0,
            )
        return self._client

    def _sdk_module(self) -> ModuleType:
        return sdk_module()

    def _accumulator(self) -> BlockAccumulator:
        return BlockAccumulator()

    def _fold(self, acc: BlockAccumulator, chunk: Any) -> Iterable[Event]:
        return fold(acc, chunk)

    def _open(self, body: bytes, timeouts: Any) -> Iterable[Any]:
        from anthropic import Stream
        from anthropic.types import Message as SdkMessage

        # Raw event objects (Stream[object]): the blocks are kept as the server wrote them.
        events: Iterable[Any] = self._sdk().post(
            "/v1/messages",
            cast_to=SdkMessage,
            content=body,
            options={"headers": {"Content-Type": "application/json"}, "timeout": timeouts},
            stream=True,
            stream_cls=Stream[object],
        )
        return events

    def list_models(self) -> list[str]:
        """The model ids the endpoint offers (for `qac doctor`); a server without the models
        route (several Anthropic-compatible ones) answers 404, which says it is reachable."""
        import anthropic

        try:
            with self._errors():
                page = self._sdk().models.list(timeout=self._timeout(15.0))
                return [m.id for m in page.data]
        except ProviderError as exc:
            if isinstance(exc.__cause__, anthropic.NotFoundError):
                return []
            raise
        except _Retryable as exc:
            raise ProviderError(exc.reason) from exc
