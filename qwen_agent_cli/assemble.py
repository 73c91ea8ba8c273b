"""Builds a ready Agent from Settings: the provider, the executor, the tools and the session
(new, resumed or continued). Shared by `run`, `ci` and `demo` so they cannot drift.

Takes the environment as an argument; never reads the process environment itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from qwen_agent_cli import context
from qwen_agent_cli.agent import Agent
from qwen_agent_cli.approval import Approver, NonInteractiveApprover, Policy
from qwen_agent_cli.budgets import Budgets
from qwen_agent_cli.compaction import Compactor
from qwen_agent_cli.config import Settings
from qwen_agent_cli.dispatch import Dispatcher
from qwen_agent_cli.errors import ConfigError, StoreError
from qwen_agent_cli.guard import homes, secret_paths
from qwen_agent_cli.hooks import Hooks, parse_hooks
from qwen_agent_cli.mcp_tools import McpSetup, start_servers
from qwen_agent_cli.modelinfo import accepts_images, model_info
from qwen_agent_cli.mounts import toolchain_env
from qwen_agent_cli.provider import RetryPolicy, make_provider
from qwen_agent_cli.repository import Repository
from qwen_agent_cli.sandbox import Executor, make_executor, scrubbed_env
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.text import encodable
from qwen_agent_cli.tokens import estimate_tokens
from qwen_agent_cli.tools import BUILTIN_TOOLS, Tool, ToolContext, ToolRegistry
from qwen_agent_cli.types import SessionInfo
from qwen_agent_cli.workspace import Workspace

DATA_DIR_NAME = "qac"


def data_dir(env: Mapping[str, str]) -> Path:
    """QAC_HOME, else the platform's user data directory."""
    if env.get("QAC_HOME"):
        return Path(env["QAC_HOME"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(DATA_DIR_NAME))


def user_config_file(env: Mapping[str, str]) -> Path:
    """QAC_HOME/config.toml, else the platform's user config directory."""
    if env.get("QAC_HOME"):
        return Path(env["QAC_HOME"]).expanduser() / "config.toml"
    from platformdirs import user_config_dir

    return Path(user_config_dir(DATA_DIR_NAME)) / "config.toml"


def map_cache_dir(env: Mapping[str, str], workdir: Path) -> Path:
    """One repository-map cache per repository, under the data directory."""
    repository = Repository.find(workdir)
    root = repository.root if repository is not None else workdir.resolve()
    key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    return data_dir(env) / "repomap" / key


def store_path(settings: Settings, env: Mapping[str, str]) -> Path:
    return Path(settings.store).expanduser() if settings.store else data_dir(env) / "sessions.db"


def system_prompt() -> str:
    return resources.files("qwen_agent_cli.prompts").joinpath("system.md").read_text("utf-8")


def api_key(settings: Settings, env: Mapping[str, str]) -> str:
    """The key from the profile's variable; a missing one is a clear config error."""
    profile = settings.profile
    if not profile.key_env:
        return ""
    key = env.get(profile.key_env, "").strip()
    if not key:
        raise ConfigError(
            f"{profile.key_env} is not set: export {profile.key_env}=<your key> for provider "
            f"{profile.name!r}, or pick another with --provider / --api-key-env"
        )
    return key


def workdir_of(directory: str | None) -> Path:
    path = Path(directory or ".").expanduser()
    if not path.exists():
        raise ConfigError(f"cannot work in {path}: no such directory")
    if not path.is_dir():
        raise ConfigError(f"cannot work in {path}: not a directory")
    try:
        next(path.iterdir(), None)
    except PermissionError:
        raise ConfigError(f"cannot work in {path}: permission denied") from None
    return path.resolve()


def private_paths(settings: Settings, env: Mapping[str, str]) -> list[Path]:
    """What no tool and no sandboxed command may see: the homes' credentials, qac's data and
    config directories and the store. One list for the file tools and the sandbox."""
    paths = secret_paths(homes(env))
    paths += [data_dir(env), user_config_file(env).parent]
    if settings.store:
        paths.append(Path(settings.store).expanduser().resolve().parent)
    return paths


def build_executor(
    settings: Settings, env: Mapping[str, str], workdir: Path, *, masked: Sequence[Path] = ()
) -> Executor:
    """The executor for this run; `masked` adds paths hidden from it (a job's output)."""
    profile = settings.profile
    secret = (*settings.sandbox_secret_env, *([profile.key_env] if profile.key_env else ()))
    clean = scrubbed_env(env, extra_allowed=settings.sandbox_env, secret=secret, home="")
    clean.update(toolchain_env(env))  # the real HOME's toolchains, as HOME is a throwaway one
    return make_executor(
        settings.sandbox,
        workspace=workdir,
        env=clean,
        network=settings.sandbox_network,
        masked=[*private_paths(settings, env), *masked],
        homes=homes(env),
        bwrap_path=settings.sandbox_bwrap,
        scratch_mb=settings.sandbox_tmp_size_mb,
    )


def build_workspace(
    settings: Settings, env: Mapping[str, str], workdir: Path, *, protected: Sequence[Path] = ()
) -> Workspace:
    """The file tools' guard, with the same secrets the sandbox hides."""
    return Workspace(
        workdir,
        guarded=settings.sandbox != "off",
        writable=settings.sandbox != "read-only",
        secrets=tuple(private_paths(settings, env)),
        protected=tuple(protected),
    )


def session_defaults(info: SessionInfo) -> dict[str, Any]:
    """The settings a stored session was made with, to resume it the same way."""
    defaults: dict[str, Any] = {"provider": info.provider, "model": info.model}
    for key in ("base_url", "thinking", "preserve_thinking"):
        if key in info.settings:
            defaults[key] = info.settings[key]
    return defaults


@dataclass(frozen=True, slots=True)
class Assembly:
    agent: Agent
    resumed: bool
    executor: Executor
    repository: Repository | None
    """The repository found before the run: the only one qac's own git calls touch."""
    servers: McpSetup
    """The MCP servers this run's tools come from (for `/mcp`)."""


def open_session(
    store: SessionStore,
    settings: Settings,
    workdir: Path,
    tools: Callable[[], list[dict[str, Any]]],
    *,
    repository: Repository | None,
    resume: str | None,
    continue_latest: bool,
    map_cache: Path | None = None,
    user_dir: Path | None = None,
    secrets: Sequence[Path] = (),
) -> tuple[SessionInfo, bool]:
    """The stored session to continue, or a new one with its snapshot taken now, once.
    `tools` is asked for the tool schemas after the snapshot (MCP servers start meanwhile).
    The instruction files it read are kept in its settings, so a resume reports the same."""
    if resume:
        return store.get(resume), True
    if continue_latest:
        latest = store.latest(str(workdir))
        if latest is None:
            raise StoreError(f"no earlier session for {workdir} to continue; start one with run")
        return latest, True
    profile = settings.profile
    taken = context.snapshot(
        workdir,
        repository,
        map_tokens=settings.map_tokens,
        map_cache=map_cache,
        count_tokens=estimate_tokens,
        user_dir=user_dir,
        secrets=secrets,
    )
    details: dict[str, object] = {
        "thinking": settings.thinking,
        "preserve_thinking": settings.preserve_thinking,
        "sandbox": settings.sandbox,
        "base_url": profile.base_url,
        "format": profile.format,
        "instructions": taken.instructions.listing(),
    }
    if taken.instructions.notes:
        details["instruction_notes"] = list(taken.instructions.notes)
    if taken.map is not None:
        details["repository_map"] = {
            "files_parsed": taken.map.files_parsed,
            "files_cached": taken.map.files_cached,
            "symbols": taken.map.symbols,
        }
    info = SessionInfo(
        id="",
        repository=repository.name if repository is not None else workdir.name,
        workdir=str(workdir),
        provider=profile.name,
        model=profile.model,
        system_prompt=system_prompt(),
        context=encodable(taken.text),  # file names need not be UTF-8
        tools=tuple(tools()),
        settings=details,
    )
    return store.create(info), False


def assemble(
    settings: Settings,
    *,
    env: Mapping[str, str],
    workdir: Path,
    store: SessionStore,
    resume: str | None = None,
    continue_latest: bool = False,
    approver: Approver | None = None,
    default_approval: str = "auto",
    executor: Executor | None = None,
    protected: Sequence[Path] = (),
) -> Assembly:
    """Everything a run needs, checked before the first request is sent."""
    if settings.plan_mode:  # read and search only: the sandbox and the file tools refuse writes
        settings = dataclasses.replace(settings, sandbox="read-only")
    profile = settings.profile
    key = api_key(settings, env)
    hooks = parse_hooks(settings.hooks)
    servers = start_servers(settings, env, workdir, data_dir(env) / "mcp-tools.json")
    repository = Repository.find(workdir)
    executor = executor or build_executor(settings, env, workdir)
    workspace = build_workspace(settings, env, workdir, protected=protected)
    made: list[ToolRegistry] = []

    def registry() -> ToolRegistry:
        if not made:
            offered = [*offered_tools(settings), *servers.tools(images=accepts_images(settings))]
            made.append(ToolRegistry(offered, ToolContext(workspace, executor, settings)))
        return made[0]

    session, resumed = open_session(
        store,
        settings,
        workdir,
        lambda: registry().schemas(),
        repository=repository,
        resume=resume,
        continue_latest=continue_latest,
        map_cache=map_cache_dir(env, workdir),
        user_dir=user_config_file(env).parent,
        secrets=private_paths(settings, env),
    )
    # One writer per session: a second qac on it is refused here, before it writes anything.
    # The lease goes back when the caller closes the store, however the run ends.
    store.acquire(session.id)
    mode = settings.approval or default_approval
    model = model_info(settings, key)
    session_hooks = Hooks(hooks, session.id, workspace, env)
    tools = registry()
    notices = [*servers.notices, *(format_notice(session, profile.format) if resumed else ())]
    priced = model.price_notice(max_cost=settings.max_cost)
    if priced:
        notices.append(priced)
    provider = make_provider(
        profile,
        key,
        thinking=settings.thinking,
        preserve=settings.preserve_thinking,
        retry=RetryPolicy(settings.retries, settings.retry_base_delay, settings.retry_max_delay),
        request_timeout=settings.request_timeout,
        idle_timeout=settings.stream_idle_timeout,
        price=model.price,
    )
    agent = Agent(
        model=provider,
        store=store,
        session=session,
        dispatcher=Dispatcher(
            tools,
            Policy(
                mode,
                settings.allow,
                settings.deny,
                web_domains=settings.web_fetch_domains,
                mcp_allowed=servers.allowed(),
                plan_mode=settings.plan_mode,
            ),
            approver or NonInteractiveApprover(mode),
            session_hooks,
        ),
        compactor=Compactor(
            model.window,
            settings.compact_at,
            settings.compact_keep,
        ),
        budgets=Budgets(
            max_turns=settings.max_turns,
            max_cost=settings.max_cost,
            timeout=settings.timeout,
            stuck_warn_after=settings.stuck_warn_after,
            stuck_stop_after=settings.stuck_stop_after,
        ),
        repository=repository,
        notices=notices,
        hooks=session_hooks,
        facts={"cwd": str(workdir), "sandbox": settings.sandbox, "approval": mode},
    )
    return Assembly(agent, resumed, executor, repository, servers)


def offered_tools(settings: Settings) -> list[Tool]:
    """The built-in tools this run offers: web_fetch only where the user has not turned it off."""
    return [t for t in BUILTIN_TOOLS if t.name != "web_fetch" or settings.web_fetch]


def format_notice(session: SessionInfo, wire_format: str) -> tuple[str, ...]:
    """A session keeps the wire format it started with; resumed on the other one (by naming a
    provider of that format), its thinking is converted, and the user is told once."""
    started = str(session.settings.get("format", "openai"))
    if started == wire_format:
        return ()
    if wire_format == "anthropic":
        how = "earlier reasoning goes back as thinking blocks with empty signatures"
    else:
        how = (
            "earlier thinking blocks go back as reasoning text; their signatures and any "
            "redacted thinking stay behind"
        )
    return (
        f"session {session.id} started on the {started} wire format and goes on in the "
        f"{wire_format} format: {how} (signatures cannot travel between formats)",
    )
