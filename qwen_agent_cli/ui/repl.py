"""The interactive terminal: a prompt_toolkit REPL with slash commands, `@path` attachments,
`!command`, approvals asked in the terminal, interrupts, checkpoints for /undo, and the Rich
renderer. Drives the same Agent as `qac run`; owns nothing below the UI."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import select
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from qwen_agent_cli import compaction, context
from qwen_agent_cli.approval import ApprovalRequest, Decision
from qwen_agent_cli.assemble import (
    Assembly,
    assemble,
    build_executor,
    build_workspace,
    data_dir,
    session_defaults,
)
from qwen_agent_cli.config import APPROVAL_MODES, SANDBOX_MODES, Settings
from qwen_agent_cli.errors import QacError, ToolError
from qwen_agent_cli.events import CompactionEvent, Event, Result
from qwen_agent_cli.guard import read_capped
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message, Usage
from qwen_agent_cli.ui.render import THINKING_MODES, Renderer, diff_renderable
from qwen_agent_cli.workspace import Workspace

SLASH_COMMANDS = {
    "/help": "show this help",
    "/new": "start a new session",
    "/sessions": "list stored sessions",
    "/resume": "/resume ID: switch to a stored session",
    "/model": "/model NAME: use another model",
    "/thinking": "/thinking show|hide|full: how reasoning is shown",
    "/preserve": "/preserve on|off: send earlier reasoning back",
    "/approval": "/approval ask|auto-edit|auto",
    "/sandbox": "/sandbox read-only|workspace-write|off",
    "/cost": "tokens and cost of this session",
    "/context": "tokens by part: system, repository context, messages, reasoning, tool results",
    "/diff": "the changes made to files in this session",
    "/undo": "revert the file changes of the last turn",
    "/compact": "summarize older turns to free context",
    "/exit": "leave (Ctrl-D also works)",
}
ARGUMENT_CHOICES = {
    "/thinking": THINKING_MODES,
    "/preserve": ("on", "off"),
    "/approval": APPROVAL_MODES,
    "/sandbox": SANDBOX_MODES,
}
ATTACH = re.compile(r"(?<!\S)@(\S+)")
ATTACH_LIMIT = 100_000
CTRL_C = "\x03"
PROMPT = "› "  # noqa: RUF001


def parse_slash(line: str) -> tuple[str, str] | None:
    """`/model qwen3.6-plus` → ("/model", "qwen3.6-plus"); None for ordinary messages."""
    stripped = line.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    name, _, rest = stripped.partition(" ")
    return name.lower(), rest.strip()


class ReplCompleter(Completer):
    """Slash commands and their arguments, and `@path` file names from the workspace."""

    def __init__(self, files: Callable[[], list[str]]) -> None:
        self.files = files

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and "\n" not in before:
            name, space, arg = before.partition(" ")
            if not space:
                for command, help_text in SLASH_COMMANDS.items():
                    if command.startswith(name.lower()):
                        yield Completion(command, -len(name), display_meta=help_text)
                return
            for choice in ARGUMENT_CHOICES.get(name.lower(), ()):
                if choice.startswith(arg):
                    yield Completion(choice, -len(arg))
            return
        word = document.get_word_before_cursor(WORD=True)
        if word.startswith("@"):
            prefix = word[1:]
            for path in self.files():
                if path.startswith(prefix) or (prefix and f"/{prefix}" in f"/{path}"):
                    yield Completion("@" + path, -len(word))


def key_bindings() -> KeyBindings:
    """Enter sends; Alt+Enter / Esc Enter inserts a newline; Ctrl-C on an empty line is
    reported to the loop (twice exits), otherwise it clears the line."""
    bindings = KeyBindings()

    @bindings.add("enter")
    def _send(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(result=CTRL_C)

    return bindings


def prompt_session(
    history: History, files: Callable[[], list[str]], toolbar: Callable[[], str], **io: Any
) -> PromptSession[str]:
    return PromptSession(
        multiline=True,
        key_bindings=key_bindings(),
        completer=ReplCompleter(files),
        complete_while_typing=True,
        history=history,
        bottom_toolbar=toolbar,
        **io,
    )


def attach_files(text: str, workspace: Workspace) -> tuple[str, list[str]]:
    """Append the content of every `@path` that names a readable workspace file."""
    blocks, attached = [], []
    for name in dict.fromkeys(ATTACH.findall(text)):
        try:
            path = workspace.resolve(name.rstrip(".,;:!?)"))
            if not path.is_file():
                continue
            data = read_capped(
                workspace.root, path.relative_to(workspace.root.resolve()), ATTACH_LIMIT
            )[:ATTACH_LIMIT]
        except (ToolError, ValueError):
            continue
        if b"\x00" in data[:8192]:
            continue
        relative = workspace.relative(path)
        blocks.append(f'<file path="{relative}">\n{data.decode("utf-8", "replace")}\n</file>')
        attached.append(relative)
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), attached


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
        key = f"{request.tool}:{request.command}" if request.command else request.tool
        if key in self.always:
            return Decision(True)
        with self.watcher.suspended():
            return self._ask(request, key)

    def _ask(self, request: ApprovalRequest, key: str) -> Decision:
        self.renderer.end_block()
        if request.command is not None:
            self.renderer.say(f"{request.tool} wants to run: {request.command}", "bold yellow")
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


class Repl:
    """One interactive session: state, slash commands, and turns."""

    def __init__(
        self,
        settings: Settings,
        *,
        env: Mapping[str, str],
        workdir: Path,
        store: SessionStore,
        renderer: Renderer,
        ask: Callable[[str, str], str],
        resume: str | None = None,
        continue_latest: bool = False,
    ) -> None:
        self.settings = settings
        self.env = env
        self.workdir = workdir
        # Pinned now: a `.git` the model creates later is never the one qac runs git on.
        self.repository = Repository.find(workdir)
        self.store = store
        self.renderer = renderer
        self.watcher = EscapeWatcher()
        self.approver = TerminalApprover(renderer, ask, self.watcher)
        self.built: Assembly | None = None
        self.pending_resume = resume
        self.continue_latest = continue_latest
        self.checkpoints: list[str] = []
        self.start_tree: str | None = None
        self.last: Result | None = None
        self.totals: dict[str, int] = {}
        self.cost = 0.0
        self.note = ""
        self._files: list[str] | None = None

    # -- session ---------------------------------------------------------------------------

    def agent(self) -> Assembly:
        """The assembled agent, built on first use so the prompt appears at once."""
        if self.built is None:
            self.built = self._assemble()
            if self.built.resumed:
                self.show_history(self.built.agent.session.id)
        return self.built

    def _assemble(self) -> Assembly:
        built = assemble(
            self.settings,
            env=self.env,
            workdir=self.workdir,
            store=self.store,
            resume=self.pending_resume,
            continue_latest=self.continue_latest,
            approver=self.approver,
            default_approval="ask",
        )
        self.pending_resume, self.continue_latest = None, False
        return built

    def rebuild(self, **changes: Any) -> None:
        """Apply a setting change and reopen the same session with it."""
        self.settings = dataclasses.replace(self.settings, **changes)
        if self.built is not None:
            self.pending_resume = self.built.agent.session.id
            self.built = self._assemble()

    def show_history(self, session_id: str) -> None:
        messages = self.store.messages(session_id)
        self.renderer.say(f"resumed session {session_id}: {len(messages)} earlier messages", "dim")
        for message in messages:
            first = (message.content or "").strip().splitlines()[:1]
            if message.role == "user" and first:
                self.renderer.say(f"{PROMPT}{first[0][:100]}", "dim")
            elif message.role == "assistant" and first and not message.tool_calls:
                self.renderer.say(f"  ⎿ {first[0][:100]}", "dim")

    def toolbar(self) -> str:
        model = self.settings.profile.model
        if not self.totals:
            return f" {model} · {self.settings.sandbox} · approval {self.mode()} "
        prompt, cached = self.totals.get("prompt_tokens", 0), self.totals.get("cached_tokens", 0)
        share = f" ({cached / prompt:.0%} cached)" if prompt else ""
        return (
            f" {model} · {prompt} in{share} / {self.totals.get('completion_tokens', 0)} out · "
            f"${self.cost:.4f} · session {self.built.agent.session.id if self.built else ''} "
        )

    def mode(self) -> str:
        return self.settings.approval or "ask"

    def files(self) -> list[str]:
        if self._files is None:
            self._files = context.workspace_files(self.workdir, self.repository)
        return self._files

    # -- input -----------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one submitted input; False means leave. A problem (a missing key, say) is
        shown, and the prompt comes back."""
        if not line.strip():
            return True
        slash = parse_slash(line)
        try:
            if slash is not None:
                return self.slash(*slash)
            if line.startswith("!"):
                self.bang(line[1:].strip())
            else:
                self.turn(line)
        except QacError as exc:
            self.renderer.say(str(exc), "red")
        return True

    def bang(self, command: str) -> None:
        """`!command`: run it in the sandbox and show its output (Esc or Ctrl-C stops it)."""
        if not command:
            return
        executor = build_executor(self.settings, self.env, self.workdir)
        with self.checkpointed():
            try:
                with self.watcher.watching():
                    result = executor.run(
                        command, cwd=self.workdir, timeout=self.settings.command_timeout
                    )
            except KeyboardInterrupt:
                self.renderer.say("interrupted", "yellow")
                return
        self.renderer.say(result.output.rstrip("\n") or "(no output)")
        self.renderer.say(f"exit code {result.exit_code}", "dim")

    def turn(self, text: str) -> None:
        workspace = build_workspace(self.settings, self.env, self.workdir)
        message, attached = attach_files(text, workspace)
        if attached:
            self.renderer.say(f"attached {', '.join(attached)}", "dim")
        if self.note:
            message, self.note = f"{self.note}\n\n{message}", ""
        built = self.agent()
        with self.checkpointed(), self.watcher.watching():
            self._drive(built.agent.run(message))

    @contextlib.contextmanager
    def checkpointed(self) -> Iterator[None]:
        """Snapshot the working tree around an action; keep the snapshot if files changed."""
        before = context.snapshot_tree(self.repository)
        self.start_tree = self.start_tree or before
        try:
            yield
        finally:
            after = context.snapshot_tree(self.repository)
            if self.repository is not None and before is not None and after != before:
                owner = self.built.agent.session.id if self.built else "shell"
                ref = f"refs/qac/checkpoints/{owner}/{len(self.checkpoints)}"
                context.save_checkpoint(self.repository, before, ref)
                self.checkpoints.append(before)
                self._files = None

    def _drive(self, events: Generator[Event, None, None]) -> None:
        """Render events; Ctrl-C or Esc is thrown into the loop so it stores what arrived."""
        interrupt: BaseException | None = None
        while True:
            try:
                event = events.throw(interrupt) if interrupt else next(events)
                interrupt = None
            except StopIteration:
                return
            except KeyboardInterrupt as exc:
                interrupt = exc
                continue
            try:
                self.renderer.write(event)
            except KeyboardInterrupt as exc:
                interrupt = exc
            if isinstance(event, Result):
                self.last = event
                for key, value in event.usage.items():
                    self.totals[key] = self.totals.get(key, 0) + (value or 0)
                self.cost += event.cost_usd
                if event.status == "interrupted":
                    self.renderer.say("interrupted; what arrived is stored", "yellow")

    # -- slash commands --------------------------------------------------------------------

    def slash(self, name: str, arg: str) -> bool:
        handlers: dict[str, Callable[[str], bool | None]] = {
            "/help": self.cmd_help,
            "/new": self.cmd_new,
            "/sessions": self.cmd_sessions,
            "/resume": self.cmd_resume,
            "/model": self.cmd_model,
            "/thinking": self.cmd_thinking,
            "/preserve": self.cmd_preserve,
            "/approval": self.cmd_approval,
            "/sandbox": self.cmd_sandbox,
            "/cost": self.cmd_cost,
            "/context": self.cmd_context,
            "/diff": self.cmd_diff,
            "/undo": self.cmd_undo,
            "/compact": self.cmd_compact,
            "/exit": lambda _: False,
            "/quit": lambda _: False,
        }
        handler = handlers.get(name)
        if handler is None:
            self.renderer.say(f"unknown command {name}; /help lists them", "yellow")
            return True
        try:
            return handler(arg) is not False
        except QacError as exc:
            self.renderer.say(str(exc), "red")
            return True

    def cmd_help(self, _: str) -> None:
        for command, text in SLASH_COMMANDS.items():
            self.renderer.say(f"{command:<11} {text}")
        self.renderer.say(
            "Enter sends · Alt+Enter or Esc Enter: newline · @path attaches a file · !cmd runs a "
            "command in the sandbox · Esc or Ctrl-C interrupts a turn · Ctrl-D exits",
            "dim",
        )

    def cmd_new(self, _: str) -> None:
        self.built, self.checkpoints, self.last, self.start_tree = None, [], None, None
        self.totals, self.cost = {}, 0.0
        self.renderer.say("a new session starts with your next message", "dim")

    def cmd_sessions(self, _: str) -> None:
        for info in self.store.list(20):
            marker = "*" if self.built and info.id == self.built.agent.session.id else " "
            self.renderer.say(f"{marker} {info.id}  {info.status:<11} {info.title[:50]}")

    def cmd_resume(self, arg: str) -> None:
        if not arg:
            self.renderer.say("usage: /resume ID (see /sessions)", "yellow")
            return
        info = self.store.get(arg)
        self.settings = dataclasses.replace(self.settings, **session_defaults(info))
        self.built, self.pending_resume, self.checkpoints = None, info.id, []
        self.totals, self.cost = {}, 0.0
        self.agent()

    def cmd_model(self, arg: str) -> None:
        if not arg:
            self.renderer.say(f"model: {self.settings.profile.model}")
            return
        self.rebuild(model=arg)
        self.renderer.say(f"model set to {arg}", "dim")

    def cmd_thinking(self, arg: str) -> None:
        if arg not in THINKING_MODES:
            self.renderer.say(f"thinking is {self.renderer.thinking}; /thinking show|hide|full")
            return
        self.renderer.thinking = arg
        self.renderer.say(f"thinking: {arg}", "dim")

    def cmd_preserve(self, arg: str) -> None:
        if arg not in ("on", "off"):
            state = "on" if self.settings.preserve_thinking else "off"
            self.renderer.say(f"preserve thinking is {state}; /preserve on|off")
            return
        self.rebuild(preserve_thinking=arg == "on")
        self.renderer.say(f"preserve thinking {arg}", "dim")

    def cmd_approval(self, arg: str) -> None:
        if arg not in APPROVAL_MODES:
            self.renderer.say(f"approval is {self.mode()}; /approval ask|auto-edit|auto")
            return
        self.rebuild(approval=arg)
        self.renderer.say(f"approval: {arg}", "dim")

    def cmd_sandbox(self, arg: str) -> None:
        if arg not in SANDBOX_MODES:
            self.renderer.say(
                f"sandbox is {self.settings.sandbox}; /sandbox " + "|".join(SANDBOX_MODES)
            )
            return
        self.rebuild(sandbox=arg)
        self.renderer.say(f"sandbox: {arg}", "dim")

    def _messages(self) -> list[Message]:
        if self.built is None:
            return []
        return compaction.active(self.store.messages(self.built.agent.session.id))

    def cmd_cost(self, _: str) -> None:
        total = Usage()
        for message in self._messages():
            if message.usage is not None:
                total += message.usage
        cached = total.cached_tokens or 0
        share = f" ({cached / total.prompt_tokens:.0%} cached)" if total.prompt_tokens else ""
        self.renderer.say(
            f"session: {total.prompt_tokens} tokens in{share}, {total.completion_tokens} out "
            f"({total.reasoning_tokens or 0} reasoning) · ${total.cost_usd:.4f}"
        )

    def cmd_context(self, _: str) -> None:
        from qwen_agent_cli.tokens import context_breakdown

        built = self.agent()
        parts = context_breakdown(built.agent.session, self._messages())
        window = self.settings.profile.context_window
        used = sum(parts.values())
        for part, count in parts.items():
            self.renderer.say(f"{part:<20} {count:>8} tokens")
        self.renderer.say(f"{'total':<20} {used:>8} tokens of {window} ({used / window:.1%})")

    def cmd_diff(self, _: str) -> None:
        now = context.snapshot_tree(self.repository)
        if now is None or self.repository is None:
            self.renderer.say("/diff needs a git repository", "yellow")
            return
        if self.start_tree is None:
            self.renderer.say("no changes in this session")
            return
        diff = context.diff_trees(self.repository, self.start_tree, now)
        if not diff:
            self.renderer.say("no changes in this session")
            return
        self.renderer.console.print(diff_renderable(diff))

    def cmd_undo(self, _: str) -> None:
        if not self.checkpoints:
            self.renderer.say("nothing to undo: no turn of this session changed files")
            return
        tree = self.checkpoints.pop()
        restored = context.restore_tree(self.repository, tree)
        self._files = None
        self.renderer.say(f"restored {', '.join(restored) or 'nothing'} to before the last turn")
        if restored:
            self.note = (
                "[The user ran /undo: the file changes of the last turn were reverted "
                f"({', '.join(restored)}). Those files are back as they were before it.]"
            )

    def cmd_compact(self, _: str) -> None:
        if self.built is None:
            self.renderer.say("nothing to compact yet")
            return
        agent = self.built.agent
        messages = compaction.active(self.store.messages(agent.session.id))
        seen: list[Event] = []

        def events() -> Generator[Event, None, None]:
            for event in _forward(agent.compact(messages, force=True)):
                seen.append(event)
                yield event

        self._drive(events())
        if not any(isinstance(e, CompactionEvent) for e in seen):
            self.renderer.say("nothing to compact: the session has only one turn")


def _forward(generator: Generator[Event, None, Any]) -> Generator[Event, None, None]:
    """The events of a generator whose return value is not needed here."""
    yield from generator


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


def run_repl(
    settings: Settings,
    *,
    env: Mapping[str, str],
    workdir: Path,
    store: SessionStore,
    first_prompt: str | None,
    resume: str | None,
    continue_latest: bool,
    **io: Any,
) -> int:
    """The REPL's main loop; returns the exit code."""
    from rich.console import Console

    renderer = Renderer(Console(highlight=False))
    renderer.hint = "/thinking full to read it"
    history_dir = data_dir(env)
    try:
        history_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        history: History = FileHistory(str(history_dir / "history"))
    except OSError:
        history = InMemoryHistory()
    holder: dict[str, Repl] = {}
    session = prompt_session(
        history, lambda: holder["repl"].files(), lambda: holder["repl"].toolbar(), **io
    )

    def ask(question: str, default: str) -> str:
        return PromptSession[str](**io).prompt(question, default=default)

    repl = Repl(
        settings,
        env=env,
        workdir=workdir,
        store=store,
        renderer=renderer,
        ask=ask,
        resume=resume,
        continue_latest=continue_latest,
    )
    holder["repl"] = repl
    renderer.say(f"qac · {workdir} · /help for commands, Ctrl-D to exit", "dim")
    if resume or continue_latest:
        repl.agent()
    if first_prompt:
        repl.handle(first_prompt)
    armed = False
    while True:
        try:
            line = session.prompt(PROMPT)
        except EOFError:
            return 0
        except KeyboardInterrupt:
            line = CTRL_C
        if line == CTRL_C:
            if armed:
                return 0
            armed = True
            renderer.say("press Ctrl-C again to exit", "dim")
            continue
        armed = False
        if not repl.handle(line):
            return 0
