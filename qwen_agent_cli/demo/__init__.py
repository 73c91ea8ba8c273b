"""`qac demo`: the real loop, offline, on a bundled repository with a failing test and a
scripted model on loopback. Shows a newcomer what the tool does in a few seconds."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from qwen_agent_cli.assemble import assemble, build_executor
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import SandboxUnavailableError
from qwen_agent_cli.events import Event, Result
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer, load_script
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Status

DEMO_PROMPT = "The test suite fails. Find the bug, fix it, and make sure all tests pass."
DEMO_TEST_CMD = "python3 -m unittest -v"


def copy_sample_repo(target: Path) -> Path:
    """The bundled sample repository, committed in a fresh git repo under target."""
    source = resources.files("qwen_agent_cli.demo").joinpath("repo")
    repo = target / "calc"
    repo.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_file():
            (repo / entry.name).write_bytes(entry.read_bytes())
    init_repository(repo, "calc: initial version")
    return repo


def run_demo(
    settings: Settings,
    *,
    env: Mapping[str, str],
    show: Callable[[Event], None],
    say: Callable[[str], None],
    store: Path | None = None,
) -> int:
    """Play the demo, showing its events and notes; returns 0 when the tests end green. The
    session goes to `store` when the user named one; otherwise the demo writes nothing of the
    user's: its store and caches live in a data directory of its own, removed at the end."""
    script = json.loads(resources.files("qwen_agent_cli.demo").joinpath("script.json").read_text())
    turns, options = load_script(script)
    workroot = Path(tempfile.mkdtemp(prefix="qac-demo-"))
    try:
        repo = copy_sample_repo(workroot)
        data = workroot / "data"  # beside the repository: the store's folder is hidden from it
        own_env = {**env, "QAC_HOME": str(data)}
        store_file = store or data / "sessions.db"
        settings = dataclasses.replace(settings, store=str(store_file))
        anthropic = settings.profile.format == "anthropic"
        with ScriptedServer(turns, **options) as server:
            demo_settings = dataclasses.replace(
                settings,
                provider="anthropic" if anthropic else "vllm",
                base_url=server.anthropic_url if anthropic else server.url,
                model="qwen3.6-demo",
                api_key_env="",
                test_cmd=DEMO_TEST_CMD,
                approval="auto",
                max_turns=10,
                retries=0,
                timeout=120.0,
                max_cost=None,
            )
            say(f"qac demo: a sample repo with a failing test at {repo}")
            wire = "Anthropic Messages" if anthropic else "OpenAI chat completions"
            say(f"scripted model ({wire}) at {server.url}; no network, no key\n")
            say(f"> {DEMO_PROMPT}\n")
            sessions = SessionStore(store_file)
            try:
                try:
                    # The sandbox from the real environment: it hides the user's own qac data.
                    executor = build_executor(demo_settings, env, repo)
                except SandboxUnavailableError as exc:
                    say(f"{exc}\nthe demo continues without the sandbox\n")
                    demo_settings = dataclasses.replace(demo_settings, sandbox="off")
                    executor = build_executor(demo_settings, env, repo)
                built = assemble(
                    demo_settings, env=own_env, workdir=repo, store=sessions, executor=executor
                )
                say(f"commands run in: {built.executor.description}")
                result: Result | None = None
                for event in built.agent.run(DEMO_PROMPT):
                    show(event)
                    if isinstance(event, Result):
                        result = event
                verify = built.executor.run(DEMO_TEST_CMD, cwd=repo, timeout=60)
            finally:
                sessions.close()
            replayed = sum(map(_reasoning_blocks, server.requests[-1]["messages"]))
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    assert result is not None
    say(
        f"\npreserved thinking: the last request carried {replayed} earlier reasoning "
        f"blocks, byte for byte, across {len(server.requests)} requests."
    )
    green = verify.exit_code == 0
    if store is None:
        kept = "the session was in a temporary store, now removed (`--store FILE` keeps it)"
    else:
        kept = f"see it with `qac sessions show {result.session_id} --thinking --store {store}`"
    say(f"tests after the run: {'pass' if green else 'FAIL'}; {kept}.")
    return 0 if green and result.status == Status.DONE else 1


def _reasoning_blocks(message: dict[str, object]) -> int:
    """Earlier reasoning one request message carries: its reasoning field (chat completions)
    or its thinking blocks (Anthropic Messages)."""
    if message.get("role") != "assistant":
        return 0
    if message.get("reasoning") or message.get("reasoning_content"):
        return 1
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return sum(1 for b in blocks if isinstance(b, dict) and b.get("type") == "thinking")
