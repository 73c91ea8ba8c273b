"""Search tools: glob for names, grep for contents; read-only, in-process, bounded."""

from __future__ import annotations

import os
import re
from pathlib import Path

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.tools.base import ToolContext, tool
from qwen_agent_cli.tools.files import BINARY_SNIFF, SKIP_DIRS
from qwen_agent_cli.workspace import Workspace

MATCH_LIMIT = 200
GREP_FILE_LIMIT = 5_000_000


def _walk(base: Path, workspace: Workspace) -> list[Path]:
    """Regular files under base that really lie in the workspace: a symlink planted to point
    out (the shell can make one) is skipped, never followed."""
    paths: list[Path] = []
    for directory, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if workspace.contains(path) and path.is_file():
                paths.append(path)
    return paths


@tool(read_only=True)
def glob(ctx: ToolContext, pattern: str) -> str:
    """Find files whose workspace-relative path matches a glob such as `src/**/*.py`.

    Args:
        pattern: glob pattern relative to the workspace root
    """
    root = ctx.workspace.resolve(".")
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise ToolError("the pattern must be relative to the workspace root")
    if not pattern.strip():
        raise ToolError("the pattern is empty; try `**/*.py`")
    try:
        matches = list(root.glob(pattern))
    except ValueError as exc:
        raise ToolError(f"bad glob pattern {pattern!r}: {exc}") from None
    found = sorted(
        ctx.workspace.relative(p)
        for p in matches
        if ctx.workspace.contains(p)
        and p.is_file()
        and not (set(p.relative_to(root).parts) & SKIP_DIRS)
    )
    if not found:
        return f"no files match {pattern}"
    more = len(found) - MATCH_LIMIT
    listing = "\n".join(found[:MATCH_LIMIT])
    return listing + (f"\n[{more} more not shown]" if more > 0 else "")


@tool(read_only=True)
def grep(
    ctx: ToolContext,
    pattern: str,
    path: str = ".",
    include: str | None = None,
    ignore_case: bool = False,
) -> str:
    """Search file contents with a regular expression; prints path:line: text for each match.

    Args:
        pattern: Python regular expression
        path: file or directory relative to the workspace root
        include: only files whose name matches this glob, such as `*.py`
        ignore_case: match case-insensitively
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"bad regular expression {pattern!r}: {exc}") from None
    base = ctx.workspace.resolve(path)
    files = [base] if base.is_file() else _walk(base, ctx.workspace)
    matches: list[str] = []
    for file in files:
        if include and not file.match(include):
            continue
        try:
            if file.stat().st_size > GREP_FILE_LIMIT:
                continue
            data = file.read_bytes()
        except OSError:
            continue
        if b"\x00" in data[:BINARY_SNIFF]:
            continue
        text = data.decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line):
                matches.append(f"{ctx.workspace.relative(file)}:{number}: {line[:300]}")
                if len(matches) >= MATCH_LIMIT:
                    return "\n".join(matches) + f"\n[stopped at {MATCH_LIMIT} matches]"
    return "\n".join(matches) if matches else f"no matches for {pattern}"
