"""REPL input handling with prompt_toolkit's pipe input: keys, paste, slash commands,
completion and `@path` attachments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from qwen_agent_cli.ui.prompt import (
    CTRL_C,
    ReplCompleter,
    attach_files,
    parse_slash,
    prompt_session,
)
from qwen_agent_cli.workspace import Workspace

FILES = ["README.md", "src/calc.py", "src/cli.py", "tests/test_calc.py"]


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


def ask(pipe: PipeInput, keys: str) -> str:
    session = prompt_session(
        InMemoryHistory(), lambda: FILES, lambda: "", input=pipe, output=DummyOutput()
    )
    pipe.send_text(keys)
    return session.prompt("> ")


def test_enter_sends_and_escape_enter_inserts_a_newline(pipe: PipeInput):
    assert ask(pipe, "one\x1b\rtwo\r") == "one\ntwo"


def test_pasted_multi_line_text_stays_one_message(pipe: PipeInput):
    assert ask(pipe, "\x1b[200~first line\nsecond line\n\x1b[201~\r") == (
        "first line\nsecond line\n"
    )


def test_ctrl_c_on_an_empty_line_is_reported_and_otherwise_clears(pipe: PipeInput):
    assert ask(pipe, "\x03") == CTRL_C
    assert ask(pipe, "typed\x03kept\r") == "kept"


def test_ctrl_d_on_an_empty_line_ends_input(pipe: PipeInput):
    with pytest.raises(EOFError):
        ask(pipe, "\x04")


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("/model qwen3.6-plus", ("/model", "qwen3.6-plus")),
        ("  /COST  ", ("/cost", "")),
        ("/thinking full", ("/thinking", "full")),
        ("fix the bug", None),
        ("//not a command", None),
    ],
)
def test_slash_command_parsing(line: str, parsed: tuple[str, str] | None):
    assert parse_slash(line) == parsed


def completions(text: str) -> list[str]:
    completer = ReplCompleter(lambda: FILES)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_slash_commands_and_their_arguments_complete():
    assert completions("/mo") == ["/model"]
    assert completions("/")[:3] == ["/help", "/new", "/sessions"]
    assert completions("/thinking f") == ["full"]
    assert completions("/approval au") == ["auto-edit", "auto"]


def test_at_paths_complete_from_the_workspace_files():
    assert completions("look at @src/c") == ["@src/calc.py", "@src/cli.py"]
    assert completions("see @calc") == ["@src/calc.py"]
    assert completions("no at sign") == []


def test_at_path_attaches_the_file_and_refuses_outside(tmp_path: Path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("remember the milk\n")
    (tmp_path / "secret.txt").write_text("secret")
    message, attached = attach_files("read @notes.txt and @../secret.txt.", Workspace(root))
    assert attached == ["notes.txt"]
    assert message.endswith('<file path="notes.txt">\nremember the milk\n\n</file>')
    assert "secret" not in message.split("\n\n", 1)[1]
