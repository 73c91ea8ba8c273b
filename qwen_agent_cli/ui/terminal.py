"""The REPL's conversations with the terminal outside the prompt: Esc as an interrupt while a
turn runs, the approval question, and the first-run trust question.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession

from qwen_agent_cli.approval import MCP_PREFIX, WEB_TOOL, ApprovalRequest, Decision
from qwen_agent_cli.ui.calls import argument_lines
from qwen_agent_cli.ui.keys import ESCAPE, INTERRUPT
from qwen_agent_cli.ui.render import Renderer, diff_renderable
from qwen_agent_cli.words import plural


class EscapeWatcher:
    """While a turn runs, Esc in a real terminal interrupts it like Ctrl-C does. It is stopped,
    and the terminal given back, whenever a person must type (an approval)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: list[Any] | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        started = sys.stdin.isatty() and self._start()
        try:
            yield
        finally:
            if started:
                self._halt()

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        active = self._thread is not None
        if active:
            self._halt()
        try:
            yield
        finally:
            if active:
                self._start()

    def _start(self) -> bool:
        import termios
        import tty

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        mode = termios.tcgetattr(fd)
        mode[3] |= termios.ISIG  # Ctrl-C must raise SIGINT, whatever mode the prompt left
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, args=(fd,), daemon=True)
        self._thread.start()
        return True

    def _halt(self) -> None:
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        if self._saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)

    def _watch(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready and not self._stop.is_set() and os.read(fd, 1) == b"\x1b":
                os.kill(os.getpid(), signal.SIGINT)


def compact_command(command: str) -> str:
    """A command as a person must see it before saying yes: runs of blank lines and of spaces
    counted instead of shown, so nothing can be pushed out of sight below the question."""
    shown = re.sub(
        r"\n\s*\n[\s\n]*",
        lambda m: f"\n[{plural(m.group().count(chr(10)) - 1, 'blank line')}]\n",
        command,
    )
    return re.sub(r"[ \t]{8,}", lambda m: f" [{len(m.group())} spaces] ", shown)


ANSWERS = {
    "y": "yes",
    "n": "no",
    "a": "always",
    "e": "edit",
    "t": "no, with a reason",
}
"""The approval question's keys and what each is called once pressed (`e`: commands only)."""
QUESTION = "allow? y yes · n no · a always (this session) · e edit · t no, say why: "
QUESTION_NO_EDIT = "allow? y yes · n no · a always (this session) · t no, say why: "
"""Under 80 columns; Esc (no) is in the hint a wrong key shows, and in /help."""
YES_NO = {"y": "yes", "n": "no"}
STOPPED = "the user stopped the turn at this question (Ctrl-C); the call was not run"


class TerminalApprover:
    """Asks with one key, no Enter: y yes, n or Esc no, a always (this session), e edit the
    command, t no and a reason for the model; Ctrl-C refuses and stops the turn."""

    def __init__(
        self,
        renderer: Renderer,
        ask: Callable[[str, str], str],
        watcher: EscapeWatcher,
        read_key: Callable[[str, Mapping[str, str], str], str] | None = None,
    ) -> None:
        self.renderer = renderer
        self.ask = ask
        """Reads a line: the reason, the edited command."""
        self.watcher = watcher
        self.read_key = read_key or self._key_from_line
        self.always: set[str] = set()
        self.interrupted = False
        """Ctrl-C answered the last question: the call was refused, and the turn must stop once
        that refusal is stored (the REPL raises the interrupt at the call's result)."""

    def approve(self, request: ApprovalRequest) -> Decision:
        scope = request.command or request.scope
        key = f"{request.tool}:{scope}" if scope else request.tool
        if key in self.always:
            return Decision(True)
        with self.watcher.suspended(), self.renderer.paused():
            return self._ask(request, key)

    def confirm(self, question: str) -> bool:
        """A yes/no question on one key (`y`; `n`, Esc and Ctrl-C are no)."""
        with self.watcher.suspended(), self.renderer.paused():
            self.renderer.end_block()
            answer = self.read_key(question, YES_NO, "press y or n, or Esc for no")
        return answer == "y"

    def _key_from_line(self, question: str, answers: Mapping[str, str], hint: str) -> str:
        """Where no key reader is given (`qac init` reads lines): the line's first letter."""
        answer = self.ask(question, "").strip().lower()[:1]
        return ESCAPE if answer == "\x1b" else answer

    def _show(self, request: ApprovalRequest) -> None:
        """What the call would do: the command as it will run, the edit's diff, or the
        arguments as `key: value` lines; all of it written by the model, so made visible."""
        say = self.renderer.say
        if request.command is not None:
            shown = compact_command(request.command)
            if "\n" in shown.strip():
                say(f"{request.tool} wants to run:", "bold yellow")
                say(textwrap.indent(shown.strip("\n"), "    "))
            else:
                say(f"{request.tool} wants to run: {shown}", "bold yellow")
        elif request.preview:
            say(f"{request.tool} wants to {request.summary}", "bold yellow")
            self.renderer.console.print(diff_renderable(request.preview))
            self.renderer.shown_diff = request.preview
        elif request.arguments and request.tool != WEB_TOOL:
            mcp = request.tool.startswith(MCP_PREFIX)
            what = "call it" if mcp or request.summary.startswith("{") else request.summary
            say(f"{request.tool} wants to {what} with:", "bold yellow")
            for line in argument_lines(request.arguments):
                say(f"  {line}")
        else:
            say(f"{request.tool} wants to {request.summary}", "bold yellow")

    def _ask(self, request: ApprovalRequest, key: str) -> Decision:
        self.renderer.end_block()
        self._show(request)
        editable = request.command is not None
        answers = {k: v for k, v in ANSWERS.items() if editable or k != "e"}
        hint = f"press {', '.join(answers)}, or Esc for no"
        while True:
            answer = self.read_key(QUESTION if editable else QUESTION_NO_EDIT, answers, hint)
            if answer == "y":
                return Decision(True)
            if answer == "a":
                self.always.add(key)
                return Decision(True)
            if answer in ("n", ESCAPE):
                return Decision(False, "the user declined")
            if answer == INTERRUPT:
                self.interrupted = True
                return Decision(False, STOPPED)
            if answer == "t":
                reason = self.ask("reason for the model: ", "").strip()
                return Decision(False, f"the user declined{': ' + reason if reason else ''}")
            if answer == "e" and request.command is not None:
                edited = self.ask("command: ", request.command).strip()
                return Decision(bool(edited), "the user cleared the command", edited)
            if answer:
                self.renderer.say(hint, "dim")


def ask_trust(config: Path, keys: Iterable[str], **io: Any) -> bool:
    """The first-run question for a project whose config wants more than preferences."""
    question = (
        f"{config} sets {', '.join(keys)}: settings that loosen the sandbox or approvals, or "
        "choose where your key is sent. The repository (or a model) may have written them.\n"
        "Trust this project's config? [y/N] "
    )
    try:
        answer = PromptSession[str](**io).prompt(question)
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    sys.stderr.write(f"qac: ignoring {', '.join(keys)} from {config} (not trusted)\n")
    return False
