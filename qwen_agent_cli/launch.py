"""The console entry point: imports the command line under a Ctrl-C guard, so an interrupt even
while Python is still loading modules ends with one line and exit 130, not a traceback."""

from __future__ import annotations

import signal
import sys
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises in qac. A subclass on purpose: CPython marks a plain KeyboardInterrupt
    that leaves a string exec (a dataclass being built during a lazy import, say) as unhandled,
    and `python -m` then dies by SIGINT after qac already caught it and chose exit 130. The
    check compares the exact type, so a subclass is never marked; `except KeyboardInterrupt`
    still catches it everywhere."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def _quiet_unraisable(unraisable: object) -> None:
    """An interrupt can leave a half-built object whose finalizer fails; Python would print that
    as a traceback, which the user can do nothing about."""


def install_interrupt_handler() -> None:
    """Ctrl-C raises Interrupted; left alone where SIGINT is ignored (nohup, a background job)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupted)


def main() -> None:
    sys.unraisablehook = _quiet_unraisable
    install_interrupt_handler()
    try:
        from qwen_agent_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("qac: interrupted\n")
        sys.exit(130)
    run()
