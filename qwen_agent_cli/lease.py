"""Session leases: which process may write a session, and whether a lease's holder is gone.
Two writers would interleave one history, so a session has one holder at a time.

Plain data and a read-only probe of the holder (signal 0, /proc); the SQL lives in store.py.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

STALE_AFTER_S = 15 * 60
"""A lease from another host, whose process cannot be probed, lapses after this long without a
heartbeat (one is written with every message)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """A process: its pid, host, and start time as the kernel counts it ("" where unknown),
    so a pid reused by an unrelated process is not mistaken for the holder."""

    pid: int
    host: str
    started: str


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    holder: Holder
    acquired_at: float
    heartbeat_at: float


def this_process() -> Holder:
    """The holder this process writes leases as."""
    return _holder(os.getpid())


@functools.cache
def _holder(pid: int) -> Holder:
    """Keyed by pid, so a forked child is not mistaken for its parent."""
    return Holder(pid, socket.gethostname(), _proc_stat(pid)[1])


def is_stale(lease: Lease, now: float) -> bool:
    """Whether another process may take the lease over. On this host the process is asked
    directly, so a long tool call or an idle REPL keeps its session; elsewhere only the
    heartbeat's age can tell."""
    holder = lease.holder
    if holder.host != socket.gethostname():
        return now - lease.heartbeat_at > STALE_AFTER_S
    return not _running(holder)


def in_use_message(lease: Lease) -> str:
    """The one line a refused second writer sees."""
    holder = lease.holder
    return (
        f"session {lease.session_id} is in use by another qac (pid {holder.pid} on "
        f"{holder.host}); wait for it to finish or start a new session"
    )


def _running(holder: Holder) -> bool:
    if holder.pid <= 0:
        return False  # os.kill(0, …) would probe our own process group
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    state, started = _proc_stat(holder.pid)
    if state == "Z":
        return False  # exited, not yet reaped: it writes nothing more
    return not (holder.started and started and started != holder.started)


def _proc_stat(pid: int) -> tuple[str, str]:
    """(state, start time) from /proc; empty strings where /proc is not there to ask."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return "", ""
    # The command name in parentheses may hold spaces or ")": split after its last ")".
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20:
        return "", ""
    return fields[0], fields[19]
