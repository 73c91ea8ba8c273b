"""Signs of life off a terminal: one stderr line when a wait passes WAIT_NOTICE_S seconds (a
request whose first token has not come, a tool still running), for runs nobody watches in a
terminal (CI logs, scripts). Without it a stalled server or a slow test suite looks like a hung
qac. A wait for the first token has no events, so a timer says it; stdout is never touched.
"""

from __future__ import annotations

import threading
from typing import TextIO

from qwen_agent_cli.events import ErrorEvent, Event, RequestEvent, ToolCallEvent
from qwen_agent_cli.ui.output import Writer, close_writer
from qwen_agent_cli.visible import visible

WAIT_NOTICE_S = 10.0
"""Seconds of silence before the line; `QAC_WAIT_NOTICE_S` overrides it (tests, slow servers)."""


def waited_for(event: Event) -> str | None:
    """What the run waits for once `event` is written, as the notice says it; None: nothing."""
    match event:
        case RequestEvent() | ErrorEvent(retrying=True, notice=False):
            return "still waiting for the model"
        case ToolCallEvent(name=name):
            return f"still running {name}"
    return None


class WaitNotices:
    """Wraps a writer; at most one line per wait, never after the wait ended or `close`.

    Race-free by a token: each wait gets a fresh one, the timer writes only while holding the
    lock and only if its token is still the current one, and ending a wait clears the token
    under the same lock. So once `write` or `close` has ended a wait, no line for it follows."""

    def __init__(self, inner: Writer, err: TextIO, after: float = WAIT_NOTICE_S) -> None:
        self.inner = inner
        self.err = err
        self.after = after
        self._lock = threading.Lock()
        self._token: object | None = None
        self._timer: threading.Timer | None = None

    def write(self, event: Event) -> None:
        self._end()
        self.inner.write(event)
        what = waited_for(event)
        if what is not None:
            self._begin(what)

    def close(self) -> None:
        """End the wait in progress (the run is over, however it ended)."""
        timer = self._end()
        if timer is not None:
            timer.join()
        close_writer(self.inner)

    def _begin(self, what: str) -> None:
        token = object()
        with self._lock:
            self._token = token
        timer = threading.Timer(self.after, self._say, args=(token, what))
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _end(self) -> threading.Timer | None:
        with self._lock:
            self._token = None
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        return timer

    def _say(self, token: object, what: str) -> None:
        with self._lock:
            if self._token is not token:
                return
            self._token = None
            self.err.write(f"qac: {visible(what)} ({self.after:g}s)\n")
            self.err.flush()
