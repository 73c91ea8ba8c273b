"""Hooks: the user's own commands, run on the host at five points of a run (SessionStart,
UserPromptSubmit, PreToolUse, PostToolUse, Stop), configured in the user's config or a trusted
project's (`[[hooks.EVENT]]`). Each gets one JSON object on stdin; exit 2 refuses a tool call
(PreToolUse) or sends the agent on (Stop); stdout of the prompt events becomes context.

Imports events, errors, sandbox (which runs them) and workspace; never reads the process
environment (it is passed in).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.events import ErrorEvent, Event, HookEvent
from qwen_agent_cli.sandbox import HostResult, run_on_host
from qwen_agent_cli.types import ToolResult
from qwen_agent_cli.workspace import Workspace

EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop")
TOOL_EVENTS = ("PreToolUse", "PostToolUse")
KEYS = frozenset({"matcher", "command", "timeout"})
DEFAULT_TIMEOUT = 60.0
BLOCK_EXIT = 2
MAX_STOP_CONTINUATIONS = 3
"""Times one run goes on because a Stop hook exited 2 (a hook that always does cannot loop)."""
SHOWN_OUTPUT = 2000
"""Characters of a hook's output carried in its `hook` event."""
CONTEXT_LIMIT = 10_000
"""Characters of a hook's stdout (or Stop stderr) handed to the model."""
TOOL_OUTPUT_LIMIT = 100_000
"""Characters of a tool's output a PostToolUse hook receives."""
COMMAND_SHOWN = 300

HostRunner = Callable[..., HostResult]


@dataclass(frozen=True, slots=True)
class Hook:
    """One `[[hooks.EVENT]]` table, checked."""

    event: str
    command: str
    matcher: re.Pattern[str] | None = None
    """Tool names it runs for (a full match); None runs it for all."""
    timeout: float = DEFAULT_TIMEOUT
    source: str = "user config"

    def applies_to(self, tool_name: str) -> bool:
        return self.matcher is None or self.matcher.fullmatch(tool_name) is not None


def parse_hooks(tables: Sequence[tuple[str, str, Mapping[str, Any]]]) -> tuple[Hook, ...]:
    """Check every `[[hooks.EVENT]]` table; a bad one is a ConfigError naming its file, table
    and key (a hook that silently never runs is worse than a refusal to start)."""
    hooks: list[Hook] = []
    counts: dict[tuple[str, str], int] = {}
    for source, event, table in tables:
        counts[source, event] = counts.get((source, event), 0) + 1
        where = f"{source}: [[hooks.{event}]] #{counts[source, event]}"
        if event not in EVENTS:
            raise ConfigError(
                f"{source}: [[hooks.{event}]] is not a hook event; use one of {', '.join(EVENTS)}"
            )
        unknown = set(table) - KEYS
        if unknown:
            raise ConfigError(
                f"{where} has unknown keys: {', '.join(sorted(unknown))} "
                f"(a hook takes {', '.join(sorted(KEYS))})"
            )
        command = table.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"{where}: command must be a non-empty string (a shell command)")
        hooks.append(
            Hook(
                event,
                command,
                _matcher(table.get("matcher"), event, where),
                _timeout(table.get("timeout", DEFAULT_TIMEOUT), where),
                source,
            )
        )
    return tuple(hooks)


def _matcher(value: Any, event: str, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if event not in TOOL_EVENTS:
        raise ConfigError(f"{where}: matcher applies to {' and '.join(TOOL_EVENTS)} only")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: matcher must be a string (a regular expression)")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}: matcher {value!r} is not a valid regex: {exc}") from None


def _timeout(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: timeout must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where}: timeout must be a number of seconds above 0, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class HookRun:
    """One hook's run."""

    hook: Hook
    result: HostResult

    @property
    def asks(self) -> bool:
        """It exited 2: refuse the call (PreToolUse) or go on (Stop)."""
        return self.result.exit_code == BLOCK_EXIT and not self.result.timed_out

    def said(self, stream: str) -> str:
        text = self.result.stdout if stream == "stdout" else self.result.stderr
        return text.strip()[:CONTEXT_LIMIT]


def said_block(event: str, text: str) -> str:
    """A hook's words for the model, marked so they never pass for the user's own."""
    return f"[hook {event} said]\n{text}"


@dataclass
class Hooks:
    """The configured hooks of one session. Tool-event runs are kept in `pending` for the
    agent to emit (`drain`), since the dispatcher returns results, not events."""

    hooks: tuple[Hook, ...] = ()
    session_id: str = ""
    workspace: Workspace | None = None
    """Where hooks run and what QAC_FILE is resolved in; None runs nothing."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The user's environment, which hooks run with (they are the user's own programs)."""
    runner: HostRunner = run_on_host
    pending: list[Event] = field(default_factory=list)
    continued: int = 0
    """Times this run went on because a Stop hook exited 2 (reset by `prompt`, a run's start)."""

    def drain(self) -> list[Event]:
        """The hook and notice events since the last call."""
        events, self.pending = self.pending, []
        return events

    def prompt(self, prompt: str, *, first: bool) -> str:
        """The prompt as stored: SessionStart's (on a session's first run) and
        UserPromptSubmit's stdout appended as marked blocks. Called once at each run's start."""
        self.continued = 0
        parts = [prompt]
        for event in ("SessionStart", "UserPromptSubmit") if first else ("UserPromptSubmit",):
            payload = {"prompt": prompt} if event == "UserPromptSubmit" else {}
            for ran in self._run(event, payload):
                if ran.result.exit_code == 0 and ran.said("stdout"):
                    parts.append(said_block(event, ran.said("stdout")))
        return "\n\n".join(parts)

    def before_tool(self, name: str, args: Mapping[str, Any]) -> str | None:
        """The refusal of the first PreToolUse hook that exits 2, else None."""
        for ran in self._run("PreToolUse", {"tool_input": dict(args)}, tool=(name, args)):
            if ran.asks:
                return ran.said("stderr") or f"the hook `{ran.hook.command}` refused it"
        return None

    def after_tool(self, name: str, args: Mapping[str, Any], result: ToolResult) -> None:
        """PostToolUse: a formatter, a linter, a log; what they return changes nothing."""
        payload = {
            "tool_input": dict(args),
            "tool_output": result.output[:TOOL_OUTPUT_LIMIT],
            "is_error": result.is_error,
        }
        list(self._run("PostToolUse", payload, tool=(name, args)))

    def stop(self, answer: str) -> Generator[Event, None, str | None]:
        """Stop, when the loop would end done: the user message to go on with when a hook
        exits 2 (its stderr), at most MAX_STOP_CONTINUATIONS times a run; else None."""
        more = self.continued < MAX_STOP_CONTINUATIONS
        reasons = [
            ran.said("stderr") or f"the Stop hook `{ran.hook.command}` asked to go on"
            for ran in self._run("Stop", {"last_answer": answer}, stop_blocks=more)
            if ran.asks
        ]
        yield from self.drain()
        if not reasons:
            return None
        if not more:
            yield ErrorEvent.note(
                f"a Stop hook asked to go on again; ignored after {MAX_STOP_CONTINUATIONS} "
                "continuations in this run"
            )
            return None
        self.continued += 1
        return said_block("Stop", "\n\n".join(reasons))

    def _run(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        tool: tuple[str, Mapping[str, Any]] | None = None,
        stop_blocks: bool = True,
    ) -> list[HookRun]:
        chosen = [h for h in self.hooks if h.event == event]
        if tool is not None:
            chosen = [h for h in chosen if h.applies_to(tool[0])]
        if not chosen or self.workspace is None:
            return []
        root = self.workspace.root.resolve()
        env = {**self.env, "QAC_EVENT": event, "QAC_SESSION_ID": self.session_id}
        data: dict[str, Any] = {"event": event, "session_id": self.session_id, "cwd": str(root)}
        if tool is not None:
            env["QAC_TOOL_NAME"] = data["tool_name"] = tool[0]
            path = self._file(tool[1].get("path"))
            if path is not None:
                env["QAC_FILE"] = path
        data.update(payload)
        stdin = json.dumps(data, ensure_ascii=False).encode("utf-8", errors="replace")
        runs: list[HookRun] = []
        for hook in chosen:
            result = self.runner(hook.command, cwd=root, env=env, stdin=stdin, timeout=hook.timeout)
            ran = HookRun(hook, result)
            runs.append(ran)
            blocked = ran.asks and (event == "PreToolUse" or (event == "Stop" and stop_blocks))
            self.pending.append(hook_event(ran, blocked))
            if not (result.exit_code == 0 or blocked or (ran.asks and event == "Stop")):
                self.pending.append(ErrorEvent.note(failure(ran)))
            if blocked and event == "PreToolUse":
                break  # refused: the later hooks would check a call that never runs
        return runs

    def _file(self, path: Any) -> str | None:
        """QAC_FILE: the absolute path of a `path` argument, when it is inside the workspace."""
        if not isinstance(path, str) or self.workspace is None:
            return None
        try:
            resolved = self.workspace.resolve(path)
        except ToolError:
            return None
        root = self.workspace.root.resolve()
        return str(resolved) if resolved.is_relative_to(root) else None


def hook_event(ran: HookRun, blocked: bool) -> HookEvent:
    output = "\n".join(t for t in (ran.result.stdout.strip(), ran.result.stderr.strip()) if t)
    if ran.result.timed_out:
        output = f"{output}\n[timed out after {ran.hook.timeout:g}s; its processes were killed]"
    return HookEvent(
        event=ran.hook.event,
        command=ran.hook.command[:COMMAND_SHOWN],
        exit_code=ran.result.exit_code,
        blocked=blocked,
        duration_s=round(ran.result.duration_s, 3),
        output=output.strip()[:SHOWN_OUTPUT],
    )


def failure(ran: HookRun) -> str:
    """The one line saying a hook failed and was ignored."""
    how = (
        f"timed out after {ran.hook.timeout:g}s and was killed"
        if ran.result.timed_out
        else f"exited {ran.result.exit_code}"
    )
    first = next(iter(ran.result.stderr.strip().splitlines()), "")
    detail = f": {first[:200]}" if first else ""
    return f"{ran.hook.event} hook `{ran.hook.command[:100]}` {how}{detail} (ignored)"
