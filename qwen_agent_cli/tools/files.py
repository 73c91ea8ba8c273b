"""File tools: read, write, exact-string edit, and listing, all through the Workspace guard."""

from __future__ import annotations

import difflib
import os
from itertools import islice
from pathlib import Path

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.tools.base import Output, ToolContext, tool

BINARY_SNIFF = 8192
EDIT_LIMIT_BYTES = 10_000_000
LIST_LIMIT = 500
SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "dist",
        "build",
        ".qac-out",
    }
)


def _existing_file(ctx: ToolContext, path: str, *, write: bool = False) -> Path:
    target = ctx.workspace.resolve(path, write=write)
    if target.is_dir():
        raise ToolError(f"{path} is a directory; use list_files to see what it holds")
    if not target.exists():
        raise ToolError(f"{path} does not exist; use list_files or glob to find the right path")
    if not target.is_file():
        raise ToolError(f"{path} is not a regular file (a pipe, socket or device)")
    with target.open("rb") as handle:
        if b"\x00" in handle.read(BINARY_SNIFF):
            raise ToolError(f"{path} is a binary file; it cannot be read or edited as text")
    return target


@tool(read_only=True)
def read_file(ctx: ToolContext, path: str, offset: int = 1, limit: int = 2000) -> str:
    """Read a text file from the workspace.

    Args:
        path: file path relative to the workspace root
        offset: first line to read, counting from 1
        limit: how many lines to read at most
    """
    target = _existing_file(ctx, path)
    start = max(offset, 1)
    with target.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        lines = list(islice(handle, start - 1, start - 1 + max(limit, 1)))
        more = next(handle, None) is not None
    text = "".join(lines)
    notes = []
    if "\ufffd" in text:
        notes.append("the file is not valid UTF-8; undecodable bytes are shown as \ufffd")
    if more:
        end = start + len(lines) - 1
        notes.append(f"showing lines {start}-{end}; read on with offset={end + 1}")
    if start > 1 and not lines:
        notes.append(f"the file has fewer than {start} lines")
    if not text and start == 1:
        notes.append("the file is empty")
    return text + "".join(f"\n[{note}]" for note in notes)


@tool
def write_file(ctx: ToolContext, path: str, content: str) -> Output:
    """Create or overwrite a text file in the workspace with the given content.

    Args:
        path: file path relative to the workspace root
        content: the whole new content of the file
    """
    target = ctx.workspace.resolve(path, write=True)
    if target.is_dir():
        raise ToolError(f"{path} is a directory")
    existed = target.exists()
    before = _text_or_empty(target)
    ctx.workspace.write_text(target, content)
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    verb = "overwrote" if existed else "created"
    name = ctx.workspace.relative(target)
    return Output(
        f"{verb} {path} ({lines} lines)", (name,), diff=unified_diff(name, before, content)
    )


@tool
def edit_file(ctx: ToolContext, path: str, old: str, new: str) -> Output:
    """Replace the one exact occurrence of `old` with `new` in a file. `old` must match the file
    byte for byte, whitespace included, and occur exactly once: add surrounding lines to make it
    unique.

    Args:
        path: file path relative to the workspace root
        old: the exact text to replace
        new: the replacement text
    """
    target = _existing_file(ctx, path, write=True)
    if target.stat().st_size > EDIT_LIMIT_BYTES:
        raise ToolError(f"{path} is too large to edit ({target.stat().st_size} bytes)")
    try:
        text = target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text; it cannot be edited safely") from None
    if not old:
        raise ToolError("old must not be empty; use write_file to create a file")
    count = text.count(old)
    if count == 0:
        raise ToolError(f"old was not found in {path}. {_closest(text, old)}")
    if count > 1:
        lines = [str(text[:m].count("\n") + 1) for m in _positions(text, old)]
        raise ToolError(
            f"old occurs {count} times in {path} (at lines {', '.join(lines[:10])}); "
            "include more surrounding text so it matches exactly once"
        )
    line = text[: text.index(old)].count("\n") + 1
    after = text.replace(old, new, 1)
    ctx.workspace.write_text(target, after)
    name = ctx.workspace.relative(target)
    return Output(f"edited {path} at line {line}", (name,), diff=unified_diff(name, text, after))


def unified_diff(name: str, before: str, after: str) -> str:
    """The change as a unified diff, for people (the terminal shows it; the model does not)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
    )


def _text_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def preview(ctx: ToolContext, name: str, args: dict[str, object]) -> str:
    """What an edit would change, shown before a person approves it; empty when unknown."""
    try:
        path = str(args.get("path", ""))
        target = ctx.workspace.resolve(path, write=True)
    except ToolError:
        return ""
    before = _text_or_empty(target)
    relative = ctx.workspace.relative(target)
    if name == "write_file":
        return unified_diff(relative, before, str(args.get("content", "")))
    old, new = str(args.get("old", "")), str(args.get("new", ""))
    if name == "edit_file" and old and before.count(old) == 1:
        return unified_diff(relative, before, before.replace(old, new, 1))
    return ""


def _positions(text: str, needle: str) -> list[int]:
    found, start = [], 0
    while (index := text.find(needle, start)) != -1:
        found.append(index)
        start = index + 1
    return found


def _closest(text: str, old: str) -> str:
    """Name the lines most like `old`, so the model can copy the real text."""
    file_lines = text.splitlines()
    wanted = old.strip("\n").splitlines() or [old]
    window = len(wanted)
    target = "\n".join(wanted)
    scored: list[tuple[float, int]] = []
    for start in range(max(len(file_lines) - window + 1, 1)):
        candidate = "\n".join(file_lines[start : start + window])
        matcher = difflib.SequenceMatcher(None, candidate, target, autojunk=False)
        if matcher.real_quick_ratio() < 0.3 or matcher.quick_ratio() < 0.3:
            continue
        scored.append((matcher.ratio(), start))
    scored.sort(reverse=True)
    best = [s for s in scored[:3] if s[0] >= 0.5]
    if not best:
        return "No similar text found; read the file first."
    parts = []
    for ratio, start in best:
        snippet = "\n".join(file_lines[start : start + window])
        parts.append(f"lines {start + 1}-{start + window} ({ratio:.0%} similar):\n{snippet}")
    return "Closest candidates:\n" + "\n---\n".join(parts)


@tool(read_only=True)
def list_files(ctx: ToolContext, path: str = ".") -> str:
    """List files under a directory of the workspace, recursively, skipping VCS and build dirs.

    Args:
        path: directory relative to the workspace root
    """
    base = ctx.workspace.resolve(path)
    if not base.is_dir():
        raise ToolError(f"{path} is not a directory")
    found: list[str] = []
    for directory, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            found.append(ctx.workspace.relative(Path(directory) / name))
            if len(found) >= LIST_LIMIT:
                return "\n".join(found) + f"\n[stopped at {LIST_LIMIT} files; list a subdirectory]"
    return "\n".join(found) if found else f"{path} holds no files"
