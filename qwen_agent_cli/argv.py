"""Reading an option out of an argument list before click parses it (the JSON result of a run
that failed early, an eval job's own budgets): the last value wins, as in click."""

from __future__ import annotations

from collections.abc import Sequence


def last_option(args: Sequence[str], name: str) -> str | None:
    """The value of the last `NAME VALUE` or `NAME=VALUE` before any `--`, if there is one."""
    found = None
    for index, word in enumerate(args):
        if word == "--":
            break
        if word == name and index + 1 < len(args):
            found = args[index + 1]
        elif word.startswith(f"{name}="):
            found = word.partition("=")[2]
    return found
