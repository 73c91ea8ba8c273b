"""`qac config` and `qac trust`: the user's settings, and trust in a project's own config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from qwen_agent_cli.cli.app import (
    app,
    config_app,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    DirOpt,
)
from qwen_agent_cli.config import PROJECT_CONFIG, settings_as_toml_dict
from qwen_agent_cli.errors import ConfigError

STARTER_CONFIG = """\
# qac configuration. Keys are the same as the command-line options (with _ for -).
# Layers, later wins: packaged defaults < this user file < .qac/config.toml < QAC_* env < flags.

# provider = "dashscope"        # dashscope, dashscope-cn, openrouter, vllm, sglang, llamacpp,
#                               # ollama, lmstudio, openai; Anthropic Messages format:
#                               # dashscope-anthropic, dashscope-anthropic-cn, anthropic
# model = "qwen3.6-max-preview"
# base_url = "http://localhost:8000/v1"
# thinking = true
# preserve_thinking = true
# max_turns = 50
# max_cost = 2.0                # USD per run
# test_cmd = "pytest -q"
# max_tokens = 32768            # tokens one response may use (0: send no limit)
# thinking_budget = 16384       # Anthropic format: budget_tokens, below max_tokens
# context_window = 262144       # your server's window, if it differs from the catalogue
# stream_idle_timeout = 90      # seconds of silence from the model before a retry

# [sandbox]
# mode = "workspace-write"      # read-only, workspace-write, off
# network = false
# tmp_size_mb = 1024            # MiB each private /tmp, /var/tmp, /dev/shm may hold
# env = []                      # extra variables passed into the sandbox
# secret_env = []               # variables never passed, whatever their name

# [approval]
# mode = "ask"                  # ask, auto-edit, auto
# allow = ["pytest*", "ruff *"]
# deny = ["git push*", "sudo *"]

# [providers.my-server]         # your own profile, same keys as the packaged ones
# base_url = "http://gpu-box:8000/v1"
# key_env = ""
# model = "Qwen/Qwen3.6-27B"
# thinking_switch = "chat_template_kwargs"
# preserve_switch = "chat_template_kwargs"
# reasoning_fields = ["reasoning", "reasoning_content"]

# [providers.my-gateway]        # an Anthropic-format server (/v1/messages under base_url)
# format = "anthropic"
# base_url = "http://gateway:4000"
# key_env = "GATEWAY_KEY"
# model = "qwen3.6-plus"
# cache_control = true          # mark the stable prefix for servers that cache on request

# [models."qwen3.6-plus"]       # a model's facts over configs/models.toml
# window = 1000000
# input = 0.50                  # USD per million tokens
# output = 3.00
"""


TABLES = ("sandbox", "approval", "tools")
"""The starter file's tables; `[sandbox] mode` is `sandbox`, `[sandbox] network` is
`sandbox_network`, `[approval] mode` is `approval`; `[tools]` keys keep their names."""


def toml_lines(values: dict[str, object]) -> list[str]:
    """The settings in the starter file's layout: plain keys first, then `[sandbox]`,
    `[approval]` and `[tools]`; an unset key is a comment, so the output loads back."""
    tables: dict[str, list[tuple[str, object]]] = {name: [] for name in TABLES}
    top: list[tuple[str, object]] = []
    for key, value in values.items():
        table = _table_of(key)
        if table is None:
            top.append((key, value))
            continue
        name = "mode" if key == table else key.removeprefix("sandbox_")
        tables[table].append((name, value))
    lines = [_line(key, value) for key, value in top]
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *(_line(key, value) for key, value in entries)]
    return lines


def _table_of(key: str) -> str | None:
    if key == "sandbox" or key.startswith("sandbox_"):
        return "sandbox"
    if key in ("approval", "allow", "deny"):
        return "approval"
    if key.startswith("web_fetch"):
        return "tools"
    return None


def _line(key: str, value: object) -> str:
    return f"# {key} is unset" if value is None else f"{key} = {json.dumps(value)}"


@config_app.command("show")
def config_show(directory: DirOpt = None) -> None:
    """The effective settings after every layer, as TOML laid out like the starter file."""
    from qwen_agent_cli.assemble import workdir_of

    settings = settings_for(workdir_of(directory))
    for line in toml_lines(settings_as_toml_dict(settings)):
        show(line)
    profile = settings.profile
    show(
        f"\n# provider {profile.name} ({profile.format} format): {profile.base_url}, "
        f"model {profile.model}, key from {profile.key_env or '(none needed)'}"
    )


@config_app.command("path")
def config_path(directory: DirOpt = None) -> None:
    """Where the user and project config files are (and whether they exist)."""
    from qwen_agent_cli.assemble import user_config_file, workdir_of

    user = user_config_file(os.environ)
    project = workdir_of(directory) / PROJECT_CONFIG
    for label, path in (("user", user), ("project", project)):
        show(f"{label}: {path}{'' if path.is_file() else ' (not present)'}")


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
    show(f"wrote {path}")


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
            show(f"{record.path}  {record.digest[:19]}{state}")
        return
    project = workdir_of(directory)
    if revoke:
        found = store.revoke(project)
        show(f"{'revoked trust in' if found else 'was not trusted:'} {project}")
        return
    keys = settings_for(project, warn=False).untrusted_keys
    record = store.trust(project)
    config = project / PROJECT_CONFIG
    if not config.is_file():
        show(f"trusted {project} (it has no {PROJECT_CONFIG} yet; one added later needs trust)")
        return
    applied = f"; now applied: {', '.join(keys)}" if keys else ""
    show(f"trusted {project} ({PROJECT_CONFIG} {record.digest[:19]}…){applied}")
    show("a change to the file needs `qac trust` again")
