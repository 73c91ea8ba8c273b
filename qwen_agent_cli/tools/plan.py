"""The plan the user can watch: `update_plan` records the model's short list of steps with their
statuses. The plan lives in the session's history (the call's arguments), so it survives
`--resume`, and compaction carries it into the summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.tools.base import Tool, ToolContext
from qwen_agent_cli.types import Message

PLAN_TOOL = "update_plan"
STATUSES = ("pending", "in_progress", "done")
MAX_STEPS = 30
MARKS = {"done": "[x]", "in_progress": "[>]", "pending": "[ ]"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "description": "The whole plan, in order; each call replaces the previous one.",
            "items": {
                "type": "object",
                "properties": {
                    "step": {"type": "string", "description": "What to do, in a few words."},
                    "status": {"type": "string", "enum": list(STATUSES)},
                },
                "required": ["step", "status"],
            },
        },
        "explanation": {"type": "string", "description": "Why the plan changed (optional)."},
    },
    "required": ["steps"],
}


def check_steps(steps: Any) -> list[dict[str, str]]:
    """The steps as the user will see them; a ToolError the model can act on otherwise."""
    if not isinstance(steps, list) or not steps:
        raise ToolError("update_plan needs steps: a non-empty list of {step, status}")
    if len(steps) > MAX_STEPS:
        raise ToolError(f"update_plan takes at most {MAX_STEPS} steps; merge some")
    checked = []
    for number, item in enumerate(steps, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("step"), str):
            raise ToolError(f"step {number} must be an object with a text `step`")
        status = item.get("status")
        if status not in STATUSES:
            raise ToolError(f"step {number}: status must be one of {', '.join(STATUSES)}")
        text = " ".join(item["step"].split())
        if not text:
            raise ToolError(f"step {number} is empty")
        checked.append({"step": text[:200], "status": str(status)})
    if sum(1 for s in checked if s["status"] == "in_progress") > 1:
        raise ToolError("only one step can be in_progress at a time")
    return checked


def steps_of(arguments: str) -> list[dict[str, str]]:
    """The steps of an update_plan call's raw arguments (already accepted by the tool)."""
    try:
        return check_steps(json.loads(arguments).get("steps"))
    except (ValueError, AttributeError, ToolError):
        return []


def current_plan(messages: Sequence[Message]) -> list[dict[str, str]]:
    """The last plan the tool accepted in this history (empty when there is none)."""
    failed = {m.tool_call_id for m in messages if m.role == "tool" and m.is_error}
    for message in reversed(messages):
        for call in reversed(message.tool_calls):
            if call.name == PLAN_TOOL and call.id not in failed:
                steps = steps_of(call.arguments)
                if steps:
                    return steps
    return []


def plan_text(steps: Sequence[dict[str, str]]) -> str:
    """The plan as lines of `[x] step`, for the terminal and the compaction summary."""
    return "\n".join(f"{MARKS.get(s['status'], '[ ]')} {s['step']}" for s in steps)


PLAN_MODE_NOTE = (
    "[Plan mode: you can read and search, but nothing can be edited or changed (the sandbox "
    "is read-only and edits are refused). Investigate what the task needs, record the steps "
    "with update_plan, and end by presenting the plan for the user to approve.]"
)
APPROVED = "The user approved the plan. Carry it out now, keeping update_plan current."


def plan_prompt(prompt: str) -> str:
    """The user's prompt as plan mode sends it: the mode said in the message, not the system
    prompt, so the prompt prefix (and the provider's cache) stays the same."""
    return f"{PLAN_MODE_NOTE}\n\n{prompt}"


def _update_plan(ctx: ToolContext, steps: list[Any], explanation: str | None = None) -> str:
    checked = check_steps(steps)
    done = sum(1 for s in checked if s["status"] == "done")
    return f"Plan updated: {done} of {len(checked)} steps done.\n{plan_text(checked)}"


update_plan = Tool(
    name=PLAN_TOOL,
    description=(
        "Record your plan for the task as a short list of steps with their statuses (pending, "
        "in_progress, done), so the user can follow it. Call it when you start a multi-step "
        "task and whenever a step's status changes; each call replaces the whole plan."
    ),
    parameters=SCHEMA,
    fn=_update_plan,
    read_only=True,
)
