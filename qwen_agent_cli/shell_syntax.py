"""A command line as the approval rules see it: parsed with tree-sitter's bash grammar into its
simple commands (pipelines, lists, `&`, subshells, substitutions, `if`/`for`/`while` bodies,
functions), with wrappers (`env`, `exec`, `nohup`, `time`, `xargs`, `bash -c`, ...) seen
through and each command normalised (no path prefix, quotes or backslashes; single spaces).

Imports nothing from qac; the tree-sitter grammar is loaded on first use.
"""

from __future__ import annotations

import codecs
import functools
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish"})
SHELL_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
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
        "busybox",
        "coproc",
        "flock",
        "script",
        "watch",
        "strace",
        "ltrace",
        "unshare",
        "su",
        "runuser",
        "sg",
        "chroot",
        "setpriv",
        "prlimit",
    }
)
SCRIPT_OPTIONS = {
    "su": ("-c", "--command"),
    "runuser": ("-c", "--command"),
    "sg": ("-c",),
    "flock": ("-c", "--command"),
    "script": ("-c", "--command"),
}
"""Wrappers that take a command line as an option's value (`su -c 'git push'`)."""
OPAQUE_PROGRAMS = {
    "eval": "it uses eval",
    "trap": "it sets a trap, which runs a command later",
    "alias": "it defines an alias",
    "fc": "it re-runs commands from history",
    "bind": "it binds keys to commands",
    "complete": "it registers completion commands",
    "enable": "it loads shell builtins",
}
"""Commands that run (or make the shell run) a command line the rules cannot see."""
"""Programs that run the rest of their arguments as a command."""
VALUE_OPTIONS = {
    "env": {"-u", "--unset", "-C", "--chdir"},
    "exec": {"-a"},
    "flock": {"-w", "--wait", "--timeout", "-E", "--conflict-exit-code"},
    "watch": {"-n", "--interval", "-d", "--differences", "-q", "--equexit"},
    "strace": {"-e", "-o", "-p", "-s", "-a", "-u", "-I", "-P", "-E", "-O", "-S", "-X", "-b"},
    "ltrace": {"-e", "-o", "-p", "-s", "-a", "-u", "-n", "-l"},
    "su": {"-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w"},
    "runuser": {"-u", "--user", "-g", "--group", "-G", "-s", "--shell", "-w"},
    "unshare": {"-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"},
    "setpriv": {"--reuid", "--regid", "--groups", "--inh-caps", "--bounding-set"},
    "prlimit": {"-p", "--pid"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "-t"},
    "xargs": {
        "-I",
        "-n",
        "-P",
        "-d",
        "-L",
        "-s",
        "-a",
        "-E",
        "--delimiter",
        "--max-args",
        "--max-lines",
        "--max-procs",
        "--max-chars",
        "--arg-file",
        "--process-slot-var",
    },
    "stdbuf": {"-i", "-o", "-e"},
    "sudo": {"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U"},
    "doas": {"-u", "-C"},
    "chrt": {"-p"},
    "taskset": {"-p"},
}
"""Wrapper options that take the next word as their value."""
POSITIONAL = {"timeout": 1, "chrt": 1, "taskset": 1, "flock": 1, "chroot": 1, "su": 1, "sg": 1}
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
STREAMS = ("/dev/", "/proc/", "<(", ">(")
"""Script operands that are streams, not files anyone can read beforehand."""


@dataclass(frozen=True, slots=True)
class CommandLine:
    """What a command line runs, for the approval rules.

    `commands`: each simple command as it runs once wrappers are seen through (what must be
    allowed); `layers`: those and every wrapper form on the way (what deny patterns are matched
    against); `opaque`: why the line cannot be checked at all, or ""."""

    commands: tuple[str, ...]
    layers: tuple[str, ...]
    opaque: str = ""


@functools.lru_cache(maxsize=256)
def parse_command_line(line: str) -> CommandLine:
    """Parse a shell command line; never raises (an unparseable line comes back opaque).
    Cached: one approval decision asks about the same line several times (deny, unchecked,
    allow), and the result is immutable."""
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
        data = text.encode("utf-8", "surrogateescape")
        tree = _parser().parse(data)
        if tree.root_node.has_error:
            self.refuse("it cannot be parsed as a shell command line")
        why = _hidden_commands(tree.root_node, data)
        if why:
            self.refuse(why)
        self.node(tree.root_node, depth)

    def node(self, node: Node, depth: int) -> None:
        if node.type == "function_definition":
            self.refuse("it defines a shell function, whose calls the rules cannot follow")
        if node.type == "command":
            self.command(node, depth)
        elif node.type in ("declaration_command", "unset_command"):
            # `export X=1`, `declare -i y=…`: a command the allow list must cover too.
            words = (node.text or b"").decode("utf-8", "surrogateescape").split()
            self.commands.append(" ".join(words))
            self.layers.append(" ".join(words))
        for child in node.children:
            self.node(child, depth)

    def command(self, node: Node, depth: int) -> None:
        name = node.child_by_field_name("name")
        if name is None:
            return
        program = _word(name)
        if _dynamic(name) or any(c in program for c in "*?[{"):
            self.refuse("its command name comes from a variable, a substitution or a pattern")
            return
        words = [program]
        for child in node.children:
            if child.type in ARGUMENT_NODES and child != name:
                words += _expand_braces(_word(child))
        self.words(words, depth)

    def words(self, words: list[str], depth: int) -> None:
        """One simple command: record it and see through wrappers and `sh -c`."""
        if not words:
            return
        words = [words[0].rsplit("/", 1)[-1] or words[0], *words[1:]]
        self.layers.append(" ".join(words))
        program, args = words[0], words[1:]
        why = _runs_hidden(program, args)
        if why:
            self.refuse(why)
            return
        if program in SHELLS:
            script = _script_argument(args)
            if script is not None:
                self.line(script, depth + 1)
                return
            operands = _shell_operands(args)
            if not operands or operands[0].startswith(STREAMS):
                self.refuse(f"{program} would run commands read from its input")
                return
        if program in SCRIPT_OPTIONS:
            script = _option_value(args, SCRIPT_OPTIONS[program])
            if script is not None:
                self.line(script, depth + 1)
                return
        if program == "env":
            split = _option_value(args, ("-S", "--split-string"))
            if split is not None:
                self.line(split, depth + 1)
                return
        if program in WRAPPERS:
            inner = _unwrap(program, args)
            if inner:
                if program == "xargs":
                    inner = [*inner, "…"]  # xargs appends the words it reads
                self.words(inner, depth + 1)
                return
        self.commands.append(" ".join(words))


def _runs_hidden(program: str, args: list[str]) -> str:
    """Why a command makes the shell run text the rules cannot see, or ""."""
    if program in OPAQUE_PROGRAMS and (program != "trap" or any(a[:1] != "-" for a in args)):
        return OPAQUE_PROGRAMS[program]
    if program in ("source", ".") and (not args or args[0].startswith(STREAMS)):
        return f"{program} reads commands from a stream"
    if program in ("mapfile", "readarray") and any(a.startswith("-C") for a in args):
        return f"{program} -C runs a callback command"
    if program == "hash" and any(a.startswith("-p") for a in args):
        return "hash -p renames a program"
    if program == "shopt" and "expand_aliases" in args:
        return "it turns on alias expansion"
    return ""


def _hidden_commands(root: Node, data: bytes) -> str:
    """Command text bash would run that tree-sitter left unparsed: backticks or `$(` inside
    `${…}`, a heredoc body or an escaped nested backtick, single-quoted text that arithmetic
    would evaluate (`[[ 'a[$(x)]' -eq 1 ]]`), and `${x@P}` prompt expansion."""
    parsed: list[tuple[int, int]] = []
    quoted: list[tuple[int, int]] = []
    arithmetic = False
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in ("command_substitution", "process_substitution"):
            text = node.text or b""
            if text.startswith(b"`") and b"\\`" in text:
                return "it nests backquoted commands the rules cannot see"
            parsed.append((node.start_byte, node.end_byte))
        elif node.type in ("raw_string", "ansi_c_string"):
            quoted.append((node.start_byte, node.end_byte))
            if node.type == "ansi_c_string":
                decoded = _decode_ansi_c((node.text or b"").decode("utf-8", "replace")[2:-1])
                if "`" in decoded or "$(" in decoded:
                    return "it spells a command substitution in $'…' escapes"
        elif node.type == "declaration_command":
            arithmetic = True
        elif node.type in ("arithmetic_expansion", "test_command"):
            arithmetic = True  # `((…))` statements are caught by the search for "((" below
        elif node.type == "command" and (node.text or b"").split(b" ", 1)[0] in (
            b"let",
            b"declare",
            b"typeset",
            b"local",
            b"test",
            b"[",
        ):
            arithmetic = True
        stack.extend(node.children)
    if b"@P}" in data:
        return "it uses prompt expansion (${x@P}), which runs commands"
    arithmetic = arithmetic or b"((" in data
    for marker in (b"`", b"$("):
        start = data.find(marker)
        while start != -1:
            if marker == b"$(" and data[start : start + 3] == b"$((":
                start = data.find(marker, start + 3)
                continue
            inside_parsed = any(a <= start < b for a, b in parsed)
            inside_quotes = any(a <= start < b for a, b in quoted)
            if not inside_parsed and (not inside_quotes or arithmetic):
                return "it hides a command where the rules cannot see it"
            start = data.find(marker, start + 1)
    return ""


def _dynamic(node: Node) -> bool:
    if node.type in DYNAMIC_NODES:
        return True
    return any(_dynamic(child) for child in node.children)


ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'", re.DOTALL)


def _word(node: Node) -> str:
    """A word with its quotes and backslashes removed and `$'…'` decoded, as the shell would
    pass it."""
    text = (node.text or b"").decode("utf-8", "surrogateescape")
    text = ANSI_C.sub(lambda m: shlex.quote(_decode_ansi_c(m.group(1))), text)
    try:
        return "".join(shlex.split(text, posix=True)) if text.strip() else text
    except ValueError:
        return text.replace("\\", "").replace('"', "").replace("'", "")


def _decode_ansi_c(body: str) -> str:
    try:
        return codecs.decode(body.encode("latin-1", "backslashreplace"), "unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return body


BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


def _expand_braces(word: str, limit: int = 64) -> list[str]:
    """`pu{sh,ll}` as bash expands it: `push pull` (one level at a time, bounded)."""
    found = BRACES.search(word)
    if found is None:
        return [word]
    words: list[str] = []
    for alternative in found.group(1).split(","):
        words += _expand_braces(word[: found.start()] + alternative + word[found.end() :], limit)
        if len(words) >= limit:
            break
    return words[:limit]


def _option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the first of `names` among a command's options (`-c X`, `-cX`, `--c=X`)."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name:
                return args[index + 1] if index + 1 < len(args) else ""
            if name.startswith("--") and arg.startswith(name + "="):
                return arg[len(name) + 1 :]
            if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                return arg[len(name) :]
    return None


def _script_argument(args: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (also `-lc`, `-ec`, `-o pipefail -c`, `-c -- SCRIPT`)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in SHELL_VALUE_OPTIONS:
            index += 2
            continue
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            rest = args[index + 1 :]
            if rest[:1] == ["--"]:
                rest = rest[1:]
            return rest[0] if rest else ""
        if not arg.startswith(("-", "+")):
            return None
        index += 1
    return None


def _shell_operands(args: list[str]) -> list[str]:
    """A shell's non-option words: its script file first, when there is one."""
    operands, index = [], 0
    while index < len(args):
        arg = args[index]
        if arg in SHELL_VALUE_OPTIONS:
            index += 2
            continue
        if arg == "--":
            operands += args[index + 1 :]
            break
        if not arg.startswith(("-", "+")) or arg in ("-", "+"):
            operands.append(arg)
        index += 1
    return operands


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
        if program == "taskset" and arg in ("-c", "--cpu-list"):
            index, positional = index + 2, 0
            continue
        if arg.startswith("-") and (len(arg) > 1 or program == "env"):
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
