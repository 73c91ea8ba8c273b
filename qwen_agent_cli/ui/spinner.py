"""Signs of life on a terminal: one line with a spinner and the elapsed time while nothing else
moves (a request before its first token, the model thinking out of sight, a tool running).

Drawn with Rich's Live on its own refresh thread, so the clock turns without events; removed
before anything else is printed. Used by the renderer only; never drawn off a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.spinner import Spinner as RichSpinner
from rich.text import Text

from qwen_agent_cli import signals
from qwen_agent_cli.tokens import CHARS_PER_TOKEN

SPINNER = "dots"
REFRESH_PER_SECOND = 8
STYLE = "dim"


def elapsed(seconds: float) -> str:
    """`12s`, `3m 05s`: whole seconds, as a counter that ticks."""
    whole = max(int(seconds), 0)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m {whole % 60:02d}s"


@dataclass(slots=True)
class Wait:
    """What qac is waiting for and since when; `chars` counts streamed text not shown (thinking),
    reported as an estimate of tokens."""

    label: str
    since: float
    chars: int = 0

    def line(self, now: float) -> str:
        """`thinking… 12s · 340 tokens`."""
        parts = [f"{self.label}… {elapsed(now - self.since)}"]
        tokens = self.chars // CHARS_PER_TOKEN
        if tokens:
            parts.append(f"{tokens} tokens")
        return " · ".join(parts)


class WaitLine:
    """A renderable that reads the clock each time it is drawn, so a Live refreshing it on its
    own thread shows the seconds passing."""

    def __init__(self, wait: Wait, clock: Callable[[], float], *, spinner: bool = True) -> None:
        self.wait = wait
        self.clock = clock
        self._spinner = RichSpinner(SPINNER, style=STYLE) if spinner else None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = Text(self.wait.line(self.clock()), style=f"{STYLE} italic")
        if self._spinner is None:
            yield text
            return
        self._spinner.update(text=text)
        yield from self._spinner.__rich_console__(console, options)


class Spinner:
    """The one status line; `show` and `hide` may be called any number of times, in any order.

    Starting and stopping hold a stopping signal until done, so a Ctrl-C never leaves a
    half-started display (and its refresh thread) behind: it is raised once the line is in a
    known state."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self._line: WaitLine | None = None
        self._live: Live | None = None

    @property
    def shown(self) -> bool:
        return self._live is not None

    def show(self, wait: Wait) -> None:
        """Draw the line for `wait` (or switch the drawn line to it)."""
        if self._line is not None and self._live is not None:
            self._line.wait = wait
            return
        self._line = WaitLine(wait, self.clock)
        live = Live(
            self._line,
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        signals.hold()
        try:
            live.start()
            self._live = live
        finally:
            signals.release()

    def hide(self) -> None:
        """Erase the line; nothing else is drawn until the next `show`."""
        live, self._live, self._line = self._live, None, None
        if live is None:
            return
        signals.hold()
        try:
            live.stop()
        finally:
            signals.release()
