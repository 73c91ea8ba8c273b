"""A question answered with one key, no Enter (the approval question). prompt_toolkit reads the
key: it puts the terminal in raw mode for the question and gives it back on every way out,
an exception or a signal included, and it tells Esc alone from the escape sequences that
arrow and function keys send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl

ESCAPE = "escape"
INTERRUPT = "c-c"
"""What `read_key` returns for Ctrl-C: the caller decides what an interrupt means there."""
ESCAPE_WAIT = 0.1
"""Seconds to wait after Esc for the rest of an escape sequence (an arrow key) before Esc is
taken as Esc alone. prompt_toolkit's default, half a second, feels slow for a "no"."""


def read_key(question: str, answers: Mapping[str, str], hint: str, **io: Any) -> str:
    """The key pressed among `answers` (lower-case letters, each with the word shown after the
    question once chosen), ESCAPE for Esc or Ctrl-D, INTERRUPT for Ctrl-C. Enter is ignored;
    any other key shows `hint` and waits. `io`: prompt_toolkit's `input` and `output`."""
    state = {"shown": "", "hint": ""}
    bindings = KeyBindings()

    def answer(event: KeyPressEvent, key: str, shown: str) -> None:
        if not event.app.is_done:
            state["shown"], state["hint"] = shown, ""
            event.app.exit(result=key)

    for key, shown in answers.items():
        for variant in {key, key.upper()}:
            bindings.add(variant)(lambda event, key=key, shown=shown: answer(event, key, shown))
    bindings.add("escape", eager=True)(lambda event: answer(event, ESCAPE, "no"))
    bindings.add("c-d")(lambda event: answer(event, ESCAPE, "no"))
    bindings.add("c-c")(lambda event: answer(event, INTERRUPT, "interrupted"))

    @bindings.add("<any>")
    def _other(event: KeyPressEvent) -> None:
        state["hint"] = hint

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        """Ignored: "y" then Enter, typed by habit, must not put a hint under the next question."""

    def text() -> StyleAndTextTuples:
        parts: StyleAndTextTuples = [("bold", question)]
        if state["shown"]:
            parts.append(("", state["shown"]))
        elif state["hint"]:
            parts.append(("italic", f"  ({state['hint']})"))
        return parts

    app: Application[str] = Application(
        layout=Layout(Window(FormattedTextControl(text), wrap_lines=True, dont_extend_height=True)),
        key_bindings=bindings,
        **io,
    )
    app.ttimeoutlen = ESCAPE_WAIT
    return app.run()
