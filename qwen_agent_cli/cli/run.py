"""`qac run`, `qac ci`, the REPL and `qac demo`: the commands that run the agent."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qwen_agent_cli.cli.app import (
    app,
    drive,
    error,
    finish,
    open_store,
    read_prompt,
    resumed_settings,
    setting_flags,
    settings_for,
    warned_untrusted,
)
from qwen_agent_cli.cli.options import (
    ApprovalOpt,
    BaseUrlOpt,
    CompactAtOpt,
    ContinueOpt,
    DirOpt,
    FormatOpt,
    KeyEnvOpt,
    MapTokensOpt,
    MaxCostOpt,
    MaxTurnsOpt,
    ModelOpt,
    PreserveOpt,
    ProviderOpt,
    ResumeOpt,
    SandboxOpt,
    StoreOpt,
    TestCmdOpt,
    ThinkingBudgetOpt,
    ThinkingOpt,
    TimeoutOpt,
)
from qwen_agent_cli.config import PROJECT_CONFIG, Settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.ui.output import ResultLedger

if TYPE_CHECKING:
    from qwen_agent_cli.assemble import Assembly
    from qwen_agent_cli.commands import CustomCommand
    from qwen_agent_cli.sandbox import ExecResult


def preload_sdk(wire_format: str) -> None:
    """Import the format's SDK on a thread while the store and the snapshot load: it is the
    largest part of start-up (about 0.4 s for openai, 1 s for anthropic)."""
    from qwen_agent_cli import provider

    threading.Thread(target=provider.preload, args=(wire_format,), daemon=True).start()


@app.command()
def run(
    prompt: Annotated[
        str | None,
        typer.Argument(
            metavar="PROMPT",
            help='The task; "-" (or none, with stdin not a terminal) reads it from stdin.',
            show_default=False,
        ),
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
    thinking_budget: ThinkingBudgetOpt = None,
    resume: ResumeOpt = None,
    continue_: ContinueOpt = False,
    sandbox: SandboxOpt = None,
    approval: ApprovalOpt = None,
    max_turns: MaxTurnsOpt = None,
    max_cost: MaxCostOpt = None,
    timeout: TimeoutOpt = None,
    test_cmd: TestCmdOpt = None,
    output_format: FormatOpt = None,
    map_tokens: MapTokensOpt = None,
    compact_at: CompactAtOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
    plan_mode: Annotated[
        bool | None,
        typer.Option(
            "--plan",
            show_default=False,
            help="Plan mode: read and search only (read-only sandbox, edits refused), then "
            "present a plan; continue with --resume ID without --plan.",
        ),
    ] = None,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            "--image",
            metavar="PATH",
            help="Attach an image (PNG, JPEG, GIF, WebP; repeatable) for a model that takes them.",
        ),
    ] = None,
) -> None:
    """Run a task to completion without a person; prints text or JSON (alias: exec)."""
    from qwen_agent_cli.assemble import assemble, workdir_of
    from qwen_agent_cli.checkpoints import RunCheckpoint
    from qwen_agent_cli.images import load_image
    from qwen_agent_cli.modelinfo import check_images
    from qwen_agent_cli.tools.plan import plan_prompt

    workdir = workdir_of(directory)
    flags = setting_flags(locals())
    settings = settings_for(workdir, **flags)
    ResultLedger.output_format = settings.output_format
    preload_sdk(settings.profile.format)
    text = read_prompt(prompt)
    images = [load_image(path) for path in image or ()]
    invoked = invoked_command(text, workdir)
    session_store = open_store(settings)
    checkpoint = RunCheckpoint(error)  # for `qac undo`: the files before the run, and after
    try:
        settings, resume = resumed_settings(
            session_store, workdir, flags, settings, resume, continue_
        )
        if invoked is not None and invoked[0].model:
            settings = dataclasses.replace(settings, model=invoked[0].model)
        if images:
            check_images(settings)
        built = assemble(
            settings,
            env=os.environ,
            workdir=workdir,
            store=session_store,
            resume=resume,
        )
        checkpoint.start(built.repository, built.agent.session.id)
        if settings.sandbox == "off":
            error(built.executor.description)
        if invoked is not None:
            text = expand_command(*invoked, settings, workdir, built)
        if settings.plan_mode:
            text = plan_prompt(text)
        events = built.agent.run(text, resumed=built.resumed, images=images)
        result = drive(events, settings.output_format)
    finally:
        checkpoint.finish()
        session_store.close()
    finish(result)


app.command("exec", help="Same as `qac run`: run a task without a person.")(run)


def invoked_command(text: str, workdir: Path) -> tuple[CustomCommand, str] | None:
    """The custom command a `/name args` prompt names (checked before anything is stored);
    any other prompt, `/x` included, is sent as it is."""
    if not text.lstrip().startswith("/"):
        return None
    from qwen_agent_cli import commands
    from qwen_agent_cli.assemble import user_config_file

    user_dir = commands.user_commands_dir(user_config_file(os.environ))
    invoked = commands.find(text, commands.discover(workdir, user_dir)[0])
    if invoked is not None and invoked[0].problem:
        raise ConfigError(invoked[0].problem)
    return invoked


def expand_command(
    command: CustomCommand, arguments: str, settings: Settings, workdir: Path, built: Assembly
) -> str:
    """The command's prompt, its shell lines run in the run's sandbox; an untrusted project's
    are refused (the rest is sent) with one line saying so. Its `allowed-tools` hold for the run."""
    from qwen_agent_cli import commands
    from qwen_agent_cli.assemble import build_workspace

    def run(line: str) -> ExecResult:
        return built.executor.run(line, cwd=workdir, timeout=settings.command_timeout)

    trusted = settings.project_trusted or not command.project
    workspace = build_workspace(settings, os.environ, workdir)
    expansion = commands.expand(command, arguments, workspace, run if trusted else None)
    if expansion.refused:
        error(
            f"not running the shell lines of {command.path}: the project is not trusted "
            "(review its commands, then `qac trust`)"
        )
    if command.allowed_tools is not None:
        only = frozenset(command.allowed_tools)
        built.agent.dispatcher = dataclasses.replace(built.agent.dispatcher, only=only)
    return expansion.text


@app.command()
def ci(
    test_cmd: Annotated[str, typer.Option("--test-cmd", help="The failing test command.")],
    issue: Annotated[
        str | None, typer.Option("--issue", help="A file with the issue text.")
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The issue text.")] = None,
    commit: Annotated[
        bool, typer.Option("--commit", help="Commit a verified fix on a new branch.")
    ] = False,
    branch: Annotated[
        str | None, typer.Option("--branch", help="Branch for --commit (qac/fix-<session>).")
    ] = None,
    out: Annotated[str, typer.Option("--out", help="Directory for the artifacts.")] = ".qac-out",
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run on a working tree with changes.")
    ] = False,
    test_timeout: Annotated[
        float | None, typer.Option("--test-timeout", help="Seconds the test command may run.")
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
    thinking_budget: ThinkingBudgetOpt = None,
    sandbox: SandboxOpt = None,
    approval: ApprovalOpt = None,
    max_turns: MaxTurnsOpt = None,
    max_cost: MaxCostOpt = None,
    timeout: TimeoutOpt = None,
    output_format: FormatOpt = None,
    map_tokens: MapTokensOpt = None,
    compact_at: CompactAtOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
) -> None:
    """CI bug-fix job: verify the failure, fix it, re-verify, leave a patch and a report."""
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.ci import CiJob, run_ci

    workdir = workdir_of(directory)
    settings = settings_for(workdir, **setting_flags(locals()))
    ResultLedger.output_format = settings.output_format
    preload_sdk(settings.profile.format)
    if issue and prompt:
        raise ConfigError("use either --issue FILE or --prompt TEXT, not both")
    issue_text = prompt or ""
    if issue:
        try:
            issue_text = Path(issue).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the issue file {issue}: {exc}") from exc
    out_dir = Path(out) if Path(out).is_absolute() else workdir / out
    job = CiJob(
        test_cmd=test_cmd,
        out_dir=out_dir,
        issue_text=issue_text,
        commit=commit,
        branch=branch,
        allow_dirty=allow_dirty,
        test_timeout=test_timeout or settings.command_timeout,
    )
    session_store = open_store(settings)
    try:
        events = run_ci(settings, job, env=os.environ, workdir=workdir, store=session_store)
        result = drive(events, settings.output_format, ci_out=out_dir)
    finally:
        session_store.close()
    finish(result)


@app.command(hidden=True)
def repl(
    prompt: Annotated[
        str | None, typer.Argument(metavar="[PROMPT]", help="The first message.")
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
    thinking_budget: ThinkingBudgetOpt = None,
    resume: ResumeOpt = None,
    continue_: ContinueOpt = False,
    sandbox: SandboxOpt = None,
    approval: ApprovalOpt = None,
    max_turns: MaxTurnsOpt = None,
    max_cost: MaxCostOpt = None,
    timeout: TimeoutOpt = None,
    test_cmd: TestCmdOpt = None,
    map_tokens: MapTokensOpt = None,
    compact_at: CompactAtOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
) -> None:
    """The interactive REPL (what `qac [PROMPT]` opens)."""
    from qwen_agent_cli.assemble import workdir_of

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError(
            "the REPL needs a terminal; for scripts use `qac run PROMPT` (PROMPT - reads stdin)"
        )
    workdir = workdir_of(directory)
    flags = setting_flags(locals())
    settings = settings_for(workdir, warn=False, **flags)
    from qwen_agent_cli.ui.repl import run_repl
    from qwen_agent_cli.ui.terminal import ask_trust

    if settings.untrusted_keys:
        # The first-run question: trust is the user's to give, here or with `qac trust`.
        if ask_trust(workdir / PROJECT_CONFIG, settings.untrusted_keys):
            from qwen_agent_cli.assemble import user_config_file
            from qwen_agent_cli.trust import TrustStore

            TrustStore(user_config_file(os.environ).parent).trust(workdir)
        warned_untrusted.add(workdir)
        settings = settings_for(workdir, warn=False, **flags)

    session_store = open_store(settings)
    try:
        settings, resume = resumed_settings(
            session_store, workdir, flags, settings, resume, continue_
        )
        code = run_repl(
            settings,
            env=os.environ,
            workdir=workdir,
            store=session_store,
            first_prompt=prompt,
            resume=resume,
            continue_latest=False,
        )
    finally:
        session_store.close()
    raise typer.Exit(code)


@app.command()
def demo(
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Play the demo in this profile's wire format (an Anthropic-format profile "
            "such as dashscope-anthropic speaks /v1/messages); no network either way.",
        ),
    ] = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
) -> None:
    """Run the whole loop offline: a bundled repo with a failing test and a scripted model."""
    from qwen_agent_cli.demo import run_demo
    from qwen_agent_cli.ui.render import Renderer

    settings = settings_for(None, provider=provider, sandbox=sandbox, store=store)
    renderer = Renderer.to_stdout(thinking="full")
    kept = Path(store).expanduser().resolve() if store else None  # only when named here
    code = run_demo(settings, env=os.environ, show=renderer.write, say=renderer.say, store=kept)
    raise typer.Exit(code)
