"""What a person types in the REPL: slash-command parsing, Tab completion of commands and
`@paths`, the key bindings, the prompt session, and `@path` attachments (read through the guard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from qwen_agent_cli.commands import file_blocks, workspace_references
from qwen_agent_cli.config import APPROVAL_MODES, SANDBOX_MODES
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.images import MAX_IMAGE_BYTES, image_from_bytes, sniff
from qwen_agent_cli.types import Image
from qwen_agent_cli.ui.render import THINKING_MODES
from qwen_agent_cli.workspace import Workspace

SLASH_COMMANDS = {
    "/help": "show this help",
    "/new": "start a new session",
    "/sessions": "list stored sessions",
    "/resume": "/resume ID: switch to a stored session",
    "/model": "/model NAME: use another model",
    "/thinking": "/thinking show|hide|full: how reasoning is shown",
    "/preserve": "/preserve on|off: send earlier reasoning back",
    "/approval": "/approval ask|auto-edit|auto",
    "/sandbox": "/sandbox read-only|workspace-write|off",
    "/cost": "tokens and cost of this session",
    "/context": "tokens by part: system, repository context, messages, reasoning, tool results",
    "/diff": "the changes made to files in this session",
    "/last": "the last tool output in full (Ctrl-O at the empty prompt shows it too)",
    "/undo": "revert the file changes of the last turn",
    "/compact": "summarize older turns to free context",
    "/plan": "/plan [on|off]: plan mode: read and search only, then a plan to approve",
    "/mcp": "MCP servers: their state and tools",
    "/init": "have the model write AGENTS.md for this repository (/init force rewrites it)",
    "/exit": "leave (Ctrl-D also works)",
}
ARGUMENT_CHOICES = {
    "/thinking": THINKING_MODES,
    "/preserve": ("on", "off"),
    "/approval": APPROVAL_MODES,
    "/sandbox": SANDBOX_MODES,
    "/plan": ("on", "off"),
}
CTRL_C = "\x03"
PROMPT = "› "  # noqa: RUF001


def parse_slash(line: str) -> tuple[str, str] | None:
    """`/model qwen3.6-plus` → ("/model", "qwen3.6-plus"); None for ordinary messages."""
    stripped = line.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    name, _, rest = stripped.partition(" ")
    return name.lower(), rest.strip()


class ReplCompleter(Completer):
    """Slash commands (built-in and custom) and their arguments, and `@path` file names from
    the workspace."""

    def __init__(
        self,
        files: Callable[[], list[str]],
        custom: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.files = files
        self.custom = custom

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and "\n" not in before:
            name, space, arg = before.partition(" ")
            if not space:
                for command, help_text in {**self.custom(), **SLASH_COMMANDS}.items():
                    if command.startswith(name.lower()):
                        yield Completion(command, -len(name), display_meta=help_text)
                return
            for choice in ARGUMENT_CHOICES.get(name.lower(), ()):
                if choice.startswith(arg):
                    yield Completion(choice, -len(arg))
            return
        word = document.get_word_before_cursor(WORD=True)
        if word.startswith("@"):
            prefix = word[1:]
            for path in self.files():
                if path.startswith(prefix) or (prefix and f"/{prefix}" in f"/{path}"):
                    yield Completion("@" + path, -len(word))


def key_bindings(expand: Callable[[], object] | None = None) -> KeyBindings:
    """Enter sends; Alt+Enter / Esc Enter inserts a newline; Ctrl-C on an empty line is
    reported to the loop (twice exits), otherwise it clears the line; Ctrl-O on an empty line
    prints `expand`'s output (the last tool output) above the prompt."""
    bindings = KeyBindings()

    if expand is not None:

        @bindings.add("c-o")
        def _expand(event: KeyPressEvent) -> None:
            if not event.current_buffer.text:
                run_in_terminal(expand)

    @bindings.add("enter")
    def _send(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(result=CTRL_C)

    return bindings


def prompt_session(
    history: History,
    files: Callable[[], list[str]],
    toolbar: Callable[[], str],
    custom: Callable[[], Mapping[str, str]] = dict,
    expand: Callable[[], object] | None = None,
    **io: Any,
) -> PromptSession[str]:
    return PromptSession(
        multiline=True,
        key_bindings=key_bindings(expand),
        completer=ReplCompleter(files, custom),
        complete_while_typing=True,
        history=history,
        bottom_toolbar=toolbar,
        **io,
    )


def attach_files(text: str, workspace: Workspace) -> tuple[str, list[str]]:
    """Append the content of every `@path` that names a readable workspace file."""
    blocks, attached = file_blocks(text, workspace)
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), attached


def attach_images(text: str, workspace: Workspace) -> tuple[list[Image], list[str]]:
    """Every `@path` naming an image in the workspace (PNG, JPEG, GIF, WebP by their bytes),
    read through the guard and capped like `--image`."""
    images, attached = [], []
    for name, path, data in workspace_references(text, workspace, MAX_IMAGE_BYTES + 1):
        mime = sniff(data)
        if mime is None:
            continue
        if len(data) > MAX_IMAGE_BYTES:
            raise ConfigError(f"image {name} is over the {MAX_IMAGE_BYTES:,}-byte limit")
        images.append(image_from_bytes(data, mime))
        attached.append(workspace.relative(path))
    return images, attached
