"""Approval policy: ask / auto-edit / auto plus allow and deny command patterns, turned into a
decision for each tool call. Asking a person goes through an injected Approver.

Imports types and config only; knows nothing of terminals.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Protocol

COMMAND_TOOLS = frozenset({"shell", "run_tests"})
SEPARATORS = re.compile(r"&&|\|\||;|\||\n|\$\(|`")


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What the model wants to do, as a person would need to see it."""

    tool: str
    summary: str
    command: str | None = None
    read_only: bool = False
    preview: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """Yes or no; `command` replaces the shell command when the person edited it."""

    allowed: bool
    reason: str = ""
    command: str | None = None


class Approver(Protocol):
    """Asks a person; must return a Decision and never raise for a refusal."""

    def approve(self, request: ApprovalRequest) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def denied_by(self, command: str) -> str | None:
        """The deny pattern a command (or any part of a compound command) matches."""
        pieces = [command.strip(), *(p.strip() for p in SEPARATORS.split(command))]
        for piece in filter(None, pieces):
            for pattern in self.deny:
                if fnmatch.fnmatchcase(piece, pattern):
                    return pattern
        return None

    def allowed_by(self, command: str) -> bool:
        return any(fnmatch.fnmatchcase(command.strip(), p) for p in self.allow)

    def needs_asking(self, request: ApprovalRequest) -> bool:
        if request.read_only or self.mode == "auto":
            return False
        is_command = request.tool in COMMAND_TOOLS
        if is_command and request.command is not None and self.allowed_by(request.command):
            return False
        return self.mode == "ask" or is_command


def decide(policy: Policy, request: ApprovalRequest, approver: Approver) -> Decision:
    """Deny wins; then the mode decides whether to ask the approver."""
    if request.command is not None:
        pattern = policy.denied_by(request.command)
        if pattern is not None:
            return Decision(
                False, f"the command matches the deny pattern {pattern!r} in the approval config"
            )
    if policy.needs_asking(request):
        return approver.approve(request)
    return Decision(True)


class NonInteractiveApprover:
    """For `run` and `ci`: nobody to ask, so what needs asking is refused, never waited on."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def approve(self, request: ApprovalRequest) -> Decision:
        return Decision(
            False,
            f"approval mode {self.mode!r} needs a person to approve {request.tool}, and this "
            "run is non-interactive; do without it or ask the user to rerun with --approval auto",
        )
