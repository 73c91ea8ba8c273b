"""The console entry point: imports the command line with the stopping signals already routed,
so an interrupt even while Python is still loading modules ends with one line and its exit
code, not a traceback."""

from __future__ import annotations

import sys

from qwen_agent_cli import signals


def _quiet_unraisable(unraisable: object) -> None:
    """An interrupt can leave a half-built object whose finalizer fails; Python would print that
    as a traceback, which the user can do nothing about."""


def main() -> None:
    sys.unraisablehook = _quiet_unraisable
    signals.install()
    try:
        from qwen_agent_cli.cli import main as run
    except KeyboardInterrupt as exc:
        sys.stderr.write(f"qac: {signals.describe(exc)}\n")
        sys.exit(signals.exit_code(exc))
    run()
