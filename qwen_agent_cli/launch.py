"""The console entry point: imports the command line under a Ctrl-C guard, so an interrupt even
while Python is still loading modules ends with one line and exit 130, not a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from qwen_agent_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("qac: interrupted\n")
        sys.exit(130)
    run()
