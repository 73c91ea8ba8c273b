"""Start an MCP server that dies with qac, even when qac is killed with SIGKILL: the SDK spawns
the server itself, so qac spawns this launcher instead, which asks Linux for SIGKILL on its
parent's death (PR_SET_PDEATHSIG survives exec) and then becomes the server.

    python -I -S orphan_guard.py PARENT_PID COMMAND [ARG...]

Standard library only and run as a file (not `-m`), so it starts fast and nothing in the
server's working directory can stand in for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.stderr.write("usage: orphan_guard.py PARENT_PID COMMAND [ARG...]\n")
        return 2
    with contextlib.suppress(OSError, AttributeError):  # not Linux: stopped on a normal exit only
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(argv[0]):  # qac died before the signal was armed
        return 137
    try:
        os.execvp(argv[1], argv[1:])
    except OSError as exc:
        sys.stderr.write(f"cannot run {argv[1]}: {exc.strerror}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
