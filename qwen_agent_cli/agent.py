"""The loop (DESIGN §5): send the conversation, stream the reply, persist it, run its tool calls
through approval and the executor, persist each result, repeat; budgets and stalls end it.

Emits events only; never prints, and never touches HTTP, SQL or processes directly.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Protocol

from qwen_agent_cli import compaction, context
from qwen_agent_cli.budgets import Budgets
from qwen_agent_cli.compaction import Compactor
from qwen_agent_cli.dispatch import Dispatcher
from qwen_agent_cli.errors import DeadlineError, ProviderError, StoreError
from qwen_agent_cli.events import (
    CompactionEvent,
    ErrorEvent,
    Event,
    PlanEvent,
    RequestEvent,
    Result,
    Session,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from qwen_agent_cli.history import tool_message, unanswered_calls
from qwen_agent_cli.hooks import Hooks
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.stalls import MAX_NUDGES, MISPLACED_CALL, Stalls, misplaced_call
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.text import encodable_message
from qwen_agent_cli.tokens import count_tokens
from qwen_agent_cli.tools.plan import PLAN_TOOL, current_plan, plan_text, steps_of
from qwen_agent_cli.types import Image, Message, SessionInfo, Status, Usage


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
        dispatcher: Dispatcher,
        budgets: Budgets,
        repository: Repository | None,
        compactor: Compactor | None = None,
        clock: Callable[[], float] = time.monotonic,
        notices: Sequence[str] = (),
        hooks: Hooks | None = None,
        facts: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.session = session
        self.dispatcher = dispatcher
        self.budgets = budgets
        self.compactor = compactor
        self.repository = repository
        self.clock = clock
        self.notices = list(notices)
        """Said once, at the start of the next run (then forgotten)."""
        self.hooks = hooks or Hooks()
        self.facts = dict(facts or {})
        """What the session event tells a script: cwd, sandbox and approval modes."""

    def run(
        self, prompt: str, *, resumed: bool = False, images: Sequence[Image] = ()
    ) -> Generator[Event, None, None]:
        """One user turn to completion; always ends with a Result. The history is repaired."""
        started = self.clock()
        deadline = started + self.budgets.timeout if self.budgets.timeout else None
        session = self.session
        before = context.file_fingerprints(self.repository)
        messages = list(map(encodable_message, compaction.active(self.store.messages(session.id))))
        for dangling in unanswered_calls(messages):
            self._append(messages, dangling)
        prompt = self.hooks.prompt(prompt, first=not messages)
        self._append(messages, Message(role="user", content=prompt, images=tuple(images)))
        turns, usage, status, answer, nudges = 0, Usage(), Status.DONE, "", 0
        exit_code: int | None = None
        stalls = Stalls(self.budgets.stuck_warn_after, self.budgets.stuck_stop_after)
        changed: set[str] = set()
        system = system_message(session)
        base = compaction.estimate(system) + compaction.estimate(json.dumps(list(session.tools)))
        try:
            yield Session(
                session_id=session.id,
                model=self.model.model,
                provider=session.provider,
                resumed=resumed,
                instructions=list(session.settings.get("instructions", [])),
                cwd=self.facts.get("cwd", session.workdir),
                tools=session.tool_names(),
                sandbox=self.facts.get("sandbox", ""),
                approval=self.facts.get("approval", ""),
            )
            for notice in self.notices:
                yield ErrorEvent.note(notice)
            self.notices.clear()
            yield from self.hooks.drain()
            while True:
                status = self.budgets.status(turns, usage, deadline, self.clock())
                if status is not Status.DONE:
                    break
                if self.compactor and self.compactor.due(base, messages):
                    messages, spent = yield from self.compact(messages, deadline)
                    usage += spent
                yield RequestEvent()
                reply = yield from self.model.stream(
                    system, messages, session.tools, deadline=deadline
                )
                reply = self._append(messages, reply)
                turns += 1
                if reply.usage is not None:
                    usage += reply.usage
                    yield UsageEvent(**reply.usage.to_dict())
                if reply.interrupted:
                    status = Status.INTERRUPTED
                    break
                if not reply.tool_calls and misplaced_call(reply) and nudges < MAX_NUDGES:
                    nudges += 1
                    self._append(messages, Message(role="user", content=MISPLACED_CALL))
                    continue
                if not reply.tool_calls:
                    answer = reply.content or ""
                    again = yield from self.hooks.stop(answer)
                    if again is None:
                        break
                    self._append(messages, Message(role="user", content=again))
                    continue
                for call in reply.tool_calls:
                    yield ToolCallEvent(id=call.id, name=call.name, arguments=call.arguments)
                    result = self.dispatcher.execute(call)
                    yield from self.hooks.drain()
                    changed.update(result.files_changed)
                    output = stalls.record(call, result)
                    stored = self._append(messages, tool_message(result, output))
                    yield ToolResultEvent(
                        id=call.id,
                        name=call.name,
                        output=stored.content or "",
                        is_error=result.is_error,
                        diff=result.diff,
                    )
                    if call.name == PLAN_TOOL and not result.is_error:
                        yield PlanEvent(steps=steps_of(call.arguments))
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
        except StoreError as exc:  # a full disk, say: what was stored stays; say so and stop
            status, answer, exit_code = Status.ERROR, str(exc), exc.exit_code
            yield ErrorEvent(message=str(exc))
        with contextlib.suppress(StoreError):
            self.store.set_status(session.id, status.value)
        changed.update(context.changed_since(self.repository, before))
        yield Result(
            session_id=session.id,
            status=status.value,
            result=answer,
            turns=turns,
            usage=usage.token_counts(),
            cost_usd=round(usage.cost_usd, 6),
            duration_s=round(self.clock() - started, 3),
            files_changed=sorted(changed),
            exit_code=exit_code,
        )

    def compact(
        self, messages: list[Message], deadline: float | None = None, *, force: bool = False
    ) -> Generator[Event, None, tuple[list[Message], Usage]]:
        """Ask for a summary, then open a new segment: summary + task + recent turns. Does
        nothing when every turn would be kept anyway, unless asked to (then only the last
        turn is kept)."""
        assert self.compactor is not None
        history = list(messages)
        recent = self.compactor.recent(history, count_tokens)
        if force and len(recent) >= len(history) - 1:
            last_user = max((i for i, m in enumerate(history) if m.role == "user"), default=0)
            recent = history[last_user:]
        if len(recent) >= len(history) - 1:
            return messages, Usage()
        self._append(messages, Message(role="user", content=compaction.INSTRUCTION))
        yield RequestEvent()
        reply = yield from self.model.stream(
            system_message(self.session), messages, self.session.tools, deadline=deadline
        )
        self._append(messages, reply)
        everything = self.store.messages(self.session.id)
        opened = compaction.segment(
            reply.content or reply.reasoning or "",
            compaction.original_task(everything),
            recent,
            compaction.segments(everything) + 1,
            plan=plan_text(current_plan(everything)),
        )
        for record in opened:
            self.store.append_message(self.session.id, record)
        yield CompactionEvent(
            kept_messages=len(recent), dropped_messages=len(history) - len(recent)
        )
        return opened[1:], reply.usage or Usage()

    def _append(self, messages: list[Message], message: Message) -> Message:
        """The one way a message enters the history: made encodable, stored, then kept."""
        message = encodable_message(message)
        self.store.append_message(self.session.id, message)
        messages.append(message)
        return message
