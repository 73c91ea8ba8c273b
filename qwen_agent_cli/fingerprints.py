"""What makes two tool calls "the same" for stall detection: normalised arguments, the file a
read looks at, and the outcome with its volatile parts masked. Pure functions; imports only
plain data from qac.

Every number in an output is masked, counts included. A loop rarely changes only a number, and
the things that do change between identical runs (durations, ports, pids, line numbers shifted
by a cosmetic edit, run counters in temp dirs) are numbers too. A failure that really changes
changes its words as well: a different test name, assertion or error line. The cost: "3 failed"
and "2 failed", or `assert 2 == 2.5` and `assert 3 == 2.5`, with otherwise identical output
count as the same outcome.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
from dataclasses import dataclass

from qwen_agent_cli.types import ToolCall, ToolResult

READ_ONLY_TOOLS = frozenset({"read_file", "list_files", "glob", "grep"})
PATH_KEYS = frozenset({"path", "file", "file_path", "filename", "dir", "directory", "cwd"})
COMMAND_KEYS = frozenset({"command", "cmd", "args"})
WHOLE_FILE_VIEWERS = frozenset({"cat", "less", "more", "nl", "bat"})
SHELL_SYNTAX = re.compile(r"[|;&<>$`(){}\n*?\[\]]")
READ_FILE_LIMIT = 2000
DOT_SLASH = re.compile(r"(?<![\w./-])\./(?=[\w.-])")
EXIT_CODE = re.compile(r"^exit code (-?\d+)", re.MULTILINE)
# Order matters: whole tokens (ids, durations, clock times) go before the bare-number rule
# would split them into differently shaped pieces ("850ms" vs "1.2s").
MASKS = (
    (re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]"), ""),
    (re.compile(r"\r\n?"), "\n"),
    (DOT_SLASH, ""),
    (re.compile(r"(?:/private)?/var/folders/[^/\s]+/[^/\s]+/[A-Z]\b"), "<tmp>"),
    (re.compile(r"\btmp[a-z0-9_]{8}\b|\btmp\.[A-Za-z0-9]{6,}\b"), "<tmp>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b"), "<hex>"),
    (re.compile(r"\b\d+:\d\d:\d\d(?:[.,]\d+)?\b"), "<t>"),
    (re.compile(r"\b(?:\d+(?:\.\d+)?(?:ms|us|µs|ns|h|m|s))+\b"), "<t>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|s|secs?|seconds?|mins?|minutes?|hours?)\b"), "<t>"),
    (re.compile(r"<t> \(<t>\)|\(cached\)"), "<t>"),
    (re.compile(r"\[ *\d+%\]"), "[N%]"),
    (re.compile(r"\d+(?:\.\d+)*"), "N"),
    # Rules like pytest's "==== 1 failed in 0.65s ====" are padded to the width of their text.
    (re.compile(r"([=_*#~-])\1{3,}"), r"\1\1\1"),
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r" ?\n ?"), "\n"),
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """`call` is the tool with its normalised arguments, `outcome` the result's class and masked
    output, `read` the thing a successful read looked at (None when the call is not a read)."""

    call: str
    outcome: str
    read: str | None


def fingerprint(call: ToolCall, result: ToolResult) -> Fingerprint:
    """Two calls with equal fingerprints did the same thing and got the same answer."""
    exit_code = EXIT_CODE.search(result.output)
    status = "error" if result.is_error else "ok"
    masked = mask_volatile(result.output).encode(errors="surrogatepass")  # names need not be UTF-8
    digest = hashlib.sha256(masked).hexdigest()[:16]
    outcome = f"{status}:{exit_code.group(1) if exit_code else '-'}:{digest}"
    read = None if result.is_error else read_target(call.name, call.arguments)
    return Fingerprint(f"{call.name}:{normal_arguments(call.arguments)}", outcome, read)


def mask_volatile(text: str) -> str:
    """The output with what differs between identical runs (times, ids, temp names, numbers)
    masked. Paths are kept apart from their random parts: the workspace itself may be in /tmp."""
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text.strip()


def normal_arguments(arguments: str) -> str:
    """Arguments as canonical JSON, so near-repeats (spacing, `./a.txt`, key order) match."""
    try:
        parsed = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return " ".join(arguments.split())
    return json.dumps(_normal_value("", parsed), sort_keys=True)


def _normal_value(key: str, value: object) -> object:
    if isinstance(value, dict):
        return {k: _normal_value(str(k), v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normal_value(key, item) for item in value]
    if not isinstance(value, str):
        return value
    value = value.strip()
    if key in PATH_KEYS or key.endswith("_path"):
        return normal_path(value)
    if key in COMMAND_KEYS:
        return DOT_SLASH.sub("", " ".join(value.split()))
    return value


def normal_path(path: str) -> str:
    """`./a.txt`, `a.txt/` and `.//a.txt` are one file."""
    return posixpath.normpath(re.sub("/+", "/", path.strip())) if path.strip() else path


def read_target(name: str, arguments: str) -> str | None:
    """What a read looks at, one spelling for `read_file`, `cat`, `head` and `sed -n`; None for
    anything that is not a plain read."""
    try:
        args = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(args, dict):
        return None
    if name == "read_file" and isinstance(args.get("path"), str):
        offset, limit = args.get("offset", 1), args.get("limit", READ_FILE_LIMIT)
        whole = offset in (None, 1) and (limit is None or limit == READ_FILE_LIMIT)
        return _file_view(args["path"], None if whole else f"{offset}+{limit}")
    if name in READ_ONLY_TOOLS:
        return f"{name}:{normal_arguments(arguments)}"
    if name == "shell" and isinstance(args.get("command"), str):
        return _shell_read(args["command"])
    return None


def _file_view(path: str, span: str | None) -> str:
    return f"file:{normal_path(path)}" + (f":{span}" if span else "")


def _shell_read(command: str) -> str | None:
    """`cat F`, `head -n N F`, `tail -N F`, `sed -n 'A,Bp' F`: one program, no shell syntax."""
    if SHELL_SYNTAX.search(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words:
        return None
    program, rest = posixpath.basename(words[0]), words[1:]
    files = [w for w in rest if not w.startswith("-")]
    if program in WHOLE_FILE_VIEWERS:
        return ",".join(_file_view(f, None) for f in files) or None
    if program in ("head", "tail"):
        return _head_or_tail(program, rest)
    if program == "sed" and len(rest) == 3 and rest[0] == "-n":
        lines = re.fullmatch(r"(\d+)(?:,(\d+))?p", rest[1])
        if lines:
            first = int(lines.group(1))
            last = int(lines.group(2) or first)
            return _file_view(rest[2], f"{first}+{last - first + 1}")
    return None


def _head_or_tail(program: str, options: list[str]) -> str | None:
    """`head F`, `head -n 20 F`, `head -20 F`, `tail --lines=5 F`: one file, a line count."""
    count, files, words = 10, list[str](), iter(options)
    for word in words:
        option = word + next(words, "") if word == "-n" else word
        match = re.fullmatch(r"-n?(\d+)|--lines=(\d+)", option)
        if match:
            count = int(match.group(1) or match.group(2))
        elif word.startswith("-"):
            return None
        else:
            files.append(word)
    if len(files) != 1:
        return None
    return _file_view(files[0], f"1+{count}" if program == "head" else f"last{count}")
