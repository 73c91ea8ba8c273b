"""Custom slash commands: Markdown prompts in a project's `.qac/commands/` and the user's
`commands/` folder become `/name` (subfolders give `/folder:name`). Owns finding them, reading
their front matter, and expanding one into the prompt sent: arguments, `@file` attachments and
``!`command` `` lines run by the executor it is given. Imports no UI and starts no process itself.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qwen_agent_cli.config import COMMANDS_DIR
from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.guard import inside, read_capped
from qwen_agent_cli.images import sniff
from qwen_agent_cli.sandbox import ExecResult
from qwen_agent_cli.workspace import Workspace

USER_COMMANDS_DIR = "commands"
"""The user's commands, beside the user config file."""
COMMAND_LIMIT = 64_000
"""Bytes of one command file; a longer one is refused, not cut."""
MAX_COMMANDS = 500
SHELL_OUTPUT_LIMIT = 10_000
"""Characters of one ``!`command` `` line's output inlined in the prompt."""
ATTACH = re.compile(r"(?<!\S)@(\S+)")
ATTACH_LIMIT = 100_000
FRONT_MATTER_KEYS = ("description", "argument-hint", "model", "allowed-tools")
NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
ARGUMENT = re.compile(r"\$(ARGUMENTS|[1-9])(?![0-9A-Za-z_])")
SHELL_LINE = re.compile(r"!`([^`]+)`")

Runner = Callable[[str], ExecResult]
"""Runs one shell line in the run's sandbox (the executor with its cwd and timeout bound)."""


@dataclass(frozen=True, slots=True)
class CustomCommand:
    name: str
    """As typed: `/review`, `/git:commit` (lower case)."""
    path: Path
    project: bool
    """From the repository, so its shell lines need the project trusted (or a yes)."""
    body: str = ""
    description: str = ""
    argument_hint: str = ""
    model: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    problem: str | None = None
    """Why the file cannot be used (bad front matter, too large); shown when it is invoked."""

    def summary(self) -> str:
        """One line for /help and Tab completion."""
        if self.problem:
            return f"(broken: {self.problem})"
        where = "project" if self.project else "user"
        text = " ".join(part for part in (self.argument_hint, self.description) if part)
        return f"{text} ({where})" if text else f"({where})"


@dataclass(frozen=True, slots=True)
class Expansion:
    text: str
    attached: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    """Shell lines left unrun (an untrusted project's, not confirmed)."""


def user_commands_dir(user_config_file: Path) -> Path:
    return user_config_file.parent / USER_COMMANDS_DIR


def discover(
    workdir: Path, user_dir: Path, reserved: Iterable[str] = ()
) -> tuple[dict[str, CustomCommand], list[str]]:
    """Every command by name, a user's over a project's of the same name; and one notice per
    command that a built-in (`reserved`) hides."""
    found: dict[str, CustomCommand] = {}
    places = ((workdir, workdir / COMMANDS_DIR, True), (user_dir, user_dir, False))
    for root, base, project in places:
        if not base.is_dir() or not inside(root, base):
            continue
        for relative, name in _command_files(root, base):
            found[name] = load(root, relative, name, project=project)
    notices = []
    for name in sorted(set(reserved) & set(found)):
        command = found.pop(name)
        notices.append(f"{command.path}: {name} is a built-in command, so this file is not used")
    return dict(sorted(found.items())), notices


def _command_files(root: Path, base: Path) -> list[tuple[Path, str]]:
    """(path relative to root, command name) for each `.md` under base; links to folders are
    not followed, names that cannot be typed are skipped."""
    files: list[tuple[Path, str]] = []
    for folder, subfolders, names in os.walk(base):
        subfolders[:] = sorted(s for s in subfolders if NAME_PART.fullmatch(s))
        for file_name in sorted(names):
            path = Path(folder, file_name)
            parts = path.relative_to(base).with_suffix("").parts
            if path.suffix != ".md" or not all(NAME_PART.fullmatch(p) for p in parts):
                continue
            files.append((path.relative_to(root), "/" + ":".join(parts).lower()))
            if len(files) >= MAX_COMMANDS:
                return files
    return files


def load(root: Path, relative: Path, name: str, *, project: bool) -> CustomCommand:
    """A command from its file, read through the guard; a problem is kept, not raised, so one
    bad file does not hide the others."""
    path = root / relative
    try:
        data = read_capped(root, relative, COMMAND_LIMIT)
        if len(data) > COMMAND_LIMIT:
            raise ConfigError(f"{path}: over the {COMMAND_LIMIT:,}-byte limit for a command")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 ({exc.reason})") from None
        return parse(text, name, path, project=project)
    except (ConfigError, ToolError) as exc:
        return CustomCommand(name, path, project, problem=str(exc))


def parse(text: str, name: str, path: Path, *, project: bool) -> CustomCommand:
    """The front matter between `---` lines (strict `key: value` lines) and the body."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return CustomCommand(name, path, project, body=text)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ConfigError(f"{path}: the front matter opened by --- on line 1 is never closed")
    meta = parse_front_matter(lines[1:end], path)
    tools = meta.get("allowed-tools")
    return CustomCommand(
        name,
        path,
        project,
        body="\n".join(lines[end + 1 :]).lstrip("\n"),
        description=str(meta.get("description", "")),
        argument_hint=str(meta.get("argument-hint", "")),
        model=str(meta["model"]) if meta.get("model") else None,
        allowed_tools=tuple(tools) if isinstance(tools, list) else None,
    )


def parse_front_matter(lines: list[str], path: Path) -> dict[str, str | list[str]]:
    """`key: value` lines; `allowed-tools` also takes `[a, b]`, `a, b` or `- a` lines. Anything
    else is an error naming the file and line."""
    values: dict[str, str | list[str]] = {}
    items: list[str] | None = None
    for number, raw in enumerate(lines, start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if items is not None and line.startswith("- "):
            items.append(_unquote(_uncomment(line[2:].strip())))
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), _uncomment(value.strip())
        where = f"{path}: line {number} of the front matter"
        if not colon or not KEY.fullmatch(key):
            raise ConfigError(f"{where}: expected `key: value`, got {line[:80]!r}")
        if key not in FRONT_MATTER_KEYS:
            known = ", ".join(FRONT_MATTER_KEYS)
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        if key in values:
            raise ConfigError(f"{where}: {key} is given twice")
        items = None
        if key == "allowed-tools":
            items = [_unquote(t.strip()) for t in value.strip("[]").split(",") if t.strip()]
            values[key] = items
        else:
            values[key] = _unquote(value)
    return values


def _uncomment(value: str) -> str:
    """YAML's ` # comment` after an unquoted value."""
    if value[:1] in ("'", '"'):
        return value
    return re.split(r"\s#", value, maxsplit=1)[0].strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def find(prompt: str, commands: dict[str, CustomCommand]) -> tuple[CustomCommand, str] | None:
    """The command a prompt like `/name args` invokes, with its arguments; None otherwise."""
    stripped = prompt.strip()
    if not stripped.startswith("/"):
        return None
    name, _, arguments = stripped.partition(" ")
    command = commands.get(name.lower())
    return None if command is None else (command, arguments.strip())


def expand(
    command: CustomCommand, arguments: str, workspace: Workspace, run: Runner | None
) -> Expansion:
    """The prompt a command sends: arguments substituted, shell lines run (or, with `run`
    None, refused in place) and `@file`s of the command and its arguments attached."""
    if command.problem:
        raise ConfigError(command.problem)
    text = substitute(command.body, arguments)
    blocks, attached = file_blocks(text, workspace)
    text, refused = run_shell_lines(text, run)
    if blocks:
        text = text.rstrip("\n") + "\n\n" + "\n\n".join(blocks)
    return Expansion(text, tuple(attached), tuple(refused))


def substitute(body: str, arguments: str) -> str:
    """`$ARGUMENTS` → all of them, `$1`…`$9` → each (split like a shell); in one pass, so an
    argument holding `$2` stays as typed. Unused arguments are appended."""
    try:
        words = shlex.split(arguments)
    except ValueError:  # an unbalanced quote: split on spaces
        words = arguments.split()
    used = False

    def value(match: re.Match[str]) -> str:
        nonlocal used
        used = True
        if match.group(1) == "ARGUMENTS":
            return arguments
        index = int(match.group(1)) - 1
        return words[index] if index < len(words) else ""

    text = ARGUMENT.sub(value, body)
    if arguments and not used:
        text = f"{text.rstrip()}\n\nARGUMENTS: {arguments}"
    return text


def shell_lines(command: CustomCommand) -> list[str]:
    """The commands of its ``!`command` `` lines, to show before asking to run them."""
    return [c for c in map(_shell_command, command.body.splitlines()) if c]


def _shell_command(line: str) -> str | None:
    match = SHELL_LINE.fullmatch(line.strip())
    return match.group(1).strip() if match else None


def run_shell_lines(text: str, run: Runner | None) -> tuple[str, list[str]]:
    """Each line that is only ``!`command` `` replaced by its output (capped, with the exit
    code when not 0); with no runner, by a note that it was not run."""
    lines, refused = [], []
    for line in text.split("\n"):
        command = _shell_command(line)
        if not command:
            lines.append(line)
        elif run is None:
            refused.append(command)
            lines.append(f"[not run: `{command}`; the project is not trusted]")
        else:
            lines.append(shell_output(run(command)))
    return "\n".join(lines), refused


def shell_output(result: ExecResult) -> str:
    output = result.output.rstrip("\n")
    if len(output) > SHELL_OUTPUT_LIMIT:
        cut = len(output) - SHELL_OUTPUT_LIMIT
        output = f"{output[:SHELL_OUTPUT_LIMIT]}\n[{cut:,} more characters cut]"
    if result.timed_out:
        output += "\n[timed out]"
    elif result.exit_code != 0:
        output += f"\n[exit code {result.exit_code}]"
    return output.lstrip("\n")


def workspace_references(
    text: str, workspace: Workspace, limit: int
) -> Iterator[tuple[str, Path, bytes]]:
    """Each distinct `@path` in text that names a regular file in the workspace: its name as
    written, its path and up to `limit` bytes of it, read through the guard (anything refused
    or missing is skipped)."""
    for name in dict.fromkeys(ATTACH.findall(text)):
        try:
            path = workspace.resolve(name.rstrip(".,;:!?)"))
            if not path.is_file():
                continue
            data = read_capped(workspace.root, path.relative_to(workspace.root.resolve()), limit)
        except (ToolError, ValueError):
            continue
        yield name, path, data[:limit]


def file_blocks(text: str, workspace: Workspace) -> tuple[list[str], list[str]]:
    """A `<file>` block for every `@path` in text that names a readable text file in the
    workspace (read through the guard, capped), and the paths attached."""
    blocks, attached = [], []
    for _, path, data in workspace_references(text, workspace, ATTACH_LIMIT):
        if b"\x00" in data[:8192] or sniff(data) is not None:
            continue  # binary; an image is attached as one by the REPL
        relative = workspace.relative(path)
        blocks.append(f'<file path="{relative}">\n{data.decode("utf-8", "replace")}\n</file>')
        attached.append(relative)
    return blocks, attached
