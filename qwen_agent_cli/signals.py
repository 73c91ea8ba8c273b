"""Ctrl-C, SIGTERM and SIGHUP all stop qac the same way: the running step is interrupted, what
arrived is stored, the result is printed, and the exit code names the signal (130, 143, 129).
CI runners, `timeout`, `docker stop` and systemd send SIGTERM; a closed terminal sends SIGHUP."""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class Interrupted(KeyboardInterrupt):
    """What a stopping signal raises in qac. A KeyboardInterrupt, so every `except
    KeyboardInterrupt` path (store what arrived, kill the tool's processes) handles all three;
    a subclass on purpose: CPython marks a plain KeyboardInterrupt that leaves a string exec (a
    dataclass built during a lazy import) as unhandled, and `python -m` then dies by SIGINT
    after qac already chose its exit code. That check compares the exact type."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum


received: int | None = None
"""The last stopping signal qac received (None: none yet)."""


_holding = False
_held: int | None = None


def _raise(signum: int, frame: FrameType | None) -> None:
    global received, _held
    received = signum
    if _holding:
        _held = signum
        return
    raise Interrupted(signum)


def hold() -> None:
    """Keep a stopping signal from raising until `release`: while a child process is being
    started, an Interrupted raised inside `subprocess.Popen` would leave the child with nobody
    to kill it. Only the main thread runs signal handlers, so only it holds."""
    global _holding, _held
    if threading.current_thread() is threading.main_thread():
        _holding, _held = True, None


def release() -> None:
    """Stop holding; a stopping signal that came meanwhile raises now."""
    global _holding, _held
    if threading.current_thread() is not threading.main_thread():
        return
    signum, _holding, _held = _held, False, None
    if signum is not None:
        raise Interrupted(signum)


def install() -> None:
    """Route the stopping signals to Interrupted; one the parent set to be ignored (nohup, a
    background job) stays ignored."""
    for signum in STOPPING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise)


def _signum(exc: BaseException | None) -> int:
    return int(getattr(exc, "signum", None) or received or signal.SIGINT)


def exit_code(exc: BaseException | None = None) -> int:
    """128 + the signal's number, as shells report it: the exception's signal, else the last
    one received, else Ctrl-C's."""
    return 128 + _signum(exc)


def describe(exc: BaseException | None = None) -> str:
    """`interrupted`, `terminated (SIGTERM)` or `hung up (SIGHUP)`."""
    signum = signal.Signals(_signum(exc))
    name = NAMES.get(signum, "interrupted")
    return name if signum == signal.SIGINT else f"{name} ({signum.name})"


def must_exit() -> bool:
    """SIGTERM or SIGHUP arrived: unlike Ctrl-C, it ends the REPL too."""
    return received in (signal.SIGTERM, signal.SIGHUP)
