"""The interactive terminal: a prompt_toolkit REPL with slash commands, `@path` attachments,
`!command`, approvals asked in the terminal, interrupts, checkpoints for /undo, and the Rich
renderer. Drives the same Agent as `qac run`; owns nothing below the UI."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from qwen_agent_cli import checkpoints, context, signals
from qwen_agent_cli.assemble import (
    Assembly,
    assemble,
    build_executor,
    build_workspace,
    data_dir,
)
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.events import Event, PlanEvent, Result, ToolResultEvent
from qwen_agent_cli.modelinfo import check_images
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.tools.plan import APPROVED, current_plan, plan_prompt
from qwen_agent_cli.ui.history import interrupted_note, show_history
from qwen_agent_cli.ui.keys import read_key
from qwen_agent_cli.ui.output import relay
from qwen_agent_cli.ui.prompt import (
    CTRL_C,
    PROMPT,
    attach_files,
    attach_images,
    parse_slash,
    prompt_session,
)
from qwen_agent_cli.ui.render import Renderer
from qwen_agent_cli.ui.slash import SlashCommands
from qwen_agent_cli.ui.terminal import EscapeWatcher, TerminalApprover


class Repl(SlashCommands):
    """One interactive session: its state and its turns (the slash commands are SlashCommands)."""

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
        key: Callable[[str, Mapping[str, str], str], str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.workdir = workdir
        # Pinned now: a `.git` the model creates later is never the one qac runs git on.
        self.repository = Repository.find(workdir)
        self.store = store
        self.renderer = renderer
        self.watcher = EscapeWatcher()
        self.approver = TerminalApprover(renderer, ask, self.watcher, key)
        self.built: Assembly | None = None
        self.pending_resume = resume
        self.continue_latest = continue_latest
        self.checkpoints: list[str] = []
        self.start_tree: str | None = None
        self.last: Result | None = None
        self.totals: dict[str, int] = {}
        self.cost = 0.0
        self.note = ""
        self.plan: list[dict[str, str]] = []
        self._files: list[str] | None = None
        self.custom = None
        self.confirmed = {}
        self.reported = set()

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
        show_history(self.renderer, session_id, messages)
        self.plan = current_plan(messages)
        if self.plan:
            self.renderer.write(PlanEvent(steps=self.plan))

    def toolbar(self) -> str:
        model = self.settings.profile.model
        if self.settings.plan_mode:
            model = f"PLAN MODE · {model}"
        if self.plan:
            done = sum(1 for step in self.plan if step["status"] == "done")
            model = f"plan {done}/{len(self.plan)} · {model}"
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

    def turn(self, text: str, *, attach: bool = True) -> None:
        """Send one message; `attach=False` for a custom command's, attached already."""
        workspace = build_workspace(self.settings, self.env, self.workdir)
        message, attached = attach_files(text, workspace) if attach else (text, [])
        images, pictured = attach_images(text, workspace) if attach else ([], [])
        if images:
            check_images(self.settings)
        if attached or pictured:
            self.renderer.say(f"attached {', '.join([*attached, *pictured])}", "dim")
        built = self.agent()
        notes = [interrupted_note(self.store, built.agent.session.id), self.note]
        note, self.note = "\n\n".join(n for n in notes if n), ""
        if note:
            self.renderer.say(f"for the model: {note}", "dim")
            message = f"{note}\n\n{message}"
        planning = self.settings.plan_mode
        if planning:
            message = plan_prompt(message)
        with self.checkpointed(), self.watcher.watching():
            self._drive(built.agent.run(message, images=images))
        if planning and self.last is not None and self.last.status == "done":
            self.offer_plan()

    def offer_plan(self) -> None:
        """After a plan-mode turn: on approval, leave plan mode and carry the plan out in the
        same session (its preserved thinking included)."""
        if not self.approver.confirm("approve this plan and carry it out? y/n: "):
            self.renderer.say("still in plan mode: refine the plan, or /plan off", "dim")
            return
        self.rebuild(plan_mode=False)
        self.renderer.say("plan approved: plan mode off, carrying it out", "dim")
        with self.checkpointed(), self.watcher.watching():
            self._drive(self.agent().agent.run(APPROVED))

    @contextlib.contextmanager
    def checkpointed(self) -> Iterator[None]:
        """Snapshot the working tree around an action; keep the snapshot if files changed."""
        owner = self.built.agent.session.id if self.built else "shell"
        ref = checkpoints.repl_ref(owner, len(self.checkpoints))
        span = checkpoints.Span()
        try:
            with checkpoints.checkpointed(self.repository, ref) as span:
                self.start_tree = self.start_tree or span.before
                yield
        finally:
            if span.changed and span.before is not None:
                self.checkpoints.append(span.before)
                self._files = None

    def _drive(self, events: Generator[Event, None, None]) -> None:
        """Render events; Ctrl-C or Esc is thrown into the loop so it stores what arrived."""

        def show(event: Event) -> None:
            if isinstance(event, PlanEvent):
                self.plan = event.steps
            self.renderer.write(event)
            if isinstance(event, ToolResultEvent) and self.approver.interrupted:
                self.approver.interrupted = False  # Ctrl-C at the question: stop, refusal stored
                raise signals.Interrupted()

        try:
            result = relay(events, show)
        except KeyboardInterrupt:
            self.renderer.say("interrupted", "yellow")
            return
        if result is None:
            return
        self.last = result
        for key, value in result.usage.items():
            self.totals[key] = self.totals.get(key, 0) + (value or 0)
        self.cost += result.cost_usd
        if result.status == "interrupted":
            self.renderer.say("interrupted; what arrived is stored", "yellow")

    # -- slash commands --------------------------------------------------------------------


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
        history,
        lambda: holder["repl"].files(),
        lambda: holder["repl"].toolbar(),
        lambda: holder["repl"].custom_summaries(),
        lambda: holder["repl"].slash("/last", ""),  # Ctrl-O; a store error is said, like /last
        **io,
    )

    def ask(question: str, default: str) -> str:
        return PromptSession[str](**io).prompt(question, default=default)

    def key(question: str, answers: Mapping[str, str], hint: str) -> str:
        return read_key(question, answers, hint, **io)

    repl = Repl(
        settings,
        env=env,
        workdir=workdir,
        store=store,
        renderer=renderer,
        ask=ask,
        resume=resume,
        continue_latest=continue_latest,
        key=key,
    )
    holder["repl"] = repl
    renderer.say(f"qac · {workdir} · /help for commands, Ctrl-D to exit", "dim")
    if resume or continue_latest:
        repl.agent()
    repl.show_instructions()
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
        if signals.must_exit():  # SIGTERM or SIGHUP, at the prompt or during the last turn
            renderer.say(signals.describe(), "yellow")
            return signals.exit_code()
        if line == CTRL_C:
            if armed:
                return 0
            armed = True
            try:
                renderer.say("press Ctrl-C again to exit", "dim")
            except KeyboardInterrupt:  # the second one, while the terminal is not in raw mode
                return 0
            continue
        armed = False
        if not repl.handle(line):
            return 0
        if signals.must_exit():
            return signals.exit_code()
