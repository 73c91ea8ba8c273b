"""The session picker (`qac -r`, `qac resume`): this directory's sessions, newest first, chosen
with the arrow keys. Titles are the user's first prompts, so they are shown sanitised."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qwen_agent_cli.errors import ConfigError, StoreError
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import SessionInfo
from qwen_agent_cli.visible import visible
from qwen_agent_cli.words import plural


def row_label(info: SessionInfo, turns: int, now: float) -> str:
    """One picker row: when, status, turns, and the first prompt on one line."""
    when = time.strftime(
        "%H:%M" if now - info.updated_at < 86400 else "%Y-%m-%d %H:%M",
        time.localtime(info.updated_at),
    )
    title = " ".join(visible(info.title).split())
    title = title if len(title) <= 60 else title[:59] + "…"
    return f"{when:>16}  {info.status:<11} {plural(turns, 'turn'):>9}  {title or '(no prompt)'}"


def pick_session(store: SessionStore, workdir: Path) -> SessionInfo:
    """Ask which of this directory's sessions to continue; Esc or Ctrl-C chooses none."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError(
            "--resume with no id picks a session in a terminal; give the id here "
            "(see `qac sessions list`)"
        )
    rows = store.in_workdir(str(workdir))
    if not rows:
        raise StoreError(f"no earlier session for {workdir} to resume; start one with `qac`")
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.shortcuts import choice

    bindings = KeyBindings()

    @bindings.add("escape", eager=True)
    def _cancel(event: object) -> None:
        event.app.exit(exception=KeyboardInterrupt())  # type: ignore[attr-defined]

    now = time.time()
    options = [(info.id, row_label(info, turns, now)) for info, turns in rows]
    chosen = choice(
        f"Resume which session of {visible(str(workdir))}? (↑/↓, Enter; Esc cancels)",
        options=options,
        key_bindings=bindings,
    )
    return store.get(chosen)
