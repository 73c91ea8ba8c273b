"""Rich rendering of loop events for a person: thinking streamed dim and folded to one line when
the answer starts, tool calls as one line each, edits as colored diffs, the answer as Markdown,
a spinner line with the elapsed time while qac waits (ui/spinner.py), and a status line. Events
in, terminal out; nothing else."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape
from rich.syntax import Syntax
from rich.text import Text as RichText

from qwen_agent_cli.events import (
    CompactionEvent,
    ErrorEvent,
    Event,
    HookEvent,
    PlanEvent,
    RequestEvent,
    Result,
    Session,
    Text,
    Thinking,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from qwen_agent_cli.ui.calls import short_value
from qwen_agent_cli.ui.consoles import stream_console
from qwen_agent_cli.ui.spinner import Spinner, Wait, WaitLine
from qwen_agent_cli.visible import visible
from qwen_agent_cli.words import plural

ARG_PREVIEW = 70
THINKING_TAIL = 6
DIFF_LINES = 60
THINKING_MODES = ("show", "hide", "full")


def describe_call(name: str, arguments: str) -> str:
    """`edit_file(path='src/calc.py', …)`: the call as one short line."""
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return f"{name}({arguments[:ARG_PREVIEW]})"
    if not isinstance(args, dict):
        return f"{name}({arguments[:ARG_PREVIEW]})"
    return f"{name}({', '.join(f'{key}={short_value(value)}' for key, value in args.items())})"


def summarize_result(event: ToolResultEvent) -> str:
    """One line: the first line of a command's output, or how much was read."""
    lines = len(event.output.splitlines())
    first = event.output.splitlines()[0] if event.output else ""
    if event.name in ("shell", "run_tests") or event.is_error:
        return f"{first[:100]}" + (f" ({plural(lines, 'line')})" if lines > 1 else "")
    if event.name in ("write_file", "edit_file"):
        return first[:100]
    return plural(lines, "line")


def hook_line(event: HookEvent) -> str:
    """`hook PreToolUse: ./check.sh · exit 2, blocked · 0.1s`: one line per hook run."""
    command = event.command.splitlines()[0] if event.command else ""
    command = command if len(command) <= ARG_PREVIEW else command[: ARG_PREVIEW - 1] + "…"
    blocked = (", goes on" if event.event == "Stop" else ", blocked") if event.blocked else ""
    return (
        f"hook {event.event}: {command} · exit {event.exit_code}{blocked} · {event.duration_s:.1f}s"
    )


def status_line(result: Result, model: str = "") -> str:
    usage = result.usage
    prompt = usage.get("prompt_tokens") or 0
    cached = usage.get("cached_tokens")
    share = f", {cached / prompt:.0%} cached" if cached is not None and prompt else ""
    who = f"{model} · " if model else ""
    return (
        f"{who}{result.status} · {plural(result.turns, 'turn')} · {prompt} in / "
        f"{usage.get('completion_tokens') or 0} out{share} · ${result.cost_usd:.4f} · "
        f"{result.duration_s:.1f}s · session {result.session_id}"
    )


class Renderer:
    """Writes events to a Rich console as they arrive. `live` animates thinking and Markdown in
    place (a real terminal); without it everything is printed once, in order."""

    def __init__(
        self,
        console: Console,
        *,
        thinking: str = "show",
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.console = console
        self.thinking = thinking
        self.live_enabled = console.is_terminal if live is None else live
        self.clock = clock
        self.model = ""
        self.hint = ""
        """Told after a folded thinking block (the REPL says how to unfold it)."""
        self._block = ""
        self._buffer: list[str] = []
        self._started = 0.0
        self._live: Live | None = None
        self._spinner = Spinner(console, clock)
        self._wait: Wait | None = None
        """What the spinner line says qac waits for (drawn only on a terminal)."""
        self._thought = Wait("thinking", 0.0)
        self._paused = False
        self.shown_diff = ""
        """The diff the approval question just showed: the edit's result does not repeat it."""

    @classmethod
    def to_stdout(cls, thinking: str = "show") -> Renderer:
        return cls(stream_console(), thinking=thinking)

    @classmethod
    def to_stderr(cls) -> Renderer:
        return cls(stream_console(stderr=True))

    def say(self, text: str, style: str = "") -> None:
        """A plain note between events (demo narration, REPL messages, command output)."""
        self.end_block()
        self.console.print(RichText(visible(text), style=style or ""), highlight=False)

    def write(self, event: Event) -> None:
        """Render one event; every string in it is shown, never obeyed (see `visible`)."""
        match event:
            case Session(session_id=sid, model=model, resumed=resumed):
                self.model = model
                self.say(f"{'resumed' if resumed else 'session'} {sid} · {model}", "dim")
            case Thinking(text=text):
                self._stream("thinking", visible(text))
            case Text(text=text):
                self._stream("text", visible(text))
            case ToolCallEvent(name=name, arguments=arguments):
                self.end_block()
                self.console.print(
                    f"[bold cyan]●[/] {escape(visible(describe_call(name, arguments)))}",
                    highlight=False,
                )
            case ToolResultEvent() as result:
                self.end_block()
                style = "red" if result.is_error else "dim"
                self.console.print(
                    f"  [{style}]⎿ {escape(visible(summarize_result(result)))}[/]",
                    highlight=False,
                )
                if result.diff and result.diff != self.shown_diff:
                    self.console.print(diff_renderable(result.diff))
                self.shown_diff = ""
            case UsageEvent() | RequestEvent():
                pass
            case PlanEvent(steps=steps):
                self.end_block()
                marks = {"done": "✓", "in_progress": "▶"}
                self.say("plan:", "bold")
                for step in steps:
                    mark = marks.get(step["status"], "·")
                    style = "dim" if step["status"] == "done" else "bold" if mark == "▶" else ""
                    self.say(f"  {mark} {step['step']}", style)
            case CompactionEvent(kept_messages=kept, dropped_messages=dropped):
                self.say(
                    f"context compacted: {plural(dropped, 'earlier message')} summarized, "
                    f"{kept} kept verbatim (all stay in the store)",
                    "dim",
                )
            case ErrorEvent(message=message, retrying=retrying, notice=notice):
                self.end_block()
                label = "note" if notice else "retrying" if retrying else "error"
                self.console.print(
                    f"[yellow]{label}:[/] {escape(visible(message))}", highlight=False
                )
            case HookEvent() as hook:
                self.say(hook_line(hook), "dim")
            case Result() as result:
                self.end_block()
                self.console.print(
                    RichText(visible(status_line(result, self.model)), style="dim"),
                    highlight=False,
                )
        self._waiting(event)

    def _waiting(self, event: Event) -> None:
        """Set what qac now waits for, after the event: the model after a request (or a retry),
        the model's unshown thinking, a tool after its call. Anything else ends the wait."""
        wait: Wait | None = None
        match event:
            case RequestEvent() | ErrorEvent(retrying=True, notice=False):
                wait = Wait("waiting for the model", self.clock())
            case ToolCallEvent(name=name):
                wait = Wait(f"running {visible(name)}", self.clock())
            case Thinking() if self.thinking == "hide":
                wait = self._thought
        if wait is not self._wait:
            self._spinner.hide()
        self._wait = wait
        self._draw_wait()

    def _draw_wait(self) -> None:
        if self._wait is not None and self.live_enabled and self._live is None and not self._paused:
            self._spinner.show(self._wait)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing of ours drawn while a person answers a question; a wait goes on after it,
        its clock restarted (a tool runs once it is approved)."""
        self._spinner.hide()
        self._paused = True
        try:
            yield
        finally:
            self._paused = False
            if self._wait is not None:
                self._wait.since = self.clock()
            self._draw_wait()

    def close(self) -> None:
        """Settle the display for good: the last block closed, the spinner line erased."""
        self._wait = None
        self.end_block()

    def _stream(self, block: str, text: str) -> None:
        if self._block != block:
            self.end_block()
            self._block, self._buffer, self._started = block, [], self.clock()
            # Thinking time counts from the first thinking token, not from the request.
            self._thought = Wait("thinking", self._started)
            if block == "thinking" and self.thinking == "full":
                self.console.print("thinking", style="dim italic")
            elif self.live_enabled and not (block == "thinking" and self.thinking == "hide"):
                self._live = Live(
                    self._renderable(),
                    console=self.console,
                    refresh_per_second=12,
                    transient=block == "thinking",
                    vertical_overflow="visible",
                )
                self._live.start()
        self._buffer.append(text)
        if block == "thinking":
            self._thought.chars += len(text)
        if block == "thinking" and self.thinking == "full":
            self.console.print(RichText(text, style="dim"), end="", highlight=False)
        elif self._live is not None:
            self._live.update(self._renderable())

    def _renderable(self) -> RenderableType:
        text = "".join(self._buffer)
        if self._block == "text":
            return Markdown(text, hyperlinks=False)
        tail = "\n".join(text.rstrip("\n").splitlines()[-THINKING_TAIL:])
        header = WaitLine(self._thought, self.clock, spinner=False)
        return Group(header, RichText(tail, style="dim"))

    def end_block(self) -> None:
        """Close the streaming block: fold thinking to one line, settle the answer. The spinner
        line goes first: this runs before anything is printed."""
        self._spinner.hide()
        if not self._block:
            return
        text = "".join(self._buffer)
        if self._live is not None:
            self._live.update(self._renderable())
            self._live.stop()
            self._live = None
        if self._block == "thinking":
            if self.thinking == "full":
                self.console.print()
            else:
                lines = len(text.strip().splitlines())
                hint = f"; {self.hint}" if self.hint else ""
                seconds = self.clock() - self._started
                folded = (
                    f"▸ thought for {seconds:.1f}s ({plural(lines, 'line')}{hint})"
                    if self.live_enabled
                    else f"▸ thinking ({plural(lines, 'line')}): {text.strip()}"
                )
                self.console.print(RichText(folded, style="dim italic"), highlight=False)
        elif not self.live_enabled:
            self.markdown(text)
        self._block, self._buffer = "", []

    def markdown(self, text: str) -> None:
        """Settled Markdown (`text` already made visible); its source where lines must not
        wrap (a pipe: Markdown would be laid out at the console's width)."""
        if self.console.soft_wrap:
            self.console.print(RichText(text.rstrip("\n")), highlight=False)
        else:
            self.console.print(Markdown(text, hyperlinks=False))


def diff_renderable(diff: str) -> RenderableType:
    lines = visible(diff).splitlines()
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"… {plural(len(lines) - DIFF_LINES, 'more line')}"]
    return Syntax("\n".join(lines), "diff", theme="ansi_dark", background_color="default")
