"""A job's line in results.jsonl: what `qac ci` reported, the verdict, the reasoning sent
back, and the job's wall time with the eval's own share of it.

Imports nothing above `evaluation.results`.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from qwen_agent_cli.evaluation.results import Record
from qwen_agent_cli.tokens import CHARS_PER_TOKEN


def job_record(
    base: Record,
    relative: str,
    report: dict[str, Any],
    verdict: dict[str, Any],
    job_dir: Path,
    started: float,
    timings: dict[str, float],
) -> Record:
    usage = report.get("usage") or {}
    session = job_dir / "session.jsonl"
    record: Record = {
        **base,
        "status": report.get("status", "error"),
        "verified": bool(verdict["verified"]),
        "verdict": "fixed" if verdict["verified"] else "not fixed",
        "turns": int(report.get("turns") or 0),
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "cached_tokens": int(usage.get("cached_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "reasoning_tokens": int(usage.get("reasoning_tokens") or 0),
        "reasoning_resent_tokens": reasoning_resent(session),
        "cost_usd": float(report.get("cost_usd") or 0.0),
        "duration_s": float(report.get("duration_s") or 0.0),
        "files_changed": list(report.get("files_changed") or []),
        "session_id": report.get("session_id") or "",
        "session": f"{relative}/session.jsonl" if session.exists() else "",
        "patch": f"{relative}/fix.patch" if (job_dir / "fix.patch").exists() else "",
        "report": f"{relative}/report.json",
        "hidden": verdict.get("hidden"),
        "error": verdict.get("note") if not verdict["verified"] else None,
    }
    return timed(record, started, timings)


def error_record(base: Record, message: str, started: float, timings: dict[str, float]) -> Record:
    record: Record = {
        **base,
        "status": "error",
        "verified": False,
        "verdict": "not fixed",
        "turns": 0,
        "prompt_tokens": 0,
        "cached_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
        "reasoning_resent_tokens": 0,
        "cost_usd": 0.0,
        "duration_s": 0.0,
        "files_changed": [],
        "session_id": "",
        "session": "",
        "patch": "",
        "report": "",
        "hidden": None,
        "error": message,
    }
    return timed(record, started, timings)


def timed(record: Record, started: float, timings: dict[str, float]) -> Record:
    """The job's wall time, and the eval's own share of it: what is neither the `qac ci`
    process nor the task's own commands (setup, hidden tests)."""
    wall = time.monotonic() - started
    record["wall_s"] = round(wall, 3)
    record["overhead_s"] = round(max(wall - timings["ci_s"] - timings["user_s"], 0.0), 3)
    return record


def reasoning_resent(session: Path) -> int:
    """Tokens of earlier reasoning sent back in later requests: each reply's reasoning once
    per request after it, when the session preserved thinking (0 otherwise)."""
    try:
        lines = session.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    reasoning: list[int] = []
    preserved = False
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError, AttributeError, TypeError):
            data = json.loads(line)
            if data.get("type") == "session":
                preserved = bool(data["session"].get("settings", {}).get("preserve_thinking"))
            message = data.get("message") or {}
            if data.get("type") == "message" and message.get("role") == "assistant":
                reasoning.append(_reasoning_tokens(message))
    if not preserved:
        return 0
    replies = len(reasoning)
    return sum(tokens * (replies - 1 - index) for index, tokens in enumerate(reasoning))


def _reasoning_tokens(message: dict[str, Any]) -> int:
    """The reply's reasoning tokens as the provider counted them, else an estimate."""
    usage = message.get("usage") or {}
    if isinstance(usage.get("reasoning_tokens"), int):
        return int(usage["reasoning_tokens"])
    text = message.get("reasoning") or ""
    return len(text) // CHARS_PER_TOKEN + 1 if text else 0
