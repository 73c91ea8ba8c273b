"""What the session-page tests share: a session made through the real CLI against the scripted
model, with thinking, an edit, a multi-line shell call, an image, and hostile strings in every
field a model, a tool or a repository can fill."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import Outcome, server_args
from tests.test_images import png

HOSTILE = (
    '<script>window.pwned=1</script></details>"><img src=x onerror="window.pwned=2">'
    "\x1b[31mRED\x1b[0m\x1b]0;owned-title\x07\x1b]8;;http://evil.example/\x07link\x1b]8;;\x07"
)
"""Markup that would run or break the page's structure, plus terminal colour, title and link
sequences: none of it may become anything but text."""
SHOWN = '<script>window.pwned=1</script></details>"><img src=x onerror="window.pwned=2">REDlink'
"""HOSTILE as a reader sees it: the markup as text, the terminal sequences gone."""
MODEL = "qwen3.6-flash"
"""Priced in the catalogue and takes images, so the page shows a real cost and an image."""
MARKUP = '<script>window.pwned=3</script></details><img src=x onerror="window.pwned=4">'
COMMAND = f"printf 'first\\n'\necho 'second {MARKUP}'"
"""Two lines, so the page must show a newline, not `\\n`; its output holds markup too."""


def make_session(
    qac: Callable[..., Outcome], server: ScriptedServer, repo: Path, tmp_path: Path
) -> dict[str, Any]:
    """Three model turns: think and edit; think, run a two-line command and read a file with a
    hostile name; think and answer. Returns the run's JSON result."""
    picture = tmp_path / "screen.png"
    picture.write_bytes(png(width=3, height=2, seed=9))
    server.script(
        turn(
            thinking="average floors the result " + HOSTILE + "\nuse true division",
            text="Editing " + HOSTILE,
            tool_call=(
                "edit_file",
                {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
            ),
        ),
        turn(
            thinking="Run a command " + HOSTILE,
            tool_calls=[("shell", {"command": COMMAND}), ("read_file", {"path": HOSTILE})],
        ),
        turn(thinking="All done " + HOSTILE, text="Fixed average. " + HOSTILE),
    )
    out = qac(
        "run",
        "fix the average " + HOSTILE,
        *server_args(server),
        "--model",
        MODEL,
        "--image",
        str(picture),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    result: dict[str, Any] = out.json()
    assert result["status"] == "done"
    return result
