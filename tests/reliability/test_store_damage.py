"""A damaged store file fails every command that reads it with one line and exit 2, never a
traceback: overwritten with garbage, truncated, or with its pages overwritten after the header
(which opens, then fails on the first read)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message, SessionInfo
from tests.conftest import run_process, server_args

PAGE = 4096
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "overwritten with garbage": lambda data: b"garbage! " * (len(data) // 9),
    "truncated": lambda data: data[: len(data) // 2],
    "pages overwritten": lambda data: data[:PAGE] + b"\xa5" * (len(data) - PAGE),
}


def damaged_store(home: Path, workdir: Path, damage: Callable[[bytes], bytes]) -> None:
    """A store with sessions big enough to span many pages, then damaged on disk."""
    path = home / "sessions.db"
    store = SessionStore(path)
    try:
        for number in range(3):
            info = SessionInfo(
                id=f"s-{number}",
                repository="r",
                workdir=str(workdir),
                provider="vllm",
                model="m",
                system_prompt="system " * 500,
                context="context " * 500,
            )
            store.create(info)
            for turn in range(30):
                store.append_message(info.id, Message(role="user", content=f"turn {turn} " * 100))
    finally:
        store.close()
    path.write_bytes(damage(path.read_bytes()))


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_one_line_and_exit_2_for_every_reader(
    damage: str, clean_environ: Path, repo: Path, model_server: ScriptedServer
):
    damaged_store(clean_environ, repo, DAMAGE[damage])
    commands = [
        ("sessions", "list"),
        ("sessions", "show", "s-1"),
        ("sessions", "export", "s-1"),
        ("run", "x", "--continue", *server_args(model_server), "-C", str(repo)),
    ]
    for command in commands:
        out = run_process(*command)
        assert out.code == 2, (command, out.stderr)
        assert out.stderr.startswith("qac: "), (command, out.stderr)
        assert out.stderr.count("\n") == 1, (command, out.stderr)
        assert "session store" in out.stderr, (command, out.stderr)
        assert out.stdout == "", (command, out.stdout)
    assert model_server.requests == []
