"""What qac knows about the model a run uses: the window to compact against and the price to
count cost with, each with its source (the user's setting, the server, the catalogue, the
profile), and the notice that a model has no price, so `--max-cost` is never silently void.

Shared by `assemble` (a run) and `doctor` (which prints it).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwen_agent_cli.catalogue import (
    NO_PRICE_NOTICE,
    ModelFacts,
    describe,
    effective_window,
)
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.profiles import Price, Profile


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model: str
    facts: ModelFacts | None
    server_window: int | None
    window: int
    window_source: str
    price: Price | None
    hosted: bool
    """A paid endpoint (its profile needs a key), as opposed to the user's own server."""

    def price_notice(self, *, max_cost: float | None) -> str | None:
        """Said once per run where cost would otherwise read $0 without a word: a hosted model
        without a price, and any model without one when a cost budget was asked for."""
        if self.price is not None or not (self.hosted or max_cost is not None):
            return None
        return NO_PRICE_NOTICE.format(model=self.model)


def models_url(profile: Profile) -> str:
    """Where the server lists its models: `/v1/models` beside either format's endpoint."""
    if profile.format == "anthropic":
        from qwen_agent_cli.anthropic_provider import sdk_base_url

        return sdk_base_url(profile.base_url) + "/v1"
    return profile.base_url


def model_info(settings: Settings, api_key: str = "", *, ask_server: bool = True) -> ModelInfo:
    """The model's facts; the server is asked for its window only where its profile says it
    reports one (vLLM, SGLang) and the user did not set context_window."""
    profile = settings.profile
    facts = settings.catalogue.facts(profile.model)
    reported = None
    if ask_server and profile.window_from_server and not settings.context_window:
        from qwen_agent_cli.window_probe import server_window

        reported = server_window(models_url(profile), profile.model, api_key)
    window, source = effective_window(
        facts, reported, settings.context_window, profile.context_window
    )
    return ModelInfo(
        model=profile.model,
        facts=facts,
        server_window=reported,
        window=window,
        window_source=source,
        price=facts.price if facts is not None else None,
        hosted=bool(profile.key_env),
    )


def doctor_lines(settings: Settings, info: ModelInfo) -> list[str]:
    profile = settings.profile
    return describe(
        info.facts,
        profile.model,
        info.server_window,
        settings.context_window,
        profile.context_window,
    )


def accepts_images(settings: Settings) -> bool:
    profile = settings.profile
    facts = settings.catalogue.facts(profile.model)
    return profile.images or bool(facts is not None and facts.images)


def check_images(settings: Settings) -> None:
    """Refuse images, before any request, for a model not known to accept them: the catalogue
    says so, or the profile does (`images = true` for a server the catalogue cannot know)."""
    if accepts_images(settings):
        return
    profile = settings.profile
    facts = settings.catalogue.facts(profile.model)
    why = (
        "the model catalogue says it does not"
        if facts is not None
        else "it is not in the catalogue"
    )
    raise ConfigError(
        f"model {profile.model} cannot take images ({why}); pick a vision model with --model, "
        f"or set images = true in [providers.{profile.name}] if your server's model accepts them"
    )
