"""The loop (DESIGN §5): send the conversation, stream the reply, persist it, run its tool calls
through approval and the executor, persist each result, repeat; budgets and stalls end it.

Emits events only; never prints, and never touches HTTP, SQL or processes directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from qwen_agent_cli import context
from qwen_agent_cli.approval import ApprovalRequest, Approver, Policy, decide
from qwen_agent_cli.errors import DeadlineError, ProviderError, ToolError
from qwen_agent_cli.events import (
    ErrorEvent,
    Event,
    Result,
    Session,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from qwen_agent_cli.stalls import Stalls
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.tools import ToolRegistry
from qwen_agent_cli.types import Message, SessionInfo, Status, ToolCall, ToolResult, Usage

NOT_RUN = "not run: the previous run ended before this call was executed"


class ChatModel(Protocol):
    """Streams one reply; yields Thinking/Text/ErrorEvent and returns the complete Message."""

    @property
    def model(self) -> str: ...

    def stream(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]],
        *,
        deadline: float | None = None,
    ) -> Generator[Event, None, Message]: ...


@dataclass(frozen=True, slots=True)
class Budgets:
    max_turns: int = 50
    max_cost: float | None = None
    timeout: float | None = None
    stuck_warn_after: int = 3
    stuck_stop_after: int = 6


def system_message(session: SessionInfo) -> str:
    """The one system message: the static prompt plus the snapshot stored with the session."""
    return f"{session.system_prompt}\n\n# Repository context\n\n{session.context}"


class Agent:
    def __init__(
        self,
        *,
        model: ChatModel,
        store: SessionStore,
        session: SessionInfo,
        registry: ToolRegistry,
        policy: Policy,
        approver: Approver,
        budgets: Budgets,
        workdir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.store = store
        self.session = session
        self.registry = registry
        self.policy = policy
        self.approver = approver
        self.budgets = budgets
        self.workdir = workdir
        self.clock = clock

    def run(self, prompt: str, *, resumed: bool = False) -> Generator[Event, None, None]:
        """One user turn to completion; always ends with a Result event."""
        started = self.clock()
        deadline = started + self.budgets.timeout if self.budgets.timeout else None
        session = self.session
        yield Session(
            session_id=session.id, model=session.model, provider=session.provider, resumed=resumed
        )
        before = context.file_fingerprints(self.workdir)
        messages = self.store.messages(session.id)
        for dangling in _unanswered_calls(messages):
            self._append(messages, dangling)
        self._append(messages, Message(role="user", content=prompt))
        turns, usage, status, answer = 0, Usage(), Status.DONE, ""
        stalls = Stalls(self.budgets.stuck_warn_after, self.budgets.stuck_stop_after)
        changed: set[str] = set()
        system = system_message(session)
        try:
            while True:
                status = self._budget_status(turns, usage, deadline)
                if status is not Status.DONE:
                    break
                reply = yield from self.model.stream(
                    system, messages, session.tools, deadline=deadline
                )
                self._append(messages, reply)
                turns += 1
                if reply.usage is not None:
                    usage += reply.usage
                    yield UsageEvent(**reply.usage.to_dict())
                if reply.interrupted:
                    status = Status.INTERRUPTED
                    break
                if not reply.tool_calls:
                    answer = reply.content or ""
                    break
                for call in reply.tool_calls:
                    yield ToolCallEvent(id=call.id, name=call.name, arguments=call.arguments)
                    result = self._execute(call)
                    changed.update(result.files_changed)
                    output = stalls.record(call, result)
                    self._append(messages, _tool_message(result, output))
                    yield ToolResultEvent(
                        id=call.id,
                        name=call.name,
                        output=output,
                        is_error=result.is_error,
                        diff=result.diff,
                    )
                if stalls.stuck_on is not None:
                    status, answer = (
                        Status.STUCK,
                        f"stopped: the model kept repeating {stalls.stuck_on}",
                    )
                    break
        except DeadlineError:
            status = Status.TIMEOUT
        except ProviderError as exc:
            status, answer = Status.ERROR, str(exc)
            yield ErrorEvent(message=str(exc))
        except KeyboardInterrupt:
            status = Status.INTERRUPTED
        self.store.set_status(session.id, status.value)
        changed.update(context.changed_since(self.workdir, before))
        yield Result(
            session_id=session.id,
            status=status.value,
            result=answer,
            turns=turns,
            usage={
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": usage.cached_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            cost_usd=round(usage.cost_usd, 6),
            duration_s=round(self.clock() - started, 3),
            files_changed=sorted(changed),
        )

    def _budget_status(self, turns: int, usage: Usage, deadline: float | None) -> Status:
        if turns >= self.budgets.max_turns:
            return Status.MAX_TURNS
        if self.budgets.max_cost is not None and usage.cost_usd >= self.budgets.max_cost:
            return Status.MAX_COST
        if deadline is not None and self.clock() >= deadline:
            return Status.TIMEOUT
        return Status.DONE

    def _append(self, messages: list[Message], message: Message) -> None:
        self.store.append_message(self.session.id, message)
        messages.append(message)

    def _execute(self, call: ToolCall) -> ToolResult:
        """Parse, approve, run; every failure becomes an error result for the model."""
        try:
            found, args = self.registry.parse(call)
        except ToolError as exc:
            return ToolResult(call.id, call.name, str(exc), is_error=True)
        command = args.get("command") if call.name == "shell" else None
        if call.name == "run_tests":
            command = self.registry.ctx.settings.test_cmd
        summary = command or (
            f"edit {args.get('path')}"
            if not found.read_only and "path" in args
            else json.dumps(args, ensure_ascii=False)[:500]
        )
        request = ApprovalRequest(call.name, summary, command, found.read_only)
        if self.policy.needs_asking(request):
            request = replace(request, preview=self.registry.preview(call.name, args))
        decision = decide(self.policy, request, self.approver)
        if not decision.allowed:
            reason = decision.reason or "the user declined"
            return ToolResult(call.id, call.name, f"refused: {reason}", is_error=True)
        if decision.command and call.name == "shell" and decision.command != command:
            result = self.registry.invoke(found, call, {**args, "command": decision.command})
            note = f"[the user edited the command before running it: {decision.command}]\n"
            return replace(result, output=note + result.output)
        return self.registry.invoke(found, call, args)


def _tool_message(result: ToolResult, output: str) -> Message:
    return Message(
        role="tool",
        content=output,
        tool_call_id=result.call_id,
        name=result.name,
        is_error=result.is_error,
    )


def _unanswered_calls(messages: Sequence[Message]) -> list[Message]:
    """Results for tool calls a crashed or stopped run never answered, so the history is valid."""
    if not messages or messages[-1].role not in ("assistant", "tool"):
        return []
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    last = next((m for m in reversed(messages) if m.role == "assistant"), None)
    if last is None:
        return []
    return [
        Message(role="tool", content=NOT_RUN, tool_call_id=c.id, name=c.name, is_error=True)
        for c in last.tool_calls
        if c.id not in answered
    ]
