"""`qac doctor`: each thing a run depends on, checked, with the fix when it is wrong."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from qwen_agent_cli.assemble import api_key, build_executor, store_path
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.modelinfo import doctor_lines, model_info
from qwen_agent_cli.provider import ChatProvider, RetryPolicy, make_provider
from qwen_agent_cli.sandbox import find_bwrap, preflight
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


PROBE_SYSTEM = "You are a careful assistant taking part in a memory test."
PROBE_FIRST = (
    "Think of one uncommon English noun and keep it secret: name it only in your reasoning, "
    "never in your reply. Reply with exactly: READY"
)
PROBE_SECOND = "What was the secret noun you thought of? Reply with that one word only."


def thinking_probe(provider: ChatProvider) -> Check:
    """Two turns: the model thinks of a secret it does not say, then is asked for it. Only a
    server that sends earlier reasoning back to the model lets it answer."""
    first = Message(role="user", content=PROBE_FIRST)
    reply = _complete(provider, [first])
    reasoning = (reply.reasoning or "").lower()
    if not reasoning.strip():
        return Check(
            "thinking",
            False,
            "the server returned no reasoning: turn thinking on (vLLM/SGLang: "
            "--reasoning-parser qwen3; llama.cpp: --reasoning-format deepseek)",
        )
    second = _complete(provider, [first, reply, Message(role="user", content=PROBE_SECOND)])
    answer = (second.content or "").strip().strip(".!\"'`*").lower()
    said_before = answer and answer in (reply.content or "").lower()
    if answer and answer in reasoning and not said_before:
        return Check(
            "thinking", True, f"preserved: the model recalled {answer!r} from its earlier reasoning"
        )
    fix = (
        "this server's Anthropic endpoint drops the thinking blocks qac sends back: use its "
        "OpenAI-format profile with a preserve switch instead"
        if provider.profile.format == "anthropic"
        else "use a profile with a preserve switch (vllm, sglang, llamacpp: "
        "chat_template_kwargs.preserve_thinking; dashscope: preserve_thinking on "
        "qwen3.6-plus / qwen3.6-max-preview) and a chat template that honours it"
    )
    return Check(
        "thinking",
        False,
        f"not preserved: the model could not recall the word from its earlier reasoning "
        f"(it answered {answer[:40]!r}). The server drops earlier thinking: {fix}",
    )


def _complete(provider: ChatProvider, messages: list[Message]) -> Message:
    stream = provider.stream(PROBE_SYSTEM, messages, [])
    while True:
        try:
            next(stream)
        except StopIteration as done:
            message: Message = done.value
            return message


def run_checks(
    settings: Settings, *, env: Mapping[str, str], workdir: Path, probe: bool = False
) -> Iterator[Check]:
    profile = settings.profile
    key = ""
    try:
        key = api_key(settings, env)
        detail = f"{profile.key_env} is set" if profile.key_env else "no key needed"
        yield Check("key", True, detail)
    except QacError as exc:
        yield Check("key", False, str(exc))
    provider = make_provider(
        profile,
        key,
        thinking=settings.thinking,
        retry=RetryPolicy(retries=1, base_delay=0.5),
        request_timeout=120.0,
    )
    reachable = False
    try:
        models = provider.list_models()
        reachable = True
        yield Check("endpoint", True, f"{profile.base_url} answers ({len(models)} models)")
        listed = profile.model in models
        if not models:
            detail = (
                f"the endpoint lists no models; {profile.model} is checked by the first request"
            )
        elif listed:
            detail = f"{profile.model} is served"
        else:
            detail = (
                f"{profile.model} is not in the endpoint's model list; choose one of: "
                f"{', '.join(models[:8])}"
            )
        yield Check("model", listed or not models, detail)
    except QacError as exc:
        yield Check("endpoint", False, f"{exc}; check --base-url and that the server is running")
    info = model_info(settings, key, ask_server=reachable)
    for line in doctor_lines(settings, info):
        first = line.split(maxsplit=1)[0]
        name = {"window": "window", "context_window": "window", "up": "window"}.get(first)
        name = name or ("price" if first in ("price", "no") else "catalogue")
        # A hosted model without a price fails: its cost would read $0 and --max-cost do nothing;
        # a window set above what the server reports fails on long prompts.
        bad = (first == "no" and info.hosted) or first == "context_window"
        yield Check(name, not bad, line)
    if profile.format == "anthropic":
        yield Check(
            "preserve",
            True,
            "Anthropic format: every thinking block goes back unchanged, signature included; "
            "no preserve switch is documented for it, so run `qac doctor --thinking` to see "
            "whether this server's template uses them",
        )
    elif settings.preserve_thinking and profile.preserve_switch == "none":
        yield Check(
            "preserve",
            False,
            f"provider {profile.name} has no preserve_thinking switch; earlier reasoning may be "
            "dropped by its template (use vllm, sglang, llamacpp or dashscope for preservation)",
        )
    else:
        yield Check("preserve", True, f"switch: {profile.preserve_switch}")
    if probe:
        try:
            yield (
                thinking_probe(provider)
                if reachable
                else Check("thinking", False, "not probed: the endpoint is not reachable")
            )
        except QacError as exc:
            yield Check("thinking", False, f"the probe failed: {exc}")
    problem: str | None = None
    if settings.sandbox == "off":
        yield Check("sandbox", True, "off (--sandbox off): commands run without isolation")
    else:
        bwrap = find_bwrap(settings.sandbox_bwrap)
        problem = preflight(bwrap)
        yield Check("sandbox", problem is None, problem or f"bubblewrap works ({bwrap})")
    if settings.test_cmd and (settings.sandbox == "off" or problem is None):
        yield test_command_check(settings, env, workdir)
    yield from mcp_checks(settings, env, workdir)
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


def test_command_check(settings: Settings, env: Mapping[str, str], workdir: Path) -> Check:
    """Start the test command's program where the agent will run it: a toolchain that works in
    the user's shell but not in the sandbox (a version manager it cannot see) would otherwise
    turn a passing suite into a run the model is called for in vain."""
    try:
        words = shlex.split(settings.test_cmd or "")
    except ValueError as exc:
        return Check("tests", False, f"cannot split {settings.test_cmd!r}: {exc}")
    program = next((w for w in words if "=" not in w.split("/")[0]), "")
    if not program:
        return Check("tests", False, f"no program in {settings.test_cmd!r}")
    executor = build_executor(settings, env, workdir)
    quoted = shlex.quote(program)
    if "/" in program and not Path(program).is_absolute():
        # The project's own script: run with --version it might run the whole suite.
        probe = f"test -x {quoted} || exit 127"
    else:
        probe = (
            f"command -v {quoted} >/dev/null || exit 127; {quoted} --version || {quoted} version"
        )
    result = executor.run(probe, cwd=workdir, timeout=60)
    where = "the sandbox" if settings.sandbox != "off" else "a clean environment"
    if result.exit_code == 0:
        return Check("tests", True, f"{program} starts in {where}")
    first = next((ln for ln in result.output.splitlines() if ln.strip()), "no output")
    why = "is not found" if result.exit_code == 127 else f"does not start ({first.strip()[:160]})"
    return Check(
        "tests",
        False,
        f"{program} {why} in {where}; toolchains under your home are bound back by their "
        "variables (RUSTUP_HOME, CARGO_HOME, NVM_DIR, PYENV_ROOT, GOPATH, ...): put the "
        "program's folder on PATH, or pass the variable it needs with [sandbox] env",
    )


def mcp_checks(settings: Settings, env: Mapping[str, str], workdir: Path) -> Iterator[Check]:
    """Each configured MCP server started, asked for its tools, and stopped."""
    from qwen_agent_cli.mcp_client import McpHub
    from qwen_agent_cli.mcp_config import servers_from

    servers, notices = servers_from(
        settings.mcp_servers, workdir, settings.project_trusted, env=env
    )
    for notice in notices:
        yield Check("mcp", False, notice)
    if not any(server.enabled for server in servers):
        return
    with McpHub(servers, env) as hub:
        hub.wait_ready()
        for status in hub.status():
            if status.state == "disabled":
                continue
            ok = status.state == "ready"
            detail = (
                f"{status.name}: {len(status.tools)} tools ({status.source})"
                if ok
                else f"{status.name}: {status.error or status.state}; fix its entry, or "
                "`qac mcp remove " + status.name + "`"
            )
            yield Check("mcp", ok, detail)
