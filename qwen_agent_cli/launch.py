"""The console entry point: imports the command line under a Ctrl-C guard, so an interrupt even
while Python is still loading modules ends with one line and exit 130, not a traceback."""

from __future__ import annotations

import sys


def _quiet_unraisable(unraisable: object) -> None:
    """An interrupt can leave a half-built object whose finalizer fails; Python would print that
    as a traceback, which the user can do nothing about."""


def main() -> None:
    sys.unraisablehook = _quiet_unraisable
    try:
        from qwen_agent_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("qac: interrupted\n")
        sys.exit(130)
    run()
