"""The progress of `qac eval`: a live panel on a terminal (done, running, failed, ETA, spend),
plain lines otherwise, one per finished job. Runs on the pool's threads, under its lock.
"""

from __future__ import annotations

import time
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from qwen_agent_cli.visible import visible


def describe(record: dict[str, Any]) -> str:
    """One finished job in words."""
    verdict = "fixed" if record["verified"] else "not fixed"
    detail = f"status {record['status']}, {record['turns']} turns, ${record['cost_usd']:.4f}"
    if record.get("error") and not record["verified"]:
        detail += f"; {record['error']}"
    return visible(
        f"{record['task']} [{record['arm']}]: {verdict} ({detail}, {record['wall_s']:.1f} s)"
    )


def eta(progress: Any, workers: int) -> str:
    left = progress.total - progress.done_before - progress.done
    if not progress.job_seconds or left <= 0:
        return "-"
    seconds = sum(progress.job_seconds) / len(progress.job_seconds) * left / max(workers, 1)
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


class PlainProgress:
    """A line per event, for logs and CI."""

    def __init__(self, stream: IO[str], workers: int) -> None:
        self.stream = stream
        self.workers = workers

    def __call__(self, kind: str, progress: Any) -> None:
        if kind == "start":
            todo = progress.total - progress.done_before
            self._line(
                f"qac eval: {todo} of {progress.total} runs to do "
                f"({progress.done_before} done before), {self.workers} at a time"
            )
        elif kind == "finished" and progress.last is not None:
            count = progress.done_before + progress.done
            self._line(
                f"[{count}/{progress.total}] {describe(progress.last)}; "
                f"spent ${progress.spend:.4f}, ETA {eta(progress, self.workers)}"
            )

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class LiveProgress:
    """A panel that redraws in place; finished jobs scroll above it."""

    def __init__(self, stream: IO[str], workers: int) -> None:
        self.console = Console(file=stream)
        self.workers = workers
        self.live: Live | None = None

    def __call__(self, kind: str, progress: Any) -> None:
        if kind == "start":
            self.live = Live(self._panel(progress), console=self.console, transient=True)
            self.live.start()
            return
        if self.live is None:
            return
        if kind == "finished" and progress.last is not None:
            mark = "✓" if progress.last["verified"] else "✗"
            self.live.console.print(Text(f"{mark} {describe(progress.last)}"))
        if kind == "end":
            self.live.stop()
            self.live = None
            return
        self.live.update(self._panel(progress))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _panel(self, progress: Any) -> Group:
        done = progress.done_before + progress.done
        head = Text(
            f"qac eval  done {done}/{progress.total} · running {len(progress.running)} · "
            f"failed {progress.failed} · ETA {eta(progress, self.workers)} · "
            f"spent ${progress.spend:.4f}",
            style="bold",
        )
        running = [Text(f"  … {visible(name)}", style="dim") for name in progress.running]
        return Group(head, *running)


def progress_for(stream: IO[str], workers: int, *, terminal: bool) -> PlainProgress | LiveProgress:
    return LiveProgress(stream, workers) if terminal else PlainProgress(stream, workers)
