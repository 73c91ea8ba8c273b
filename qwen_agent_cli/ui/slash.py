"""The REPL's slash commands: each `/name` and what it does to the session it is typed in.
A mixin of `Repl`, which owns the state these read and change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

from qwen_agent_cli import checkpoints, commands, compaction, context
from qwen_agent_cli.assemble import (
    Assembly,
    build_executor,
    build_workspace,
    session_defaults,
    user_config_file,
)
from qwen_agent_cli.commands import CustomCommand
from qwen_agent_cli.config import APPROVAL_MODES, SANDBOX_MODES, Settings
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.events import CompactionEvent, Event, Result
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.sandbox import ExecResult
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message, Usage
from qwen_agent_cli.ui.expand import show_last
from qwen_agent_cli.ui.prompt import SLASH_COMMANDS
from qwen_agent_cli.ui.render import THINKING_MODES, Renderer, diff_renderable
from qwen_agent_cli.ui.terminal import EscapeWatcher, TerminalApprover
from qwen_agent_cli.visible import visible


class SlashCommands:
    """`/help`, `/new`, `/resume`, `/model`, ... on the REPL's state."""

    settings: Settings
    env: Mapping[str, str]
    watcher: EscapeWatcher
    approver: TerminalApprover
    store: SessionStore
    renderer: Renderer
    repository: Repository | None
    workdir: Path
    built: Assembly | None
    pending_resume: str | None
    checkpoints: list[str]
    start_tree: str | None
    last: Result | None
    totals: dict[str, int]
    cost: float
    note: str
    _files: list[str] | None
    custom: dict[str, CustomCommand] | None
    """The custom commands as last read (Tab completes from these; each `/name` rereads)."""
    confirmed: dict[str, bool]
    """An untrusted project's commands whose shell lines the user allowed (or not), by name."""
    reported: set[str]

    def agent(self) -> Assembly:
        raise NotImplementedError

    def rebuild(self, **changes: Any) -> None:
        raise NotImplementedError

    def mode(self) -> str:
        raise NotImplementedError

    def _drive(self, events: Generator[Event, None, None]) -> None:
        raise NotImplementedError

    def turn(self, text: str, *, attach: bool = True) -> None:
        raise NotImplementedError

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
            "/last": self.cmd_last,
            "/undo": self.cmd_undo,
            "/compact": self.cmd_compact,
            "/plan": self.cmd_plan,
            "/mcp": self.cmd_mcp,
            "/init": self.cmd_init,
            "/exit": lambda _: False,
            "/quit": lambda _: False,
        }
        handler = handlers.get(name)
        if handler is None:
            custom = self.custom_commands(refresh=True).get(name)
            if custom is None:
                self.renderer.say(f"unknown command {name}; /help lists them", "yellow")
                return True
            handler = lambda arg: self.run_custom(custom, arg)  # noqa: E731
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
            "command in the sandbox · Esc or Ctrl-C interrupts a turn · Ctrl-O shows the last "
            "tool output · approvals take one key: y, n, a, e, t, Esc · Ctrl-D exits",
            "dim",
        )
        for name, custom in self.custom_commands(refresh=True).items():
            self.renderer.say(f"{name:<11} {custom.summary()}")

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
        window = built.agent.compactor.window if built.agent.compactor else 0
        window = window or self.settings.profile.context_window
        used = sum(parts.values())
        for part, count in parts.items():
            self.renderer.say(f"{part:<20} {count:>8} tokens")
        self.renderer.say(f"{'total':<20} {used:>8} tokens of {window} ({used / window:.1%})")
        self.show_instructions()

    def show_instructions(self) -> None:
        """Which instruction files the session holds, with their tokens: the stored list once
        a session is open (a resume reports what it started with), else what a new one reads."""
        from qwen_agent_cli import instructions
        from qwen_agent_cli.assemble import private_paths, user_config_file

        if self.built is not None:
            stored = self.built.agent.session.settings
            files, notes = stored.get("instructions", []), stored.get("instruction_notes", [])
        else:
            root = self.repository.root if self.repository is not None else self.workdir
            loaded = instructions.load(
                root,
                self.workdir,
                user_config_file(self.env).parent,
                secrets=private_paths(self.settings, self.env),
            )
            files, notes = loaded.listing(), list(loaded.notes)
        self.renderer.say(instructions.describe(files), "dim")
        for note in notes:
            self.renderer.say(note, "yellow")

    def cmd_init(self, arg: str) -> None:
        """Ask the model to write AGENTS.md; the write is approved like any other edit."""
        from qwen_agent_cli import agents_md

        if agents_md.exists(self.workdir) and arg != "force":
            self.renderer.say("AGENTS.md exists; /init force has the model rewrite it", "yellow")
            return
        self.turn(agents_md.init_prompt())
        if agents_md.exists(self.workdir):
            self.renderer.say("sessions started from now on read AGENTS.md (/new)", "dim")

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

    def cmd_last(self, _: str) -> None:
        session = self.built.agent.session.id if self.built else None
        show_last(self.renderer, self.store.messages(session) if session else [])

    def cmd_undo(self, _: str) -> None:
        if not self.checkpoints:
            self.renderer.say("nothing to undo: no turn of this session changed files")
            return
        tree = self.checkpoints.pop()
        restored = context.restore_tree(self.repository, tree)
        self._files = None
        self.renderer.say(f"restored {', '.join(restored) or 'nothing'} to before the last turn")
        if restored:
            self.note = checkpoints.undo_note("/undo", "turn", restored)

    def cmd_mcp(self, _: str) -> None:
        from qwen_agent_cli.mcp_tools import describe_servers

        servers = self.agent().servers
        servers.ensure_started()
        hub = servers.hub
        if hub is None:
            self.renderer.say(
                "no MCP servers are configured: `qac mcp add NAME --command ...`, or "
                "[mcp.servers.NAME] in your config"
            )
            return
        for line in describe_servers(hub):
            self.renderer.say(line)

    def cmd_plan(self, arg: str) -> None:
        if arg not in ("", "on", "off"):
            self.renderer.say("/plan [on|off]: plan mode (read and search, then a plan)")
            return
        self.rebuild(plan_mode=arg != "off")
        if self.settings.plan_mode:
            self.renderer.say(
                "plan mode on: the model reads and searches only (read-only sandbox, edits "
                "refused) and ends with a plan for you to approve",
                "dim",
            )
        else:
            self.renderer.say("plan mode off", "dim")

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

    # -- custom commands (commands.py) -------------------------------------------------------

    def custom_commands(self, *, refresh: bool = False) -> dict[str, CustomCommand]:
        """The custom commands; a file a built-in hides is said once per session."""
        if self.custom is None or refresh:
            user_dir = commands.user_commands_dir(user_config_file(self.env))
            reserved = (*SLASH_COMMANDS, "/quit")
            self.custom, notices = commands.discover(self.workdir, user_dir, reserved)
            for notice in notices:
                if refresh and notice not in self.reported:
                    self.reported.add(notice)
                    self.renderer.say(notice, "yellow")
        return self.custom

    def custom_summaries(self) -> dict[str, str]:
        return {name: visible(c.summary()) for name, c in self.custom_commands().items()}

    def run_custom(self, command: CustomCommand, arguments: str) -> None:
        """Expand the command (its shell lines in the sandbox) and send it as one turn, with its
        model and allowed tools for that turn only."""
        executor = build_executor(self.settings, self.env, self.workdir)

        def run(line: str) -> ExecResult:
            return executor.run(line, cwd=self.workdir, timeout=self.settings.command_timeout)

        workspace = build_workspace(self.settings, self.env, self.workdir)
        allowed = self.may_run_shell(command)
        try:
            with self.watcher.watching():
                expansion = commands.expand(command, arguments, workspace, run if allowed else None)
        except KeyboardInterrupt:
            self.renderer.say("interrupted", "yellow")
            return
        if expansion.refused:
            self.renderer.say(f"{command.name}: its shell lines were not run", "yellow")
        if expansion.attached:
            self.renderer.say(f"attached {', '.join(expansion.attached)}", "dim")
        model = self.settings.model
        if command.model:
            self.rebuild(model=command.model)
            self.renderer.say(f"{command.name} runs on {command.model}", "dim")
        built = self.agent()
        if command.allowed_tools is not None:
            only = frozenset(command.allowed_tools)
            built.agent.dispatcher = dataclasses.replace(built.agent.dispatcher, only=only)
        try:
            self.turn(expansion.text, attach=False)
        finally:
            built.agent.dispatcher = dataclasses.replace(built.agent.dispatcher, only=None)
            if command.model:
                self.rebuild(model=model)

    def may_run_shell(self, command: CustomCommand) -> bool:
        """A user's or a trusted project's command runs its shell lines; an untrusted project's
        asks first, once per command in this session."""
        lines = commands.shell_lines(command)
        if not (command.project and lines) or self.settings.project_trusted:
            return True
        if command.name not in self.confirmed:
            self.renderer.say(
                f"{command.path} (the project is not trusted) runs in the sandbox: "
                + "; ".join(lines),
                "bold yellow",
            )
            question = f"run {command.name}'s shell lines? y/n: "
            self.confirmed[command.name] = self.approver.confirm(question)
        return self.confirmed[command.name]


def _forward(generator: Generator[Event, None, Any]) -> Generator[Event, None, None]:
    """The events of a generator whose return value is not needed here."""
    yield from generator
