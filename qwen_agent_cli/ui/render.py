"""Rich rendering of loop events for a person: thinking dim, tool calls as one line each,
results summarized, and a closing status line."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from qwen_agent_cli.events import (
    ErrorEvent,
    Event,
    Result,
    Session,
    Text,
    Thinking,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)

ARG_PREVIEW = 70


def describe_call(name: str, arguments: str) -> str:
    """`edit_file(path='src/calc.py', …)`: the call as one short line."""
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return f"{name}({arguments[:ARG_PREVIEW]})"
    if not isinstance(args, dict):
        return f"{name}({arguments[:ARG_PREVIEW]})"
    shown = []
    for key, value in args.items():
        text = repr(value)
        if len(text) > ARG_PREVIEW:
            text = text[: ARG_PREVIEW - 1] + "…"
        shown.append(f"{key}={text}")
    return f"{name}({', '.join(shown)})"


def summarize_result(event: ToolResultEvent) -> str:
    lines = event.output.count("\n") + 1 if event.output else 0
    first = event.output.splitlines()[0] if event.output else ""
    if event.name in ("shell", "run_tests") or event.is_error:
        return f"{first[:100]}" + (f" ({lines} lines)" if lines > 1 else "")
    if event.name in ("write_file", "edit_file"):
        return first[:100]
    return f"{lines} lines"


class Renderer:
    """Writes events to a Rich console as they arrive."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.mode = ""

    @classmethod
    def to_stdout(cls) -> Renderer:
        return cls(Console(highlight=False))

    @classmethod
    def to_stderr(cls) -> Renderer:
        return cls(Console(stderr=True, highlight=False))

    def say(self, text: str) -> None:
        """A plain note between events (demo narration)."""
        self._switch("note")
        self.console.print(escape(text), highlight=False)

    def _switch(self, mode: str) -> None:
        if self.mode in ("thinking", "text") and mode != self.mode:
            self.console.print()
        if mode == "thinking" and self.mode != "thinking":
            self.console.print("[dim italic]thinking[/]")
        self.mode = mode

    def write(self, event: Event) -> None:
        match event:
            case Session(session_id=sid, model=model, resumed=resumed):
                verb = "resumed" if resumed else "session"
                self.console.print(f"[dim]{verb} {sid} · {escape(model)}[/]")
            case Thinking(text=text):
                self._switch("thinking")
                self.console.print(escape(text), style="dim", end="", highlight=False)
            case Text(text=text):
                self._switch("text")
                self.console.print(escape(text), end="", highlight=False)
            case ToolCallEvent(name=name, arguments=arguments):
                self._switch("tool")
                self.console.print(f"[bold cyan]●[/] {escape(describe_call(name, arguments))}")
            case ToolResultEvent() as result:
                style = "red" if result.is_error else "dim"
                self.console.print(f"  [{style}]⎿ {escape(summarize_result(result))}[/]")
            case UsageEvent():
                pass
            case ErrorEvent(message=message, retrying=retrying):
                self._switch("error")
                label = "retrying" if retrying else "error"
                self.console.print(f"[yellow]{label}:[/] {escape(message)}")
            case Result() as result:
                self._switch("result")
                self.console.print(status_line(result), style="dim", highlight=False)


def status_line(result: Result) -> str:
    usage = result.usage
    prompt = usage.get("prompt_tokens") or 0
    cached = usage.get("cached_tokens")
    share = f", {cached / prompt:.0%} cached" if cached is not None and prompt else ""
    return (
        f"{result.status} · {result.turns} turns · {prompt} in / "
        f"{usage.get('completion_tokens') or 0} out{share} · ${result.cost_usd:.4f} · "
        f"{result.duration_s:.1f}s · session {result.session_id}"
    )
