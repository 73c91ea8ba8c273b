"""One streamed response, folded chunk by chunk into a Message: reasoning, text, tool calls,
OpenRouter's reasoning_details, and the final usage with its cost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qwen_agent_cli.events import Event, Text, Thinking
from qwen_agent_cli.profiles import Price
from qwen_agent_cli.types import Message, ToolCall, Usage


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
class Accumulator:
    """Pieces of one streamed response, joined in arrival order."""

    reasoning: list[str] = field(default_factory=list)
    reasoning_field: str | None = None
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    size: int = 0

    def empty(self) -> bool:
        return not (self.content or self.reasoning or self.calls or self.details)

    def final_usage(self, price: Price | None) -> Usage | None:
        return usage_of(self.usage, price)

    def message(self, model: str, usage: Usage | None, *, interrupted: bool = False) -> Message:
        calls = () if interrupted else self.tool_calls()
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

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls in index order, each id unique within the reply (a server that repeats an
        id, or sends none, would leave the results unmatchable)."""
        seen: set[str] = set()
        calls = []
        for index, call in sorted(self.calls.items()):
            ident = call["id"] or f"call_{index}"
            while ident in seen:
                ident = f"{ident}_{index}"
            seen.add(ident)
            calls.append(ToolCall(id=ident, name=call["name"], arguments=call["arguments"]))
        return tuple(calls)


def absorb(acc: Accumulator, chunk: Any) -> Iterable[Event]:
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
                        acc.size += len(piece)
                        yield Thinking(text=piece)
                    break
            for detail in getattr(delta, "reasoning_details", None) or ():
                _merge_detail(acc.details, dict(detail))
            if delta.content:
                acc.content.append(delta.content)
                acc.size += len(delta.content)
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
                        acc.size += len(call.function.arguments)
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


def usage_of(raw: dict[str, Any] | None, price: Price | None) -> Usage | None:
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
