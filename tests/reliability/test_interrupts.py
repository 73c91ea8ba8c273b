"""Ctrl-C wherever it lands: while qac writes an event rather than while the agent runs, and
inside code Python runs from a string (a dataclass built during a lazy import), which CPython
would otherwise turn into a death by SIGINT after qac chose exit 130."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import server_args


class CtrlCOnWrite(io.StringIO):
    """Standard output where Ctrl-C arrives while the first line holding `marker` is written."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.fired = False

    def write(self, text: str) -> int:
        if not self.fired and self.marker in text:
            self.fired = True
            raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_while_an_event_is_written_still_ends_the_run_interrupted(
    model_server: ScriptedServer,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environ: Path,
):
    from qwen_agent_cli.cli import invoke

    model_server.script(turn(thinking="first. second. third.", pieces=3, text="never shown"))
    out = CtrlCOnWrite('"type": "thinking"')
    monkeypatch.setattr(sys, "stdout", out)
    code = invoke(
        ["run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"]
    )
    assert out.fired
    assert code == 130
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1]["type"] == "result"
    assert lines[-1]["status"] == "interrupted"
    store = SessionStore(clean_environ / "sessions.db")
    try:
        info = store.get(lines[-1]["session_id"])
        assert info is not None
        assert info.status == "interrupted"
    finally:
        store.close()


PROBE = """
    import os, signal, sys
    from qwen_agent_cli import signals

    signals.install()
    try:
        # What a dataclass does while a module is imported: run code built as a string.
        exec("import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nwhile True: pass")
    except KeyboardInterrupt:
        sys.exit(130)
"""


def test_ctrl_c_inside_string_code_exits_130_not_by_signal(tmp_path: Path):
    (tmp_path / "interrupt_probe.py").write_text(textwrap.dedent(PROBE))
    proc = subprocess.run(
        [sys.executable, "-m", "interrupt_probe"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 130, proc.stderr
