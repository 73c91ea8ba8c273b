"""What the loop emits, one dataclass per stream-json `type` (DESIGN §8).

UIs and output writers consume these; they carry data only, never terminal markup.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    type: str = "session"
    session_id: str
    model: str
    provider: str
    resumed: bool = False
    instructions: list[dict[str, Any]] = field(default_factory=list)
    cwd: str = ""
    tools: list[str] = field(default_factory=list)
    sandbox: str = ""
    approval: str = ""
    """The instruction files the session's context holds: `{"path": ..., "tokens": ...}`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Thinking:
    type: str = "thinking"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    type: str = "text"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEvent:
    type: str = "tool_call"
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultEvent:
    type: str = "tool_result"
    id: str
    name: str
    output: str
    is_error: bool = False
    diff: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestEvent:
    """A request went to the model and nothing has come back yet: a UI's cue to show that qac
    is waiting. Internal: not a stream-json type, so the writers of DESIGN §8 skip it."""

    type: str = "request"


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageEvent:
    type: str = "usage"
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanEvent:
    """The model's plan changed (update_plan): the whole list of steps, each with its status."""

    type: str = "plan"
    steps: list[dict[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionEvent:
    """Older turns were summarized into a new segment (the store keeps them all)."""

    type: str = "compaction"
    kept_messages: int
    dropped_messages: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent:
    """A problem worth telling the user about; `retrying` says the loop goes on, and `slow`
    that the retry follows a stall or waits a second or more, so it is said on stderr even
    when nobody watches a terminal."""

    type: str = "error"
    message: str
    retrying: bool = False
    slow: bool = False
    notice: bool = False
    """Something the user should know that does not stop the run (a model with no price, a
    session going on in another wire format): said once, on stderr too."""

    @classmethod
    def note(cls, message: str) -> ErrorEvent:
        return cls(message=message, retrying=True, slow=True, notice=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class HookEvent:
    """A configured hook ran (emitted only where hooks are configured). `blocked`: it refused
    a tool call (PreToolUse) or sent the agent on for another turn (Stop)."""

    type: str = "hook"
    event: str
    command: str
    exit_code: int
    blocked: bool = False
    duration_s: float
    output: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    type: str = "result"
    session_id: str
    status: str
    result: str
    turns: int
    usage: dict[str, int | None]
    cost_usd: float
    duration_s: float
    files_changed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    """Overrides the exit code the status maps to (a store that failed mid-run exits 2, not 3);
    not part of the printed result object."""


Event = (
    Session
    | Thinking
    | Text
    | ToolCallEvent
    | ToolResultEvent
    | RequestEvent
    | UsageEvent
    | CompactionEvent
    | PlanEvent
    | ErrorEvent
    | HookEvent
    | Result
)


def until_result(events: Generator[Event, None, None]) -> Generator[Event, None, Result]:
    """The agent's events, its Result held back and returned. A Ctrl-C thrown in here is passed
    on to the agent at the point it yielded, so the agent is the one that handles it."""
    interrupt: BaseException | None = None
    while True:
        try:
            event = next(events) if interrupt is None else events.throw(interrupt)
        except StopIteration:
            raise RuntimeError("the agent stopped without a Result") from None
        interrupt = None
        if isinstance(event, Result):
            return event
        try:
            yield event
        except KeyboardInterrupt as exc:
            interrupt = exc
