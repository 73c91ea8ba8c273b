"""Provider profiles: where an endpoint is, which wire format it speaks, and where thinking goes
on that wire (configs/providers.toml, with the user's [providers.NAME] tables over it).

Reads only packaged files and the tables it is given; `config` layers the rest.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from qwen_agent_cli.errors import ConfigError

WIRE_FORMATS = ("openai", "anthropic")
THINKING_SWITCHES = ("top_level", "chat_template_kwargs", "reasoning_effort", "openrouter", "none")
PRESERVE_SWITCHES = ("top_level", "chat_template_kwargs", "none")
REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
DEFAULT_MAX_TOKENS = 32768


@dataclass(frozen=True, slots=True)
class Profile:
    """How to talk to one provider: endpoint, key, wire format, and where thinking goes.

    `format` picks chat completions ("openai") or Anthropic Messages ("anthropic"); on the
    latter, `thinking_budget` is the budget_tokens of each request's thinking and
    `cache_control` marks the stable prefix for servers that cache on request."""

    name: str
    base_url: str
    key_env: str
    model: str
    format: str = "openai"
    context_window: int = 262144
    thinking_switch: str = "none"
    preserve_switch: str = "none"
    reasoning_fields: tuple[str, ...] = ("reasoning_content",)
    preserve_models: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_tokens_field: str = "max_tokens"
    thinking_budget: int = 16384
    cache_control: bool = False
    images: bool = False
    """The endpoint's models accept images whatever the catalogue says (your own server)."""
    window_from_server: bool = False
    """The server reports its real window on /v1/models (vLLM's and SGLang's max_model_len)."""

    def honours_preserve(self, model: str) -> bool:
        """Whether this profile has a preserve switch that the given model obeys."""
        if self.preserve_switch == "none":
            return False
        return not self.preserve_models or any(
            fnmatch.fnmatchcase(model, pattern) for pattern in self.preserve_models
        )


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None


def packaged_text(name: str) -> str:
    """A shipped config file: from the installed wheel, or the checkout's `configs/`."""
    try:
        return resources.files("qwen_agent_cli.configs").joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        checkout = Path(__file__).resolve().parent.parent / "configs" / name
        return checkout.read_text("utf-8")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc


def load_profiles(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Profile]:
    """Packaged profiles, with user [providers.NAME] tables merged over them."""
    tables = parse_toml(packaged_text("providers.toml"), "packaged providers.toml")
    for name, table in (overrides or {}).items():
        tables[name] = {**tables.get(name, {}), **table}
    profiles = {}
    for name, table in tables.items():
        profiles[name] = _profile(name, table)
    return profiles


def _profile(name: str, table: Mapping[str, Any]) -> Profile:
    where = f"provider profile {name!r}"
    known = {f.name for f in fields(Profile)} - {"name"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    for required in ("base_url", "model"):
        if not isinstance(table.get(required), str):
            raise ConfigError(f"{where} needs a string {required}")
    data = dict(table)
    for list_key in ("reasoning_fields", "preserve_models"):
        if list_key in data:
            data[list_key] = tuple(data[list_key])
    profile = Profile(name=name, key_env=str(data.pop("key_env", "")), **data)
    if profile.format not in WIRE_FORMATS:
        raise ConfigError(f"{where}: format must be one of {', '.join(WIRE_FORMATS)}")
    if profile.thinking_switch not in THINKING_SWITCHES:
        raise ConfigError(f"{where}: thinking_switch must be one of {', '.join(THINKING_SWITCHES)}")
    if profile.preserve_switch not in PRESERVE_SWITCHES:
        raise ConfigError(f"{where}: preserve_switch must be one of {', '.join(PRESERVE_SWITCHES)}")
    if not isinstance(profile.max_tokens, int) or profile.max_tokens < 0:
        raise ConfigError(f"{where}: max_tokens must be a whole number, 0 for no limit")
    if profile.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
        raise ConfigError(f"{where}: max_tokens_field must be max_tokens or max_completion_tokens")
    if not isinstance(profile.thinking_budget, int) or profile.thinking_budget < 1:
        raise ConfigError(f"{where}: thinking_budget must be a whole number of tokens, 1 or more")
    for flag in ("cache_control", "window_from_server", "images"):
        if not isinstance(getattr(profile, flag), bool):
            raise ConfigError(f"{where}: {flag} must be true or false")
    bad = set(profile.reasoning_fields) - set(REASONING_FIELDS)
    if bad:
        raise ConfigError(f"{where}: unknown reasoning_fields {', '.join(sorted(bad))}")
    return profile


def check_anthropic_limits(profile: Profile, *, thinking: bool) -> None:
    """The Messages API needs max_tokens on every request, above the thinking budget: refuse a
    profile that would be rejected on its first request, before anything runs."""
    if profile.format != "anthropic":
        return
    if profile.max_tokens < 1:
        raise ConfigError(
            f"provider {profile.name!r} speaks the Anthropic format, which needs max_tokens: "
            f"set max_tokens above 0 (the default is {DEFAULT_MAX_TOKENS})"
        )
    if thinking and profile.thinking_budget >= profile.max_tokens:
        raise ConfigError(
            f"thinking_budget ({profile.thinking_budget}) must be below max_tokens "
            f"({profile.max_tokens}) on the Anthropic format: lower one or raise the other"
        )
