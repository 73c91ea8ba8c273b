"""Rich consoles for qac's own streams. A terminal is wrapped at its width; a pipe or a file is
not wrapped at all, so `qac demo | cat`, a CI log or a `grep` sees each line whole, as written,
instead of cut at Rich's default of 80 columns."""

from __future__ import annotations

from rich.console import Console

UNWRAPPED_WIDTH = 1_000_000
"""Wide enough that nothing wraps. Renderables that fill their width (Markdown's code blocks
and rules) must not be printed to such a console: the renderer prints Markdown's source to a
console that soft-wraps."""


def stream_console(*, stderr: bool = False) -> Console:
    """The console for stdout (or stderr): wrapped on a terminal, never wrapped elsewhere."""
    console = Console(stderr=stderr, highlight=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)
