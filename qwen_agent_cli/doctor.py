"""`qac doctor`: each thing a run depends on, checked, with the fix when it is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from qwen_agent_cli.assemble import api_key, store_path
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.provider import Provider
from qwen_agent_cli.sandbox import find_bwrap, preflight
from qwen_agent_cli.store import SessionStore


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings, *, env: Mapping[str, str], workdir: Path) -> Iterator[Check]:
    profile = settings.profile
    key = ""
    try:
        key = api_key(settings, env)
        detail = f"{profile.key_env} is set" if profile.key_env else "no key needed"
        yield Check("key", True, detail)
    except QacError as exc:
        yield Check("key", False, str(exc))
    provider = Provider(profile, key, retry=None, request_timeout=15.0)
    try:
        models = provider.list_models()
        yield Check("endpoint", True, f"{profile.base_url} answers ({len(models)} models)")
        listed = profile.model in models
        yield Check(
            "model",
            listed or not models,
            f"{profile.model} is served"
            if listed
            else f"{profile.model} is not in the endpoint's model list; choose one of: "
            f"{', '.join(models[:8])}",
        )
    except QacError as exc:
        yield Check("endpoint", False, f"{exc}; check --base-url and that the server is running")
    if settings.preserve_thinking and profile.preserve_switch == "none":
        yield Check(
            "preserve",
            False,
            f"provider {profile.name} has no preserve_thinking switch; earlier reasoning may be "
            "dropped by its template (use vllm, sglang, llamacpp or dashscope for preservation)",
        )
    else:
        yield Check("preserve", True, f"switch: {profile.preserve_switch}")
    if settings.sandbox == "off":
        yield Check("sandbox", True, "off (--sandbox off): commands run without isolation")
    else:
        bwrap = find_bwrap(settings.sandbox_bwrap)
        problem = preflight(bwrap)
        yield Check("sandbox", problem is None, problem or f"bubblewrap works ({bwrap})")
    git = shutil.which("git")
    yield Check("git", git is not None, git or "git is not installed: apt-get install git")
    path = store_path(settings, env)
    try:
        store = SessionStore(path)
        try:
            store.check_writable()
            ok = store.integrity_ok()
        finally:
            store.close()
        yield Check("store", ok, f"{path} is writable" if ok else f"{path} failed integrity_check")
    except QacError as exc:
        yield Check("store", False, str(exc))
