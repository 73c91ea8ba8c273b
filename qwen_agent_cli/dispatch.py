"""Tool dispatch: parse a call, run the PreToolUse hooks, ask for approval when the policy says
so (with the command or the diff to show), run it, run the PostToolUse hooks, and turn every
failure into an error result for the model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from qwen_agent_cli.approval import (
    MCP_PREFIX,
    WEB_TOOL,
    ApprovalRequest,
    Approver,
    Policy,
    decide,
)
from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.hooks import Hooks
from qwen_agent_cli.tools import Tool, ToolRegistry
from qwen_agent_cli.tools.shell import test_command_line
from qwen_agent_cli.tools.web import domain_of
from qwen_agent_cli.types import ToolCall, ToolResult


@dataclass(frozen=True, slots=True)
class Dispatcher:
    registry: ToolRegistry
    policy: Policy
    approver: Approver
    hooks: Hooks = field(default_factory=Hooks)
    only: frozenset[str] | None = None
    """The tools a custom command allows for its turn (its `allowed-tools`); None: all."""

    def execute(self, call: ToolCall) -> ToolResult:
        """Parse, approve, run; every failure becomes an error result for the model."""
        if self.only is not None and call.name not in self.only:
            allowed = ", ".join(sorted(self.only)) or "none"
            message = f"refused: this command allows only these tools: {allowed}"
            return ToolResult(call.id, call.name, message, is_error=True)
        try:
            found, args = self.registry.parse(call)
        except ToolError as exc:
            return ToolResult(call.id, call.name, str(exc), is_error=True)
        refusal = self.hooks.before_tool(call.name, args)
        if refusal is not None:
            return ToolResult(call.id, call.name, f"refused by hook: {refusal}", is_error=True)
        command = args.get("command") if call.name == "shell" else None
        if call.name == "run_tests":
            try:
                command = test_command_line(
                    self.registry.ctx.settings.test_cmd, str(args.get("args") or "")
                )
            except ToolError as exc:
                return ToolResult(call.id, call.name, str(exc), is_error=True)
        summary = command or (
            f"edit {args.get('path')}"
            if not found.read_only and "path" in args
            else json.dumps(args, ensure_ascii=False)[:500]
        )
        scope = ""
        if call.name == WEB_TOOL:
            scope = domain_of(str(args.get("url", "")))
            if not scope:  # a URL the tool refuses before any connection: nothing to ask
                return self._invoke(found, call, args)
            summary = f"fetch {str(args.get('url', ''))[:300]} (outside the sandbox)"
        if call.name.startswith(MCP_PREFIX):  # "mcp__git__git_status wants to call it with {...}"
            summary = f"call it with {json.dumps(args, ensure_ascii=False)[:500]}"
        if not self.registry.ctx.workspace.writable and call.name in ("write_file", "edit_file"):
            return self._invoke(found, call, args)  # refused by the tool; no question
        request = ApprovalRequest(
            call.name, summary, command, found.read_only, scope=scope, arguments=args
        )
        if self.policy.needs_asking(request):
            request = replace(request, preview=self.registry.preview(call.name, args))
        decision = decide(self.policy, request, self.approver)
        if not decision.allowed:
            reason = decision.reason or "the user declined"
            return ToolResult(call.id, call.name, f"refused: {reason}", is_error=True)
        if decision.command and call.name == "shell" and decision.command != command:
            result = self._invoke(found, call, {**args, "command": decision.command})
            note = f"[the user edited the command before running it: {decision.command}]\n"
            return replace(result, output=note + result.output)
        return self._invoke(found, call, args)

    def _invoke(self, found: Tool, call: ToolCall, args: dict[str, Any]) -> ToolResult:
        """Run the tool, then its PostToolUse hooks (a formatter sees the edited file)."""
        result = self.registry.invoke(found, call, args)
        self.hooks.after_tool(call.name, args, result)
        return result
