"""The model catalogue: window, prices, image input and preserve support, by model name.

Compaction needs the real window and cost needs a price, and both belong to the model rather than
to the provider, so they live in `configs/models.toml` with the user's `[models."NAME"]` tables
merged over it. A name is found exactly, then as an alias, then loosely (see `normalise`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.profiles import Price, packaged_text, parse_toml

CATALOGUE = "catalogue"
PACKAGED = "packaged models.toml"
NO_PRICE_NOTICE = (
    "no price known for {model}: cost shows as $0 and --max-cost cannot stop a run; "
    'set [models."{model}"] input/output in your config'
)
"""Shown once per run (and by `qac doctor`) so a missing price never silently costs $0."""
_INTS = ("window", "max_window")
_PRICES = ("input", "output", "cached_input")
_BOOLS = ("images", "preserve_thinking")
KEYS = (*_INTS, *_PRICES, *_BOOLS, "aliases")
_PRESERVE_WORDS = ("preserve_thinking", "honoured by the model", "not honoured by the model")
_QUANT = re.compile(
    r"-(?:gguf|mlx|awq|gptq|fp8|fp16|bf16|nvfp4|mxfp4|int[48]|w4a16|w8a8|[2-8]bit"
    r"|i?q[1-8](?:_[a-z0-9]+)*)$"
)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What is known about one model; None where it is not known."""

    name: str
    window: int | None = None
    max_window: int | None = None
    price: Price | None = None
    images: bool | None = None
    preserve_thinking: bool | None = None
    source: str = CATALOGUE
    aliases: tuple[str, ...] = ()
    user_keys: frozenset[str] = frozenset()

    def source_of(self, *keys: str) -> str:
        """Where a fact came from: the user's config file if it set any of `keys`."""
        return self.source if self.user_keys & set(keys) else CATALOGUE


def normalise(model: str) -> str:
    """The loose spelling of a model name, so one entry covers every server's name for it.

    Lower-cased; everything up to the last `/` dropped (`Qwen/`, `qwen/`, `unsloth/`, a local
    path served by vLLM); an LM Studio `@variant` and a `.gguf` ending dropped; Ollama's
    `name:tag` read as `name-tag`; then trailing quantisation or format suffixes stripped (-fp8,
    -awq, -gptq, -int4, -gguf, -mlx, -4bit, -q4_k_m, ...), since they change neither window,
    images nor preserve support. `-instruct`, dates and OpenRouter's `:free` / `:thinking` are kept:
    those name different models or prices.
    """
    name = model.strip().lower().rsplit("/", 1)[-1].split("@", 1)[0].removesuffix(".gguf")
    name = name.replace(":", "-")
    while (stripped := _QUANT.sub("", name)) != name:
        name = stripped
    return name


class Catalogue:
    """Model facts by canonical name, found also by alias or by normalised name."""

    def __init__(self, models: Mapping[str, ModelFacts]) -> None:
        self.models = dict(models)
        self._aliases = {alias: f.name for f in self.models.values() for alias in f.aliases}
        self._loose: dict[str, str] = {}
        for facts in self.models.values():
            for spelling in (facts.name, *facts.aliases):
                self._loose.setdefault(normalise(spelling), facts.name)

    def facts(self, model: str) -> ModelFacts | None:
        """The entry for `model`: its exact name, then an alias, then a normalised match."""
        if model in self.models:
            return self.models[model]
        name = self._aliases.get(model) or self._loose.get(normalise(model))
        return self.models[name] if name else None

    def price(self, model: str) -> Price | None:
        facts = self.facts(model)
        return facts.price if facts else None


def load_catalogue(
    user_tables: Mapping[str, Mapping[str, Any]] | None = None, source: str = "user config"
) -> Catalogue:
    """The packaged catalogue with the user's `[models."NAME"]` tables merged over it.

    A table for a canonical name changes that entry (its aliases are added to the packaged ones).
    A table for an alias or a loose spelling of a known model starts a new entry from that
    model's facts, so `[models."qwen/qwen3.6-max-preview"]` can price OpenRouter separately.
    A table for an unknown name adds a model. A table with any of input, output or cached_input
    replaces the whole price.
    """
    tables: dict[str, dict[str, Any]] = {}
    for name, table in parse_toml(packaged_text("models.toml"), PACKAGED).items():
        _check(table, f'{PACKAGED}: ["{name}"]')
        tables[name] = dict(table)
    base = Catalogue({n: _facts(n, t) for n, t in tables.items()})
    touched: dict[str, set[str]] = {}
    for name, table in (user_tables or {}).items():
        _check(table, f'{source}: [models."{name}"]')
        if name not in tables:
            known = base.facts(name)
            tables[name] = {}
            if known is not None:
                parent = tables[known.name]
                parent["aliases"] = [a for a in parent.get("aliases", []) if a != name]
                tables[name] = {k: v for k, v in parent.items() if k != "aliases"}
        aliases = [*tables[name].get("aliases", []), *table.get("aliases", [])]
        if set(table) & set(_PRICES):  # a price is replaced whole, never half-inherited
            tables[name] = {k: v for k, v in tables[name].items() if k not in _PRICES}
        tables[name] = {**tables[name], **table, "aliases": list(dict.fromkeys(aliases))}
        touched.setdefault(name, set()).update(table)
    models = {
        n: _facts(n, t, source if n in touched else CATALOGUE, frozenset(touched.get(n, ())))
        for n, t in tables.items()
    }
    _check_aliases(models)
    return Catalogue(models)


def _check(table: Any, where: str) -> None:
    """Each key known and of the right type; errors name the table and the key."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table of model facts")
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"{where} has unknown key {key!r}; known keys: {', '.join(KEYS)}")
        if key in _INTS and (type(value) is not int or value < 1000):
            raise ConfigError(f"{where} {key} must be a whole number of tokens, at least 1000")
        if key in _PRICES and (
            type(value) not in (int, float) or not math.isfinite(value) or value < 0
        ):
            raise ConfigError(f"{where} {key} must be USD per million tokens, 0 or more")
        if key in _BOOLS and type(value) is not bool:
            raise ConfigError(f"{where} {key} must be true or false")
        if key == "aliases" and not (
            isinstance(value, list) and all(isinstance(a, str) and a for a in value)
        ):
            raise ConfigError(f"{where} aliases must be a list of model names")


def _facts(
    name: str,
    table: Mapping[str, Any],
    source: str = CATALOGUE,
    user_keys: frozenset[str] = frozenset(),
) -> ModelFacts:
    """One entry from its (checked) table; the price needs both input and output."""
    where = f'{source}: [models."{name}"]' if user_keys else f'{PACKAGED}: ["{name}"]'
    window, max_window = table.get("window"), table.get("max_window")
    if window is not None and max_window is not None and max_window < window:
        raise ConfigError(f"{where} max_window {max_window} is below window {window}")
    priced = [key for key in ("input", "output") if key in table]
    if len(priced) == 1 or ("cached_input" in table and not priced):
        raise ConfigError(f"{where} needs both input and output to price the model")
    price = Price(table["input"], table["output"], table.get("cached_input")) if priced else None
    return ModelFacts(
        name, window, max_window, price, table.get("images"), table.get("preserve_thinking"),
        source, tuple(table.get("aliases", ())), user_keys,
    )  # fmt: skip


def _check_aliases(models: Mapping[str, ModelFacts]) -> None:
    """An alias names one model only, or lookups would depend on table order."""
    owner: dict[str, str] = {}
    for facts in models.values():
        for alias in facts.aliases:
            other = alias if alias in models and alias != facts.name else owner.get(alias)
            if other is not None and other != facts.name:
                raise ConfigError(f"model alias {alias!r} of {facts.name!r} also names {other!r}")
            owner[alias] = facts.name


def effective_window(
    facts: ModelFacts | None,
    server_window: int | None,
    configured_window: int | None,
    profile_window: int,
) -> tuple[int, str]:
    """The window to compact against, and its source: the user's `context_window` (they know
    their server) > what the server reports > the catalogue > the profile's default."""
    if configured_window:
        return configured_window, "context_window setting"
    if server_window:
        return server_window, "server"
    if facts is not None and facts.window:
        return facts.window, facts.source_of("window")
    return profile_window, "profile default"


def describe(
    facts: ModelFacts | None,
    model: str,
    server_window: int | None,
    configured_window: int | None,
    profile_window: int,
) -> list[str]:
    """The `qac doctor` lines for a model: its entry, window, price and the source of each."""
    if facts is None:
        lines = [f"model {model}: not in the catalogue"]
    else:
        entry = "" if facts.name == model else f" (as {facts.name})"
        lines = [f"model {model}: in the catalogue{entry}"]
    tokens, source = effective_window(facts, server_window, configured_window, profile_window)
    lines.append(f"window {tokens:,} tokens ({source})")
    if configured_window and server_window and configured_window > server_window:
        lines.append(
            f"context_window {configured_window:,} is above the {server_window:,} tokens the "
            "server reports: longer prompts will be refused"
        )
    if facts is not None and facts.max_window and tokens < facts.max_window:
        lines.append(f"up to {facts.max_window:,} tokens when the server enables YaRN rope scaling")
    if facts is None or facts.price is None:
        lines.append(NO_PRICE_NOTICE.format(model=model))
    else:
        price = facts.price
        cached = "" if price.cached_input is None else f", cached ${_usd(price.cached_input)}"
        lines.append(
            f"price ${_usd(price.input)} / ${_usd(price.output)} per M{cached} "
            f"({facts.source_of(*_PRICES)})"
        )
    for key, yes, no in (("images", "accepted", "not accepted"), _PRESERVE_WORDS):
        value = getattr(facts, key, None)
        if facts is not None and value is not None:
            lines.append(f"{key} {yes if value else no} ({facts.source_of(key)})")
    return lines


def _usd(amount: float) -> str:
    """At least cents, and up to four decimals for the cheap models ($0.1875)."""
    whole, _, cents = f"{amount:.4f}".rstrip("0").partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"
