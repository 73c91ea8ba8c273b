"""Nothing from the model, a tool, a file or a server can drive the terminal: every output path
that can reach one shows control sequences instead of sending them, and never reads model text
as Rich markup. JSON and stream-json stay byte-exact."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from qwen_agent_cli.events import (
    ErrorEvent,
    Event,
    Result,
    Session,
    Text,
    Thinking,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.ui.render import Renderer
from qwen_agent_cli.visible import visible
from tests.conftest import server_args

HOSTILE = (
    "title\x1b]0;pwned\x07 clipboard\x1b]52;c;ZXZpbA==\x07 "
    "link\x1b]8;;http://evil.example\x1b\\here\x1b]8;;\x1b\\ "
    "clear\x1b[2J\x1b[H c1\x9b31m bell\x07 bidi\u202eabc "
    "[/bold] [link=http://evil.example]x[/link] [red]markup[/red] [click](http://evil.example)"
)
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def assert_inert(text: str) -> None:
    for sequence in RAW:
        assert sequence not in text, repr(text)
    assert "^[]52;c;ZXZpbA==^G" in text, repr(text)


def test_visible_shows_every_control_character():
    assert visible("a\x1b[2Jb\x07c\td\ne\x7f\x9b\u202e") == "a^[[2Jb^Gc\td\ne^?\\x9b<U+202E>"


def test_the_renderer_shows_hostile_text_from_every_event(golden):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=100)
    renderer = Renderer(console, live=False)
    events: list[Event] = [
        Session(session_id="s1", model=HOSTILE, provider="p", resumed=False),
        Thinking(text=HOSTILE),
        Text(text=HOSTILE),
        ToolCallEvent(
            id="c1", name="shell", arguments='{"command": "' + "\\u001b]0;x\\u0007" + '"}'
        ),
        ToolResultEvent(
            id="c1",
            name="shell",
            output=HOSTILE,
            is_error=True,
            diff=f"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+{HOSTILE}\n",
        ),
        ErrorEvent(message=HOSTILE),
        Result(
            session_id="s1",
            status="done",
            result=HOSTILE,
            turns=1,
            usage={},
            cost_usd=0.0,
            duration_s=0.1,
            files_changed=[],
        ),
    ]
    for event in events:
        renderer.write(event)
    renderer.say(HOSTILE)
    text = out.getvalue()
    assert_inert(text)
    assert "[/bold]" in text
    assert "[link=http://evil.example]x[/link]" in text
    golden("render_hostile.txt", text)


def test_run_text_mode_and_errors_show_sequences(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking=HOSTILE, text=HOSTILE))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    assert_inert(out.stdout)

    model_server.script(turn(fault={"status": 400, "message": HOSTILE}, reset_prefix=True))
    failed = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert failed.code == 3
    assert_inert(failed.stderr)
    assert failed.stderr.count("\n") == 1


def test_sessions_show_and_stream_json(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(thinking=HOSTILE, tool_call=("shell", {"command": f"printf '{HOSTILE[:40]}'"})),
        turn(text=HOSTILE),
    )
    streamed = qac(
        "run", "x", *server_args(model_server), "-C", str(repo), "--output-format", "stream-json"
    )
    assert streamed.code == 0, streamed.stderr
    thinking = [e for e in streamed.lines() if e["type"] == "thinking"]
    assert "".join(str(e["text"]) for e in thinking) == HOSTILE  # byte-exact, JSON-escaped
    for sequence in RAW:  # JSON escapes C0 itself; qac escapes C1 and bidi the same way
        assert sequence not in streamed.stdout
    session = streamed.lines()[-1]["session_id"]
    shown = qac("sessions", "show", str(session), "--thinking")
    assert shown.code == 0
    assert_inert(shown.stdout)
    exported = qac("sessions", "export", str(session))
    for sequence in RAW:
        assert sequence not in exported.stdout
    listed = qac("sessions", "list")
    for sequence in RAW:
        assert sequence not in listed.stdout


def test_doctor_shows_sequences(qac, model_server: ScriptedServer):
    out = qac("doctor", *server_args(model_server), "--model", HOSTILE, "--sandbox", "off")
    for sequence in RAW:
        assert sequence not in out.stdout + out.stderr
