"""The typer application and what its commands share: the option types, loading settings
(with the project's trust applied), the store, the output writers and the exit a status maps to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Annotated, Any

import typer

from qwen_agent_cli import __version__, signals
from qwen_agent_cli.cli.group import QacGroup
from qwen_agent_cli.config import (
    PROJECT_CONFIG,
    SETTING_NAMES,
    Settings,
    load_settings,
)
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.events import Event, Result
from qwen_agent_cli.types import Status
from qwen_agent_cli.visible import visible

EXIT_BY_STATUS = {
    Status.DONE: 0,
    Status.FIXED: 0,
    Status.ALREADY_PASSING: 0,
    Status.MAX_TURNS: 1,
    Status.MAX_COST: 1,
    Status.TIMEOUT: 1,
    Status.STUCK: 1,
    Status.NOT_FIXED: 1,
    Status.ERROR: 3,
    Status.INTERRUPTED: 130,
}

SUBCOMMANDS = frozenset(
    {
        "run",
        "exec",
        "ci",
        "sessions",
        "config",
        "doctor",
        "demo",
        "repl",
        "trust",
        "mcp",
        "init",
        "undo",
        "eval",
    }
)
PICK = "?"
"""The `--resume` value meaning "no id given": the picker chooses (routing puts it there)."""
VALUE_OPTIONS = frozenset(
    {
        "--provider",
        "--model",
        "-m",
        "-p",
        "--print",
        "--base-url",
        "--api-key-env",
        "--resume",
        "-r",
        "--sandbox",
        "--approval",
        "--max-turns",
        "--max-cost",
        "--timeout",
        "--test-cmd",
        "--output-format",
        "--store",
        "-C",
        "--map-tokens",
        "--compact-at",
        "--thinking-budget",
    }
)
app = typer.Typer(
    name="qac",
    cls=QacGroup,
    help=(
        "qwen-agent-cli: an agentic coding CLI for Qwen models, with preserved thinking. "
        "`qac [PROMPT]` opens the interactive REPL (PROMPT, if given, is the first message)."
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
sessions_app = typer.Typer(
    help="List, show, export, import and remove stored sessions.", no_args_is_help=True
)
config_app = typer.Typer(help="Show, locate and create configuration.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
app.add_typer(config_app, name="config")

warned_untrusted: set[Path] = set()


def settings_for(directory: Path | None, *, warn: bool = True, **flags: Any) -> Settings:
    """Every config layer, with this command's flags on top. An untrusted project's config
    sets preferences only; what it tried to set beyond that is named once on stderr."""
    from qwen_agent_cli.assemble import user_config_file

    env = dict(os.environ)
    from qwen_agent_cli.trust import TrustStore, has_project_config

    trusted = False
    if directory is not None and has_project_config(directory):
        trusted = TrustStore(user_config_file(env).parent).is_trusted(directory)
    settings = load_settings(
        env=env,
        user_file=user_config_file(env),
        project_dir=directory,
        flags=flags,
        trusted_project=trusted,
    )
    if directory is not None and settings.untrusted_keys and warn:
        if directory in warned_untrusted:
            return settings
        warned_untrusted.add(directory)
        error(
            f"ignoring {', '.join(settings.untrusted_keys)} from {directory / PROJECT_CONFIG} "
            "(the project is not trusted; review the file, then `qac trust` to apply them)"
        )
    return settings


def setting_flags(parameters: dict[str, Any]) -> dict[str, Any]:
    """A command's parameters that are settings: options are named after Settings fields, so
    the flag layer is derived from the signature and cannot drift from it."""
    return {name: value for name, value in parameters.items() if name in SETTING_NAMES}


def open_store(settings: Settings) -> Any:
    from qwen_agent_cli.assemble import store_path
    from qwen_agent_cli.store import SessionStore

    return SessionStore(store_path(settings, os.environ))


def writer_for(output_format: str, ci_out: Path | None = None) -> Any:
    """The output writer; where no renderer shows progress on a terminal, slow retries are
    still said on stderr."""
    from qwen_agent_cli.ui import output

    writer: Any
    if output_format == "json":
        writer = output.JsonWriter(sys.stdout)
    elif output_format == "stream-json":
        writer = output.StreamJsonWriter(sys.stdout)
    else:
        progress = None
        if sys.stderr.isatty():
            from qwen_agent_cli.ui.render import Renderer

            progress = Renderer.to_stderr()
        if ci_out is not None:
            writer = output.CiTextWriter(sys.stdout, ci_out, progress)
        else:
            writer = output.TextWriter(sys.stdout, progress)
        if progress is not None:
            return writer
    from qwen_agent_cli.ui.waits import WaitNotices

    return WaitNotices(output.RetryNotices(writer, sys.stderr), sys.stderr, wait_notice_after())


def wait_notice_after() -> float:
    """Seconds a wait lasts before it is said on stderr off a terminal: `QAC_WAIT_NOTICE_S`, a
    testing and advanced knob, else the default."""
    from qwen_agent_cli.ui.waits import WAIT_NOTICE_S

    raw = os.environ.get("QAC_WAIT_NOTICE_S")
    if raw is None:
        return WAIT_NOTICE_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"QAC_WAIT_NOTICE_S must be a number of seconds above 0, got {raw!r}")
    return seconds


def finish(result: Result | None) -> None:
    """Exit with the status's code; a non-zero exit says why on one stderr line."""
    if result is None:  # the run ended before its result: an interrupt (said by the caller)
        raise KeyboardInterrupt
    status = Status(result.status)
    code = signals.exit_code() if status is Status.INTERRUPTED else EXIT_BY_STATUS[status]
    if result.exit_code is not None:  # the store failed mid-run: its own message and code
        error(f"{result.result} (status {status.value})")
        raise typer.Exit(result.exit_code)
    if code:
        why = {
            Status.MAX_TURNS: "stopped at the --max-turns budget",
            Status.MAX_COST: "stopped at the --max-cost budget",
            Status.TIMEOUT: "stopped at the --timeout budget",
            Status.STUCK: "stopped: the model kept repeating a failing action",
            Status.NOT_FIXED: "not fixed: the test command still fails after the run",
            Status.ERROR: f"model API error: {result.result}",
            Status.INTERRUPTED: signals.describe(),
        }[status]
        hint = ""
        if result.session_id and status is not Status.ERROR:
            hint = f'; continue with `qac run --resume {result.session_id} "..."`'
        error(f"{why} (status {status.value}){hint}")
    raise typer.Exit(code)


def error(message: str) -> None:
    """One line on stderr; the message may quote a server or a file, so it is shown, not obeyed."""
    sys.stderr.write(f"qac: {visible(message)}\n")
    sys.stderr.flush()


def show(text: str = "") -> None:
    """A line on stdout holding text from outside qac (a session, a server, a path)."""
    sys.stdout.write(visible(text) + "\n")


def drive(
    events: Generator[Event, None, None], output_format: str, ci_out: Path | None = None
) -> Result | None:
    """Write the run's events in the chosen format; returns its Result. The writer is closed
    however the run ends, so no spinner line or wait notice outlives it."""
    from qwen_agent_cli.ui.output import close_writer, relay

    writer = writer_for(output_format, ci_out)
    try:
        return relay(events, writer.write)
    finally:
        close_writer(writer)


def _read_stdin() -> str:
    raw = getattr(sys.stdin, "buffer", None)
    return sys.stdin.read() if raw is None else raw.read().decode("utf-8", "replace")


def resumed_settings(
    store: Any,
    workdir: Path,
    flags: dict[str, Any],
    settings: Settings,
    resume: str | None,
    continue_latest: bool,
) -> tuple[Settings, str | None]:
    """A resumed session keeps its own provider, model, endpoint and thinking settings unless
    this command's flags say otherwise, so its requests stay extensions of the stored ones."""
    from qwen_agent_cli.assemble import session_defaults
    from qwen_agent_cli.errors import StoreError

    if resume and continue_latest:
        raise ConfigError("use either --resume ID or --continue, not both")
    if not (resume or continue_latest):
        return settings, None
    if resume == PICK:
        from qwen_agent_cli.ui.picker import pick_session

        info = pick_session(store, workdir)
    else:
        info = store.get(resume) if resume else store.latest(str(workdir))
    if info is None:
        raise StoreError(f"no earlier session for {workdir} to continue; start one with run")
    given = {k: v for k, v in flags.items() if v is not None}
    defaults = session_defaults(info)
    if given.get("provider", info.provider) != info.provider:
        # Another provider: the session's endpoint and model name belong to its old one.
        defaults = {k: v for k, v in defaults.items() if k not in ("base_url", "model")}
    return settings_for(workdir, **{**defaults, **given}), info.id


def read_prompt(prompt: str | None) -> str:
    """The task, from the argument or stdin; bytes that are not UTF-8 become U+FFFD, never a
    crash (the argument's own undecodable bytes are repaired where messages enter the store)."""
    if prompt is None and sys.stdin.isatty():
        raise ConfigError("give the task: `qac run PROMPT` (PROMPT - reads stdin)")
    text = _read_stdin() if prompt in ("-", None) else prompt
    if not text.strip():
        raise ConfigError("the prompt is empty: give the task as an argument, or - to read stdin")
    return text


def _version_callback(value: bool) -> None:
    if value:
        print(f"qac {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """qwen-agent-cli (qac)."""
