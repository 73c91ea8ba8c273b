"""A command line as the approval rules see it: parsed with tree-sitter's bash grammar into its
simple commands (pipelines, lists, `&`, subshells, substitutions, `if`/`for`/`while` bodies,
functions), with wrappers (`env`, `exec`, `nohup`, `time`, `xargs`, `bash -c`, ...) seen
through and each command normalised (no path prefix, quotes or backslashes; single spaces).

Imports nothing from qac; the tree-sitter grammar is loaded on first use.
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
WRAPPERS = frozenset(
    {
        "env",
        "exec",
        "nohup",
        "time",
        "nice",
        "ionice",
        "timeout",
        "xargs",
        "command",
        "builtin",
        "stdbuf",
        "setsid",
        "sudo",
        "doas",
        "chrt",
        "taskset",
        "unbuffer",
        "caffeinate",
    }
)
"""Programs that run the rest of their arguments as a command."""
VALUE_OPTIONS = {
    "env": {"-u", "--unset", "-C", "--chdir"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "-t"},
    "xargs": {"-I", "-i", "-n", "-P", "-d", "-L", "-s", "-a", "-E", "-e", "--delimiter"},
    "stdbuf": {"-i", "-o", "-e"},
    "sudo": {"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U"},
    "doas": {"-u", "-C"},
    "chrt": {"-p"},
    "taskset": {"-p", "-c"},
}
"""Wrapper options that take the next word as their value."""
POSITIONAL = {"timeout": 1, "chrt": 1, "taskset": 1}
"""Wrappers with leading positional operands before the command (a duration, a priority)."""
ARGUMENT_NODES = frozenset(
    {
        "word",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "number",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "brace_expression",
    }
)
DYNAMIC_NODES = frozenset(
    {"simple_expansion", "expansion", "command_substitution", "process_substitution"}
)
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class CommandLine:
    """What a command line runs, for the approval rules.

    `commands`: each simple command as it runs once wrappers are seen through (what must be
    allowed); `layers`: those and every wrapper form on the way (what deny patterns are matched
    against); `opaque`: why the line cannot be checked at all, or ""."""

    commands: tuple[str, ...]
    layers: tuple[str, ...]
    opaque: str = ""


def parse_command_line(line: str) -> CommandLine:
    """Parse a shell command line; never raises (an unparseable line comes back opaque)."""
    walker = _Walker()
    walker.line(line, 0)
    return CommandLine(
        tuple(dict.fromkeys(walker.commands)),
        tuple(dict.fromkeys(walker.layers)),
        walker.opaque,
    )


@functools.cache
def _parser() -> Parser:
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


class _Walker:
    def __init__(self) -> None:
        self.commands: list[str] = []
        self.layers: list[str] = []
        self.opaque = ""

    def refuse(self, why: str) -> None:
        self.opaque = self.opaque or why

    def line(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.refuse("it nests shells too deeply to check")
            return
        if "\x00" in text:
            self.refuse("it holds a NUL byte")
            return
        tree = _parser().parse(text.encode("utf-8", "surrogateescape"))
        if tree.root_node.has_error:
            self.refuse("it cannot be parsed as a shell command line")
        self.node(tree.root_node, depth)

    def node(self, node: Node, depth: int) -> None:
        if node.type == "command":
            self.command(node, depth)
        for child in node.children:
            self.node(child, depth)

    def command(self, node: Node, depth: int) -> None:
        name = node.child_by_field_name("name")
        if name is None:
            return
        if _dynamic(name):
            self.refuse("its command name comes from a variable or a substitution")
            return
        words = [_word(name)]
        words += [_word(c) for c in node.children if c.type in ARGUMENT_NODES and c != name]
        self.words(words, depth)

    def words(self, words: list[str], depth: int) -> None:
        """One simple command: record it and see through wrappers and `sh -c`."""
        if not words:
            return
        words = [words[0].rsplit("/", 1)[-1] or words[0], *words[1:]]
        self.layers.append(" ".join(words))
        program = words[0]
        if program == "eval":
            self.refuse("it uses eval")
            return
        if program in SHELLS:
            script = _script_argument(words[1:])
            if script is not None:
                self.line(script, depth + 1)
                return
            if not any(not w.startswith("-") for w in words[1:]):
                self.refuse(f"{program} would run commands read from its input")
                return
        if program in WRAPPERS:
            inner = _unwrap(program, words[1:])
            if inner:
                self.words(inner, depth + 1)
                return
        self.commands.append(" ".join(words))


def _dynamic(node: Node) -> bool:
    if node.type in DYNAMIC_NODES:
        return True
    return any(_dynamic(child) for child in node.children)


def _word(node: Node) -> str:
    """A word with its quotes and backslashes removed, as the shell would pass it."""
    text = (node.text or b"").decode("utf-8", "surrogateescape")
    if node.type == "ansi_c_string":
        text = text[1:]
    try:
        return "".join(shlex.split(text, posix=True)) if text.strip() else text
    except ValueError:
        return text.replace("\\", "").replace('"', "").replace("'", "")


def _script_argument(args: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (also `-lc`, `-ec`, `-o pipefail -c`)."""
    for index, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return args[index + 1] if index + 1 < len(args) else ""
        if not arg.startswith(("-", "+")) and (index == 0 or args[index - 1] not in ("-o", "+o")):
            return None
    return None


def _unwrap(program: str, args: list[str]) -> list[str]:
    """The command a wrapper runs: its own options, `VAR=value` words and operands skipped."""
    takes_value = VALUE_OPTIONS.get(program, set())
    positional = POSITIONAL.get(program, 0)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if arg.startswith("-") and len(arg) > 1:
            index += 2 if arg in takes_value else 1
            continue
        if program == "env" and "=" in arg:
            index += 1
            continue
        if positional:
            positional -= 1
            index += 1
            continue
        break
    return args[index:]
