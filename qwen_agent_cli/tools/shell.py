"""Command tools: `shell` and `run_tests`, both through the executor (the sandbox)."""

from __future__ import annotations

import re
import shlex

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.sandbox import ExecResult
from qwen_agent_cli.tools.base import Output, ToolContext, tool

PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.MULTILINE)
UNITTEST_FAILED = re.compile(r"^FAILED \((.*)\)$", re.MULTILINE)


def _report(result: ExecResult) -> str:
    head = f"exit code {result.exit_code}"
    if result.timed_out:
        head += " (timed out)"
    if result.truncated:
        head += " (output truncated: the middle was cut)"
    return f"{head}\n{result.output}"


@tool
def shell(ctx: ToolContext, command: str, timeout: int | None = None) -> Output:
    """Run a shell command in the workspace (bash, no stdin) and return its exit code and output.

    Args:
        command: the command line to run
        timeout: seconds before the command and its children are killed
    """
    limit = ctx.settings.command_timeout
    seconds = min(float(timeout), limit) if timeout and timeout > 0 else limit
    result = ctx.executor.run(command, cwd=ctx.workspace.root, timeout=seconds)
    return Output(_report(result), failed=result.exit_code != 0)


def parse_test_counts(output: str, exit_code: int) -> dict[str, int]:
    """Counts from pytest's or unittest's closing lines; empty when neither is found."""
    counts: dict[str, int] = {}
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    for line in reversed(lines[-15:]):
        if re.search(r"\b(passed|failed|error|errors|no tests ran)\b", line) and " in " in line:
            for number, word in PYTEST_COUNTS.findall(line):
                key = "errors" if word.startswith("error") else word
                counts[key] = counts.get(key, 0) + int(number)
            if counts:
                return counts
    ran = UNITTEST_RAN.findall(output)
    if ran:
        total = int(ran[-1])
        failed = UNITTEST_FAILED.findall(output)
        bad = 0
        if failed:
            for part in failed[-1].split(","):
                name, _, value = part.strip().partition("=")
                if name in ("failures", "errors") and value.isdigit():
                    counts[name if name == "errors" else "failed"] = int(value)
                    bad += int(value)
        counts["passed"] = max(total - bad, 0) if exit_code == 0 or failed else 0
    return counts


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} {key}" for key, value in counts.items()) or "no counts found"


def test_command_line(test_cmd: str | None, args: str) -> str:
    """The configured test command with the model's arguments appended as separate words, each
    quoted: `args` is split like shell words, never pasted into the shell line, so `; git push`
    is an argument the test runner rejects, not a second command."""
    if not test_cmd:
        raise ToolError(
            "no test command is configured (--test-cmd or test_cmd in config); "
            "use the shell tool to run tests"
        )
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise ToolError(f"run_tests args must be shell words ({exc}): {args!r}") from None
    return " ".join([test_cmd.strip(), *(shlex.quote(word) for word in words)])


@tool
def run_tests(ctx: ToolContext, args: str = "") -> Output:
    """Run the project's configured test command and report pass/fail with the output.

    Args:
        args: extra arguments appended to the test command, such as a test file or -k filter
    """
    full = test_command_line(ctx.settings.test_cmd, args)
    result = ctx.executor.run(full, cwd=ctx.workspace.root, timeout=ctx.settings.command_timeout)
    verdict = "PASSED" if result.exit_code == 0 else "FAILED"
    counts = describe_counts(parse_test_counts(result.output, result.exit_code))
    report = f"tests {verdict} ({counts}) running `{full}`\n{_report(result)}"
    return Output(report, failed=result.exit_code != 0)
