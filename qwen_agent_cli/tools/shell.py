"""Command tools: `shell` and `run_tests`, both through the executor (the sandbox)."""

from __future__ import annotations

import shlex

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.sandbox import ExecResult
from qwen_agent_cli.testcounts import describe_counts as describe_counts
from qwen_agent_cli.testcounts import parse_test_counts as parse_test_counts
from qwen_agent_cli.tools.base import Output, ToolContext, tool


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
