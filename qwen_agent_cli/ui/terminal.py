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
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession

from qwen_agent_cli.approval import ApprovalRequest, Decision
from qwen_agent_cli.ui.render import Renderer, diff_renderable


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
        r"\n\s*\n[\s\n]*", lambda m: f"\n[{m.group().count(chr(10)) - 1} blank lines]\n", command
    )
    return re.sub(r"[ \t]{8,}", lambda m: f" [{len(m.group())} spaces] ", shown)


class TerminalApprover:
    """Asks y / n (with a reason) / a (always, this session) / e (edit the command)."""

    def __init__(
        self, renderer: Renderer, ask: Callable[[str, str], str], watcher: EscapeWatcher
    ) -> None:
        self.renderer = renderer
        self.ask = ask
        self.watcher = watcher
        self.always: set[str] = set()

    def approve(self, request: ApprovalRequest) -> Decision:
        scope = request.command or request.scope
        key = f"{request.tool}:{scope}" if scope else request.tool
        if key in self.always:
            return Decision(True)
        with self.watcher.suspended(), self.renderer.paused():
            return self._ask(request, key)

    def _ask(self, request: ApprovalRequest, key: str) -> Decision:
        self.renderer.end_block()
        if request.command is not None:
            shown = compact_command(request.command)
            self.renderer.say(f"{request.tool} wants to run: {shown}", "bold yellow")
        else:
            self.renderer.say(f"{request.tool} wants to {request.summary}", "bold yellow")
        if request.preview:
            self.renderer.console.print(diff_renderable(request.preview))
        while True:
            answer = self.ask("allow? [y]es [n]o [a]lways [e]dit: ", "").strip().lower()
            if answer in ("y", "yes"):
                return Decision(True)
            if answer in ("a", "always"):
                self.always.add(key)
                return Decision(True)
            if answer in ("n", "no"):
                reason = self.ask("reason for the model (optional): ", "").strip()
                return Decision(False, f"the user declined{': ' + reason if reason else ''}")
            if answer in ("e", "edit"):
                if request.command is None:
                    self.renderer.say("e edits commands only; answer y, n or a", "dim")
                    continue
                edited = self.ask("command: ", request.command).strip()
                return Decision(bool(edited), "the user cleared the command", edited)


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
