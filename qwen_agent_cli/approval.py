"""Approval policy: ask / auto-edit / auto plus allow and deny command patterns, turned into a
decision for each tool call. Asking a person goes through an injected Approver.

Imports types and config only; knows nothing of terminals.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from qwen_agent_cli.shell_syntax import parse_command_line

COMMAND_TOOLS = frozenset({"shell", "run_tests"})
WEB_TOOL = "web_fetch"
MCP_PREFIX = "mcp__"


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What the model wants to do, as a person would need to see it."""

    tool: str
    summary: str
    command: str | None = None
    read_only: bool = False
    preview: str = ""
    scope: str = ""
    """What an "always" answer covers beyond the tool: the domain of a web_fetch."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """The call's arguments, for a question that has no command or diff to show."""


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
    """Deny patterns match if any simple command of a line (or any wrapper form of one) matches;
    allow patterns skip asking only if every simple command matches one. Patterns are a
    convenience: the sandbox is the boundary."""

    mode: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    web_domains: tuple[str, ...] = ()
    """Domains web_fetch reaches without asking, in any mode (it runs outside the sandbox)."""
    mcp_allowed: frozenset[str] = frozenset()
    """MCP tools (`mcp__SERVER__TOOL`) the user's config allows without asking."""
    plan_mode: bool = False
    """Nothing may change: MCP tools (programs outside the sandbox) are refused."""

    def denied_by(self, command: str) -> str | None:
        """The deny pattern a command (or any part or wrapper form of it) matches."""
        parsed = parse_command_line(command)
        whole = " ".join(command.split())
        for piece in (whole, *parsed.layers, *parsed.commands):
            for pattern in self.deny:
                if fnmatch.fnmatchcase(piece, pattern):
                    return pattern
        return None

    def allowed_by(self, command: str) -> bool:
        parsed = parse_command_line(command)
        if parsed.opaque or not parsed.commands:
            return False
        return all(
            any(fnmatch.fnmatchcase(simple, pattern) for pattern in self.allow)
            for simple in parsed.commands
        )

    def web_allowed(self, domain: str) -> bool:
        return any(fnmatch.fnmatchcase(domain, pattern.lower()) for pattern in self.web_domains)

    def needs_asking(self, request: ApprovalRequest) -> bool:
        if request.tool == WEB_TOOL:
            # Outside the sandbox, and a way out for what the model read: in every mode,
            # a domain the user has not allowed is asked about (refused without a person).
            return not self.web_allowed(request.scope)
        if request.tool.startswith(MCP_PREFIX):
            return request.tool not in self.mcp_allowed and self.mode != "auto"
        if request.read_only:
            return False
        is_command = request.tool in COMMAND_TOOLS
        if is_command and request.command is not None:
            if unchecked(request.command):
                return True  # deny patterns cannot see into it, so nothing waves it through
            if self.mode != "auto" and self.allowed_by(request.command):
                return False
        if self.mode == "auto":
            return False
        return self.mode == "ask" or is_command


def unchecked(command: str) -> str:
    """Why a command line cannot be checked against the rules (eval, a variable as the command
    name, a parse error, a shell reading commands from its input), or ""."""
    return parse_command_line(command).opaque


def decide(policy: Policy, request: ApprovalRequest, approver: Approver) -> Decision:
    """Deny wins; then the mode decides whether to ask the approver."""
    if policy.plan_mode and request.tool.startswith(MCP_PREFIX):
        return Decision(
            False,
            "plan mode: MCP tools run outside the sandbox and may change things, so they wait "
            "until the user approves the plan",
        )
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
        why = unchecked(request.command) if request.command is not None else ""
        if why:
            return Decision(
                False,
                f"the command cannot be checked against the approval rules ({why}), so it needs "
                "a person, and this run is non-interactive; write the command out plainly",
            )
        if request.tool == WEB_TOOL:
            return Decision(
                False,
                f"fetching from {request.scope} needs the user's approval, and this run is "
                "non-interactive; do without it (the user can allow the domain with [tools] "
                "web_fetch_domains in their config)",
            )
        if request.tool.startswith(MCP_PREFIX):
            server = request.tool.split("__")[1] if request.tool.count("__") >= 2 else "?"
            return Decision(
                False,
                f"{request.tool} needs the user's approval in approval mode {self.mode!r}, and "
                "this run is non-interactive; do without it (the user can allow it by name in "
                f"[mcp.servers.{server}] allow, or rerun with --approval auto)",
            )
        return Decision(
            False,
            f"approval mode {self.mode!r} needs a person to approve {request.tool}, and this "
            "run is non-interactive; do without it or ask the user to rerun with --approval auto",
        )
