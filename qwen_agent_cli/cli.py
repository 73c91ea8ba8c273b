"""The command line (typer): the composition root. Reads the environment, builds settings and
the agent, maps every QacError to one stderr line and its exit code (DESIGN §3).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from qwen_agent_cli import __version__
from qwen_agent_cli.config import (
    PROJECT_CONFIG,
    SETTING_NAMES,
    STARTER_CONFIG,
    Settings,
    load_settings,
    settings_as_toml_dict,
)
from qwen_agent_cli.errors import ConfigError, QacError
from qwen_agent_cli.events import Event, Result
from qwen_agent_cli.types import Status

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

SUBCOMMANDS = frozenset({"run", "ci", "sessions", "config", "doctor", "demo", "repl", "trust"})
VALUE_OPTIONS = frozenset(
    {
        "--provider",
        "--model",
        "--base-url",
        "--api-key-env",
        "--resume",
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
    }
)
app = typer.Typer(
    name="qac",
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

ProviderOpt = Annotated[str | None, typer.Option("--provider", help="Provider profile.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name.")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="Endpoint URL.")]
KeyEnvOpt = Annotated[
    str | None, typer.Option("--api-key-env", help="Variable holding the API key.")
]
ThinkingOpt = Annotated[
    bool | None, typer.Option("--thinking/--no-thinking", help="Ask the model to think.")
]
PreserveOpt = Annotated[
    bool | None,
    typer.Option(
        "--preserve-thinking/--no-preserve-thinking",
        help="Send earlier reasoning back (default on).",
    ),
]
ResumeOpt = Annotated[str | None, typer.Option("--resume", help="Continue a stored session.")]
ContinueOpt = Annotated[
    bool, typer.Option("--continue", help="Continue the latest session for this directory.")
]
SandboxOpt = Annotated[
    str | None, typer.Option("--sandbox", help="read-only, workspace-write or off.")
]
ApprovalOpt = Annotated[str | None, typer.Option("--approval", help="ask, auto-edit or auto.")]
MaxTurnsOpt = Annotated[int | None, typer.Option("--max-turns", help="Model responses budget.")]
MaxCostOpt = Annotated[float | None, typer.Option("--max-cost", help="USD budget.")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Wall-clock seconds budget.")]
TestCmdOpt = Annotated[str | None, typer.Option("--test-cmd", help="Command run_tests runs.")]
FormatOpt = Annotated[
    str | None, typer.Option("--output-format", help="text, json or stream-json.")
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Session store file.")]
DirOpt = Annotated[str | None, typer.Option("-C", help="Work in DIR instead of here.")]
MapTokensOpt = Annotated[
    int | None, typer.Option("--map-tokens", help="Token budget of the repository map.")
]
CompactAtOpt = Annotated[
    float | None,
    typer.Option("--compact-at", help="Share of the context window that triggers compaction."),
]


_warned_untrusted: set[Path] = set()


def _settings(directory: Path | None, *, warn: bool = True, **flags: Any) -> Settings:
    """Every config layer, with this command's flags on top. An untrusted project's config
    sets preferences only; what it tried to set beyond that is named once on stderr."""
    from qwen_agent_cli.assemble import user_config_file

    env = dict(os.environ)
    trusted = False
    if directory is not None and (directory / PROJECT_CONFIG).is_file():
        from qwen_agent_cli.trust import TrustStore

        trusted = TrustStore(user_config_file(env).parent).is_trusted(directory)
    settings = load_settings(
        env=env,
        user_file=user_config_file(env),
        project_dir=directory,
        flags=flags,
        trusted_project=trusted,
    )
    if directory is not None and settings.untrusted_keys and warn:
        if directory in _warned_untrusted:
            return settings
        _warned_untrusted.add(directory)
        _error(
            f"ignoring {', '.join(settings.untrusted_keys)} from {directory / PROJECT_CONFIG} "
            "(the project is not trusted; review the file, then `qac trust` to apply them)"
        )
    return settings


def _setting_flags(parameters: dict[str, Any]) -> dict[str, Any]:
    """A command's parameters that are settings: options are named after Settings fields, so
    the flag layer is derived from the signature and cannot drift from it."""
    return {name: value for name, value in parameters.items() if name in SETTING_NAMES}


def _open_store(settings: Settings) -> Any:
    from qwen_agent_cli.assemble import store_path
    from qwen_agent_cli.store import SessionStore

    return SessionStore(store_path(settings, os.environ))


def _writer(output_format: str, ci_out: Path | None = None) -> Any:
    from qwen_agent_cli.ui import output

    if output_format == "json":
        return output.JsonWriter(sys.stdout)
    if output_format == "stream-json":
        return output.StreamJsonWriter(sys.stdout)
    progress = None
    if sys.stderr.isatty():
        from qwen_agent_cli.ui.render import Renderer

        progress = Renderer.to_stderr()
    if ci_out is not None:
        return output.CiTextWriter(sys.stdout, ci_out, progress)
    return output.TextWriter(sys.stdout, progress)


def _finish(result: Result | None) -> None:
    """Exit with the status's code; a non-zero exit says why on one stderr line."""
    if result is None:
        raise typer.Exit(130)
    status = Status(result.status)
    code = EXIT_BY_STATUS[status]
    if code:
        why = {
            Status.MAX_TURNS: "stopped at the --max-turns budget",
            Status.MAX_COST: "stopped at the --max-cost budget",
            Status.TIMEOUT: "stopped at the --timeout budget",
            Status.STUCK: "stopped: the model kept repeating a failing action",
            Status.NOT_FIXED: "not fixed: the test command still fails after the run",
            Status.ERROR: f"model API error: {result.result}",
            Status.INTERRUPTED: "interrupted",
        }[status]
        hint = ""
        if result.session_id and status is not Status.ERROR:
            hint = f'; continue with `qac run --resume {result.session_id} "..."`'
        _error(f"{why} (status {status.value}){hint}")
    raise typer.Exit(code)


def _error(message: str) -> None:
    sys.stderr.write(f"qac: {message}\n")
    sys.stderr.flush()


def _drive(
    events: Iterator[Event], output_format: str, ci_out: Path | None = None
) -> Result | None:
    writer = _writer(output_format, ci_out)
    result = None
    for event in events:
        writer.write(event)
        if isinstance(event, Result):
            result = event
    return result


def _resumed(
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
    info = store.get(resume) if resume else store.latest(str(workdir))
    if info is None:
        raise StoreError(f"no earlier session for {workdir} to continue; start one with run")
    given = {k: v for k, v in flags.items() if v is not None}
    return _settings(workdir, **{**session_defaults(info), **given}), info.id


def _read_prompt(prompt: str) -> str:
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise ConfigError("the prompt is empty: give the task as an argument, or - to read stdin")
    return text


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help='The task; "-" reads it from stdin.')],
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
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
) -> None:
    """Run a task to completion without a person; prints text or JSON."""
    from qwen_agent_cli import provider as provider_module

    preload = threading.Thread(target=provider_module.preload, daemon=True)
    preload.start()
    from qwen_agent_cli.assemble import assemble, workdir_of

    workdir = workdir_of(directory)
    flags = _setting_flags(locals())
    settings = _settings(workdir, **flags)
    text = _read_prompt(prompt)
    session_store = _open_store(settings)
    try:
        settings, resume = _resumed(session_store, workdir, flags, settings, resume, continue_)
        built = assemble(
            settings,
            env=os.environ,
            workdir=workdir,
            store=session_store,
            resume=resume,
        )
        if settings.sandbox == "off":
            _error(built.executor.description)
        result = _drive(built.agent.run(text, resumed=built.resumed), settings.output_format)
    finally:
        session_store.close()
    _finish(result)


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
    from qwen_agent_cli import provider as provider_module

    threading.Thread(target=provider_module.preload, daemon=True).start()
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.ci import CiJob, run_ci

    workdir = workdir_of(directory)
    settings = _settings(workdir, **_setting_flags(locals()))
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
    session_store = _open_store(settings)
    try:
        events = run_ci(settings, job, env=os.environ, workdir=workdir, store=session_store)
        result = _drive(events, settings.output_format, ci_out=out_dir)
    finally:
        session_store.close()
    _finish(result)


@app.command(hidden=True)
def repl(
    prompt: Annotated[str | None, typer.Argument(help="The first message.")] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
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
    flags = _setting_flags(locals())
    settings = _settings(workdir, warn=False, **flags)
    from qwen_agent_cli.ui.repl import ask_trust, run_repl

    if settings.untrusted_keys:
        # The first-run question: trust is the user's to give, here or with `qac trust`.
        if ask_trust(workdir / PROJECT_CONFIG, settings.untrusted_keys):
            from qwen_agent_cli.assemble import user_config_file
            from qwen_agent_cli.trust import TrustStore

            TrustStore(user_config_file(os.environ).parent).trust(workdir)
        _warned_untrusted.add(workdir)
        settings = _settings(workdir, warn=False, **flags)

    session_store = _open_store(settings)
    try:
        settings, resume = _resumed(session_store, workdir, flags, settings, resume, continue_)
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
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
) -> None:
    """Run the whole loop offline: a bundled repo with a failing test and a scripted model."""
    from qwen_agent_cli.demo import run_demo
    from qwen_agent_cli.ui.render import Renderer

    settings = _settings(None, sandbox=sandbox, store=store)
    renderer = Renderer.to_stdout(thinking="full")
    raise typer.Exit(run_demo(settings, env=os.environ, show=renderer.write, say=renderer.say))


@sessions_app.command("list")
def sessions_list(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Stored sessions, newest first."""
    import time

    session_store = _open_store(_settings(None, store=store))
    try:
        for info in session_store.list():
            count = session_store.count_messages(info.id)
            if as_json:
                print(
                    json.dumps(
                        {
                            "id": info.id,
                            "repository": info.repository,
                            "model": info.model,
                            "status": info.status,
                            "title": info.title,
                            "messages": count,
                            "updated_at": info.updated_at,
                        }
                    )
                )
                continue
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
            print(
                f"{info.id}  {when}  {info.status:<11} {count:>4} msgs  "
                f"{info.repository}  {info.title[:50]}"
            )
    finally:
        session_store.close()


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    thinking: Annotated[bool, typer.Option("--thinking", help="Include the reasoning.")] = False,
    context: Annotated[
        bool, typer.Option("--context", help="Tokens by part of the next request.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """A session's messages, with tool calls and (with --thinking) the reasoning."""
    session_store = _open_store(_settings(None, store=store))
    try:
        info = session_store.get(session_id)
        if context:
            _show_context(info, session_store.messages(info.id))
            return
        print(
            f"session {info.id} · {info.repository} · {info.provider}/{info.model} · {info.status}"
        )
        for number, message in enumerate(session_store.messages(info.id), start=1):
            if message.role == "compaction":
                print(
                    f"\n[{number}] ── compacted here: {message.name} starts; earlier turns "
                    "are summarized for the model (and all kept here) ──"
                )
                continue
            flags = " (interrupted)" if message.interrupted else ""
            flags += " (error)" if message.is_error else ""
            print(f"\n[{number}] {message.role}{flags}")
            if thinking and message.reasoning:
                print("  <thinking>")
                print("  " + message.reasoning.replace("\n", "\n  "))
                print("  </thinking>")
            if message.content:
                print(message.content)
            for call in message.tool_calls:
                print(f"  -> {call.name}({call.arguments})")
    finally:
        session_store.close()


def _show_context(info: Any, messages: Any) -> None:
    from qwen_agent_cli.compaction import active
    from qwen_agent_cli.tokens import context_breakdown, exact

    parts = context_breakdown(info, active(messages))
    how = "Qwen3.6 tokenizer" if exact() else "estimated, 4 characters a token"
    print(f"session {info.id}: tokens of the next request by part ({how})")
    for part, count in parts.items():
        print(f"  {part:<20} {count:>9}")
    print(f"  {'total':<20} {sum(parts.values()):>9}")


@sessions_app.command("export")
def sessions_export(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    out: Annotated[str | None, typer.Option("-o", "--output", help="File to write.")] = None,
    store: StoreOpt = None,
) -> None:
    """Write a session as JSON Lines (lossless, reasoning included) to a file or stdout."""
    from qwen_agent_cli.workspace import write_private

    session_store = _open_store(_settings(None, store=store))
    try:
        lines = list(session_store.export_jsonl(session_id))
    finally:
        session_store.close()
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        write_private(Path(out), text)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc}") from exc


@sessions_app.command("import")
def sessions_import(
    file: Annotated[str, typer.Argument(help='A JSON Lines export; "-" reads stdin.')],
    store: StoreOpt = None,
) -> None:
    """Add an exported session to the store under its original id, ready to --resume."""
    from qwen_agent_cli.errors import StoreError

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        # Only "\n" ends a record: U+2028 and friends may stand raw inside JSON strings.
        lines = text.split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {file}: {exc}") from exc
    session_store = _open_store(_settings(None, store=store))
    try:
        info = session_store.import_jsonl(lines, source=file)
    finally:
        session_store.close()
    print(info.id)


@sessions_app.command("rm")
def sessions_rm(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    store: StoreOpt = None,
) -> None:
    """Delete a session and its messages."""
    session_store = _open_store(_settings(None, store=store))
    try:
        info = session_store.get(session_id)
        session_store.remove(info.id)
    finally:
        session_store.close()
    print(f"removed {info.id}")


@config_app.command("show")
def config_show(directory: DirOpt = None) -> None:
    """The effective settings after every layer, as TOML."""
    from qwen_agent_cli.assemble import workdir_of

    settings = _settings(workdir_of(directory))
    for key, value in settings_as_toml_dict(settings).items():
        if value is None:
            print(f"# {key} is unset")
        else:
            print(f"{key} = {json.dumps(value)}")
    profile = settings.profile
    print(
        f"\n# provider {profile.name}: {profile.base_url}, model {profile.model}, "
        f"key from {profile.key_env or '(none needed)'}"
    )


@config_app.command("path")
def config_path(directory: DirOpt = None) -> None:
    """Where the user and project config files are (and whether they exist)."""
    from qwen_agent_cli.assemble import user_config_file, workdir_of

    user = user_config_file(os.environ)
    project = workdir_of(directory) / PROJECT_CONFIG
    for label, path in (("user", user), ("project", project)):
        print(f"{label}: {path}{'' if path.is_file() else ' (not present)'}")


@config_app.command("init")
def config_init(
    project: Annotated[
        bool, typer.Option("--project", help="Write .qac/config.toml here instead.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    directory: DirOpt = None,
) -> None:
    """Write a commented starter config file."""
    from qwen_agent_cli.assemble import user_config_file, workdir_of

    path = workdir_of(directory) / PROJECT_CONFIG if project else user_config_file(os.environ)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STARTER_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc
    print(f"wrote {path}")


@app.command()
def trust(
    directory: Annotated[
        str | None, typer.Argument(help="The project directory (default: here).")
    ] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the trust.")] = False,
    list_trusted: Annotated[
        bool, typer.Option("--list", help="List the trusted projects.")
    ] = False,
) -> None:
    """Trust a project's own config: its sandbox, approval, provider, endpoint and key settings
    apply from now on, until the file changes (then it needs trusting again)."""
    from qwen_agent_cli.assemble import user_config_file, workdir_of
    from qwen_agent_cli.trust import TrustStore

    store = TrustStore(user_config_file(os.environ).parent)
    if list_trusted:
        for record in store.records().values():
            state = "" if Path(record.path).is_dir() else "  (missing)"
            print(f"{record.path}  {record.digest[:19]}{state}")
        return
    project = workdir_of(directory)
    if revoke:
        found = store.revoke(project)
        print(f"{'revoked trust in' if found else 'was not trusted:'} {project}")
        return
    keys = _settings(project, warn=False).untrusted_keys
    record = store.trust(project)
    config = project / PROJECT_CONFIG
    if not config.is_file():
        print(f"trusted {project} (it has no {PROJECT_CONFIG} yet; one added later needs trust)")
        return
    applied = f"; now applied: {', '.join(keys)}" if keys else ""
    print(f"trusted {project} ({PROJECT_CONFIG} {record.digest[:19]}…){applied}")
    print("a change to the file needs `qac trust` again")


@app.command()
def doctor(
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
    probe: Annotated[
        bool,
        typer.Option("--thinking", help="Probe whether the server really preserves thinking."),
    ] = False,
) -> None:
    """Check the key, the endpoint, the model, the sandbox, git and the store."""
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.doctor import run_checks

    workdir = workdir_of(directory)
    settings = _settings(workdir, **_setting_flags(locals()))
    failures = 0
    for check in run_checks(settings, env=os.environ, workdir=workdir, probe=probe):
        failures += not check.ok
        mark = "ok  " if check.ok else "FAIL"
        print(f"{mark} {check.name}: {check.detail}")
    if failures:
        _error(f"{failures} check(s) failed; see the FAIL lines above for the fix")
    raise typer.Exit(1 if failures else 0)


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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn every failure into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"qac {__version__}")
        sys.exit(0)
    sys.exit(invoke(args))


def route(args: list[str]) -> list[str]:
    """`qac [PROMPT] [options]` is the REPL: anything that is not a subcommand goes to it."""
    if args and (args[0] in SUBCOMMANDS or args[0] in ("--help", "-h", "--version")):
        return args
    leading, index = [], 0
    while index < len(args) and args[index].startswith("-"):
        takes_value = args[index] in VALUE_OPTIONS and "=" not in args[index]
        leading += args[index : index + 1 + takes_value]
        index += 1 + takes_value
    if index < len(args) and args[index] in SUBCOMMANDS:
        # `qac -C dir run x`: options written before the subcommand belong to it.
        return [args[index], *leading, *args[index + 1 :]]
    return ["repl", *args]


def invoke(args: list[str]) -> int:
    """Run the command line; returns the exit code (tests call this in-process)."""
    command = typer.main.get_command(app)
    _warned_untrusted.clear()
    try:
        code = command.main(args=route(args), prog_name="qac", standalone_mode=False)
    except QacError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        code = _framework_exit(exc)
        if code is None:
            raise
        return code
    return code if isinstance(code, int) else 0


def _framework_exit(exc: Exception) -> int | None:
    """Typer's (click's) own exits and usage errors, recognised without importing click."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    context = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in names and context is not None:
        print(context.get_help())
        return 0
    if "Exit" in names:
        return int(getattr(exc, "exit_code", 0))
    if "Abort" in names:
        _error("interrupted")
        return 130
    if "UsageError" in names or "BadParameter" in names:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        path = context.command_path if context is not None else "qac"
        _error(f"{message.rstrip('.')} (see `{path} --help`)")
        return 2
    if "ClickException" in names:
        _error(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        return int(getattr(exc, "exit_code", 1))
    return None


if __name__ == "__main__":
    main()
