"""Compaction (DESIGN §7): when a request would pass a share of the context window, the model
summarizes the task, decisions, constraints and open items; a new segment then starts with a user
message holding that summary and the original task, followed by the most recent turns verbatim,
reasoning included. Nothing stored is deleted: a `compaction` marker opens each segment.

Pure bookkeeping over messages; the loop asks the model and writes the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwen_agent_cli.types import Message

MARKER_ROLE = "compaction"
ESTIMATE_CHARS_PER_TOKEN = 3
INSTRUCTION = """\
The conversation is about to be compacted to fit the context window. Write a summary that lets
you continue the work without the earlier turns. Do not call any tool. Use these headings:
Task (what the user asked, in full), Decisions (what you found and decided, and why),
Constraints (requirements, user preferences, things that must not change), Done (changes made,
files touched, test results), Open items (what remains, next steps)."""
SUMMARY_MESSAGE = """\
[This session was compacted: earlier turns were replaced by this summary. The most recent turns
follow verbatim.]

Original task:
{task}

Summary of the work so far:
{summary}"""


def active(messages: Sequence[Message]) -> list[Message]:
    """The messages of the current segment: everything after the last compaction marker."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == MARKER_ROLE:
            return list(messages[index + 1 :])
    return list(messages)


def estimate(text: str) -> int:
    """A deliberately high token estimate, so budget checks err towards compacting early."""
    return len(text) // ESTIMATE_CHARS_PER_TOKEN + 1


IMAGE_TOKENS = 1600
"""A generous guess at one image's tokens (Qwen's vision encoder spends up to about 1,300 on a
1 MP image; Anthropic's about 1,600): images are never counted by text."""


def message_tokens(message: Message, count: Callable[[str], int]) -> int:
    parts = [message.content or "", message.reasoning or ""]
    parts += [call.arguments for call in message.tool_calls]
    return sum(count(p) for p in parts if p) + 4 + IMAGE_TOKENS * len(message.images)


@dataclass(frozen=True, slots=True)
class Compactor:
    """When to compact and what to keep, for one context window."""

    window: int
    share: float = 0.8
    keep_share: float = 0.25

    @property
    def threshold(self) -> int:
        return int(self.window * self.share)

    def next_request_tokens(self, base: int, messages: Sequence[Message]) -> int:
        """The next request's size: the last reported prompt plus what was added since, or an
        estimate of everything when the server has not reported usage yet."""
        last = max(
            (i for i, m in enumerate(messages) if m.usage is not None and m.usage.prompt_tokens),
            default=None,
        )
        if last is None:
            return base + sum(message_tokens(m, estimate) for m in messages)
        usage = messages[last].usage
        assert usage is not None
        added = sum(message_tokens(m, estimate) for m in messages[last + 1 :])
        return usage.prompt_tokens + usage.completion_tokens + added

    def due(self, base: int, messages: Sequence[Message]) -> bool:
        return self.next_request_tokens(base, messages) >= self.threshold

    def recent(self, messages: Sequence[Message], count: Callable[[str], int]) -> list[Message]:
        """The newest whole turns that fit the keep budget; a kept suffix never starts with a
        tool result cut off from its call."""
        budget = int(self.window * self.keep_share)
        used, start = 0, len(messages)
        for index in range(len(messages) - 1, -1, -1):
            used += message_tokens(messages[index], count)
            if used > budget:
                break
            if messages[index].role in ("user", "assistant"):
                start = index
        return list(messages[start:])


def segment(
    summary: str,
    task: str,
    recent: Sequence[Message],
    number: int,
    plan: str = "",
) -> list[Message]:
    """The records that open a new segment: the marker, the summary user message (with the
    current plan, so it outlives the turns that made it), the recent turns (copies, reasoning
    byte for byte)."""
    text = SUMMARY_MESSAGE.format(task=task.strip(), summary=summary)
    if plan:
        text += f"\n\nYour plan so far (update_plan):\n{plan}"
    return [
        Message(role=MARKER_ROLE, content=summary, name=f"segment {number}"),
        Message(role="user", content=text),
        *recent,
    ]


def original_task(messages: Sequence[Message]) -> str:
    return next((m.content or "" for m in messages if m.role == "user"), "")


def segments(messages: Sequence[Message]) -> int:
    return sum(1 for m in messages if m.role == MARKER_ROLE)
