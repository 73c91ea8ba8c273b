"""`qac init`: one agent turn that has the model inspect the repository and write its AGENTS.md,
with the write shown and asked on the terminal (or allowed by --yes)."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Annotated

import typer

from qwen_agent_cli.approval import Approver
from qwen_agent_cli.cli.app import (
    app,
    drive,
    error,
    finish,
    open_store,
    setting_flags,
    settings_for,
)
from qwen_agent_cli.cli.options import (
    BaseUrlOpt,
    DirOpt,
    KeyEnvOpt,
    MaxCostOpt,
    MaxTurnsOpt,
    ModelOpt,
    ProviderOpt,
    SandboxOpt,
    StoreOpt,
    ThinkingOpt,
    TimeoutOpt,
)
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.types import Status


@app.command()
def init(
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Write AGENTS.md without asking.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Have an existing AGENTS.md rewritten.")
    ] = False,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    sandbox: SandboxOpt = None,
    max_turns: MaxTurnsOpt = None,
    max_cost: MaxCostOpt = None,
    timeout: TimeoutOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
) -> None:
    """Have the model inspect the repository and write an AGENTS.md (build, test, style, layout)."""
    from qwen_agent_cli import agents_md
    from qwen_agent_cli.assemble import assemble, workdir_of

    workdir = workdir_of(directory)
    if agents_md.exists(workdir) and not force:
        raise ConfigError(
            f"{workdir / agents_md.FILE_NAME} exists already; pass --force to have it rewritten"
        )
    settings = settings_for(workdir, **setting_flags(locals()))
    if settings.sandbox == "read-only":
        raise ConfigError("qac init writes AGENTS.md, which --sandbox read-only forbids")
    if not yes and not sys.stdin.isatty():
        raise ConfigError(
            "qac init asks before writing AGENTS.md and there is no terminal to ask on; "
            "pass --yes to write it without asking"
        )
    # Every change goes to the approver, which lets through AGENTS.md alone.
    settings = dataclasses.replace(settings, approval="ask")
    session_store = open_store(settings)
    try:
        built = assemble(
            settings,
            env=os.environ,
            workdir=workdir,
            store=session_store,
            approver=agents_md.AgentsMdApprover(None if yes else terminal_approver()),
            default_approval="ask",
        )
        result = drive(built.agent.run(agents_md.init_prompt()), "text")
    finally:
        session_store.close()
    done = result is not None and Status(result.status) is Status.DONE
    if done and not agents_md.exists(workdir):
        error("the model did not write AGENTS.md; run qac init again, or write it yourself")
        raise typer.Exit(1)
    finish(result)


def terminal_approver() -> Approver:
    """The REPL's question (the diff, then y / n / a), asked on this terminal."""
    from qwen_agent_cli.ui.render import Renderer
    from qwen_agent_cli.ui.terminal import EscapeWatcher, TerminalApprover

    def ask(question: str, default: str) -> str:
        try:
            return input(question) or default
        except EOFError:
            return "n" if question.startswith("allow?") else ""

    return TerminalApprover(Renderer.to_stderr(), ask, EscapeWatcher())
