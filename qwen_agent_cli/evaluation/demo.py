"""`qac eval --demo`: the bundled tasks as real git repositories in a scratch folder, a task
file pointing at them, and a scripted model on loopback for each job, playing that task's
turns for that arm. Offline, no key, a throwaway store.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwen_agent_cli.evaluation.demo_tasks import TASKS
from qwen_agent_cli.evaluation.tasks import Arm, Task
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer

DEMO_MODEL = "qwen3.6-demo"
DEMO_CONFIG = f"""# qac eval --demo: a made-up price, so the report has costs to compare
[models."{DEMO_MODEL}"]
input = 0.50
output = 3.00
"""


def new_file_patch(files: dict[str, str]) -> str:
    """A git patch that adds `files` (the hidden tests), as `git apply` takes it."""
    parts = []
    for name, text in sorted(files.items()):
        lines = text.splitlines(keepends=True)
        parts.append(
            f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}" for line in lines)
        )
    return "".join(parts)


def prepare(root: Path) -> Path:
    """The demo's repositories under root and the task file naming them; returns its path."""
    lines = []
    for spec in TASKS:
        repo = root / "repos" / spec["id"]
        repo.mkdir(parents=True)
        for name, text in spec["files"].items():
            (repo / name).write_text(text, encoding="utf-8")
        commit = init_repository(repo, f"{spec['id']}: the bug").git("rev-parse", "HEAD")
        task: dict[str, Any] = {
            "id": spec["id"],
            "repo": str(repo),
            "base_commit": commit.strip(),
            "prompt": spec["prompt"],
            "test_cmd": spec["test_cmd"],
            "hidden_test_cmd": spec.get("hidden_test_cmd", spec["test_cmd"]),
            "test_patch": new_file_patch(spec["hidden"]),
            "max_turns": 10,
            "timeout": 120,
        }
        lines.append(json.dumps(task) + "\n")
    tasks_file = root / "tasks.jsonl"
    tasks_file.write_text("".join(lines), encoding="utf-8")
    (root / "home").mkdir()
    (root / "home" / "config.toml").write_text(DEMO_CONFIG, encoding="utf-8")
    return tasks_file


def scripts_for(task_id: str, arm: str) -> list[dict[str, Any]]:
    """The turns the demo model plays for a task under an arm (an arm of your own gets the
    first arm's turns)."""
    spec = next(s for s in TASKS if s["id"] == task_id)
    scripts: dict[str, list[dict[str, Any]]] = spec["scripts"]
    return scripts.get(arm) or next(iter(scripts.values()))


@contextlib.contextmanager
def demo_model(task: Task, arm: Arm) -> Iterator[list[str]]:
    """A scripted server for one job, held while the job runs."""
    with ScriptedServer(scripts_for(task.id, arm.name), reasoning_field="reasoning") as server:
        yield ["--provider", "vllm", "--base-url", server.url, "--model", DEMO_MODEL]
