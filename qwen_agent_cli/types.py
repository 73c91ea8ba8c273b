"""Plain data shared by every layer: messages, tool calls, usage, statuses.

Imports nothing from the package; every other module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How a run ended (DESIGN §8)."""

    DONE = "done"
    MAX_TURNS = "max_turns"
    MAX_COST = "max_cost"
    TIMEOUT = "timeout"
    STUCK = "stuck"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    FIXED = "fixed"
    NOT_FIXED = "not_fixed"
    ALREADY_PASSING = "already_passing"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one response (or a sum); None means the server did not say."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=_add_optional(self.cached_tokens, other.cached_tokens),
            reasoning_tokens=_add_optional(self.reasoning_tokens, other.reasoning_tokens),
            cost_usd=self.cost_usd + other.cost_usd,
        )

    def token_counts(self) -> dict[str, int | None]:
        """The DESIGN §8 `usage` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            cached_tokens=data.get("cached_tokens"),
            reasoning_tokens=data.get("reasoning_tokens"),
            cost_usd=float(data.get("cost_usd", 0.0)),
        )


def _add_optional(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call as the model sent it; `arguments` is the raw JSON string, kept verbatim."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image attached to a message. The store keeps its bytes once per content hash; the
    message refers to it by hash, and the wire sends it the same way every time (base64), so
    the prompt prefix stays byte-stable."""

    sha256: str
    mime: str
    data: bytes = field(default=b"", repr=False)

    def ref(self) -> dict[str, str]:
        return {"sha256": self.sha256, "mime": self.mime}


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation message, stored byte for byte and replayed from the store.

    `reasoning` is the model's thinking exactly as streamed; `reasoning_field` records the wire
    name it arrived in, and `reasoning_details` keeps OpenRouter's structured array unchanged.
    `blocks` keeps an Anthropic-format reply's content blocks (thinking with its signature,
    redacted thinking, text, tool use) in arrival order, to send back unmodified; `reasoning`,
    `content` and `tool_calls` hold the same reply read as text, for the UI and the other format.
    """

    role: str
    content: str | None = None
    reasoning: str | None = None
    reasoning_field: str | None = None
    reasoning_details: tuple[dict[str, Any], ...] | None = None
    blocks: tuple[dict[str, Any], ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    images: tuple[Image, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    interrupted: bool = False
    usage: Usage | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "reasoning": self.reasoning,
            "reasoning_field": self.reasoning_field,
            "reasoning_details": list(self.reasoning_details)
            if self.reasoning_details is not None
            else None,
            "blocks": list(self.blocks) if self.blocks is not None else None,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            **({"images": [image.ref() for image in self.images]} if self.images else {}),
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "is_error": self.is_error,
            "interrupted": self.interrupted,
            "usage": self.usage.to_dict() if self.usage else None,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        details = data.get("reasoning_details")
        blocks = data.get("blocks")
        usage = data.get("usage")
        return cls(
            role=str(data["role"]),
            content=data.get("content"),
            reasoning=data.get("reasoning"),
            reasoning_field=data.get("reasoning_field"),
            reasoning_details=tuple(details) if details is not None else None,
            blocks=tuple(blocks) if blocks is not None else None,
            tool_calls=tuple(
                ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=str(c["arguments"]))
                for c in data.get("tool_calls") or ()
            ),
            images=tuple(
                Image(sha256=str(i["sha256"]), mime=str(i["mime"]))
                for i in data.get("images") or ()
            ),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            is_error=bool(data.get("is_error", False)),
            interrupted=bool(data.get("interrupted", False)),
            usage=Usage.from_dict(usage) if usage else None,
            model=data.get("model"),
        )


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool gave back; errors go to the model too, flagged."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    files_changed: tuple[str, ...] = ()
    diff: str = ""
    images: tuple[Image, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A stored session's header: what it is and the exact prefix it replays."""

    id: str
    repository: str
    workdir: str
    provider: str
    model: str
    system_prompt: str
    context: str
    tools: tuple[dict[str, Any], ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    status: str = "open"
    created_at: float = 0.0
    updated_at: float = 0.0

    def tool_names(self) -> list[str]:
        """The offered tools' names, from schemas of either shape (`{"function": {...}}` or
        flat)."""
        return [str(tool.get("function", tool).get("name", "")) for tool in self.tools]
