"""`qac init` and `/init`: the fixed request that has the model write the repository's AGENTS.md,
and the approver that lets that run write AGENTS.md and nothing else.

Imports `approval` and below; knows nothing of terminals (the person is asked through an
injected Approver).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from qwen_agent_cli.approval import ApprovalRequest, Approver, Decision

FILE_NAME = "AGENTS.md"


def init_prompt() -> str:
    """The fixed request: inspect with read-only tools, then write AGENTS.md only."""
    return resources.files("qwen_agent_cli.prompts").joinpath("init.md").read_text("utf-8")


def exists(workdir: Path) -> bool:
    """Whether the directory has an AGENTS.md already (a link counts, even a broken one)."""
    return os.path.lexists(workdir / FILE_NAME)


def writes_agents_md(request: ApprovalRequest) -> bool:
    """Whether the call writes `AGENTS.md` at the workspace root (`./AGENTS.md` too)."""
    if request.tool != "write_file" or not request.summary.startswith("edit "):
        return False
    return os.path.normpath(request.summary.removeprefix("edit ")) == FILE_NAME


class AgentsMdApprover:
    """Refuses every change but writing AGENTS.md; that one goes to `person` (who sees the
    diff), or is allowed outright when there is none (`qac init --yes`)."""

    def __init__(self, person: Approver | None) -> None:
        self.person = person

    def approve(self, request: ApprovalRequest) -> Decision:
        if not writes_agents_md(request):
            return Decision(
                False,
                f"this run may only write {FILE_NAME} (with write_file); inspect the repository "
                "with the read-only tools instead",
            )
        if self.person is None:
            return Decision(True)
        return self.person.approve(request)
