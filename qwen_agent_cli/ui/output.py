"""The `--output-format` writers: text, json and stream-json (DESIGN §8)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from qwen_agent_cli import jsonl
from qwen_agent_cli.events import ErrorEvent, Event, Result
from qwen_agent_cli.visible import visible


class Writer(Protocol):
    def write(self, event: Event) -> None: ...


def close_writer(writer: Writer | None) -> None:
    """Settle a writer however the run ended (a renderer's spinner line erased, a wait notice's
    timer stopped); one with nothing to settle has no `close`."""
    close = getattr(writer, "close", None)
    if callable(close):
        close()


def relay(events: Generator[Event, None, None], write: Callable[[Event], None]) -> Result | None:
    """Write each event as it comes; returns the run's Result. A Ctrl-C that lands while an event
    is being written, not while the agent runs, is thrown into the agent at the point it
    yielded, so the run still stores what arrived and ends with its interrupted Result. One the
    agent did not catch (before its loop began) goes on to the caller."""
    interrupt: KeyboardInterrupt | None = None
    while True:
        try:
            event = next(events) if interrupt is None else events.throw(interrupt)
        except StopIteration:
            return None
        interrupt = None
        try:
            write(event)
        except KeyboardInterrupt as exc:
            interrupt = exc
        if isinstance(event, Result):
            events.close()
            return event


def result_object(result: Result) -> dict[str, Any]:
    """The DESIGN §8 result object, with any job-specific extras (ci) merged in."""
    data = asdict(result)
    data.pop("exit_code")
    data.update(data.pop("extra"))
    return data


def failure_result(message: str, status: str, started: float) -> Result:
    """The result of a run that ended before its loop began (a bad flag or config, a missing
    key, an interrupt): the same object as any other run's, so scripts need one code path."""
    return Result(
        session_id="",
        status=status,
        result=message,
        turns=0,
        usage={
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": None,
            "reasoning_tokens": None,
        },
        cost_usd=0.0,
        duration_s=round(time.monotonic() - started, 3),
        extra={"error": message},
    )


class ResultLedger:
    """Whether this process has written its final result yet (so a failure after it, such as
    the exit that follows it, adds no second one), and the output format its settings chose
    (a failure before they load falls back to the flag or QAC_OUTPUT_FORMAT)."""

    written = False
    output_format: str | None = None


class JsonWriter:
    """One object at the end."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, event: Event) -> None:
        if isinstance(event, Result):
            self.out.write(jsonl.dumps(result_object(event)) + "\n")
            self.out.flush()
            ResultLedger.written = True


STREAM_TYPES = frozenset(
    {
        "session",
        "thinking",
        "text",
        "tool_call",
        "tool_result",
        "usage",
        "plan",
        "hook",
        "error",
        "result",
    }
)


class StreamJsonWriter:
    """One object per line as things happen, each with its `type` and a `timestamp`; only the
    DESIGN §8 types, `plan` and `hook`, so a strict consumer never meets one it does not know."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, event: Event) -> None:
        if event.type not in STREAM_TYPES:
            return
        data = result_object(event) if isinstance(event, Result) else asdict(event)
        data["timestamp"] = timestamp()
        self.out.write(jsonl.dumps(data) + "\n")
        self.out.flush()
        if isinstance(event, Result):
            ResultLedger.written = True


def timestamp() -> str:
    """UTC, ISO 8601 with milliseconds: `2026-12-05T11:16:45.123Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CiTextWriter:
    """`qac ci` in text mode: the verdict and where the artifacts are."""

    def __init__(self, out: TextIO, out_dir: Path, progress: Writer | None = None) -> None:
        self.out = out
        self.out_dir = out_dir
        self.progress = progress

    def write(self, event: Event) -> None:
        if self.progress is not None:
            self.progress.write(event)
        if isinstance(event, Result):
            verdict = event.extra.get("verdict", event.status)
            lines = [
                f"{verdict} (status {event.status})",
                f"report: {self.out_dir / 'report.json'}",
            ]
            if event.session_id:
                lines.append(f"patch: {self.out_dir / 'fix.patch'}")
                lines.append(f"session: {self.out_dir / 'session.jsonl'} ({event.session_id})")
            commit = event.extra.get("commit")
            if commit:
                lines.append(f"committed {commit['commit'][:12]} on branch {commit['branch']}")
            self.out.write(visible("\n".join(lines)) + "\n")
            self.out.flush()

    def close(self) -> None:
        close_writer(self.progress)


class TextWriter:
    """The final answer on stdout; progress goes to an optional renderer (a terminal's stderr)."""

    def __init__(self, out: TextIO, progress: Writer | None = None) -> None:
        self.out = out
        self.progress = progress

    def write(self, event: Event) -> None:
        if self.progress is not None:
            self.progress.write(event)
        shown = self.progress is not None and self.out.isatty()  # the progress streamed it
        failed = isinstance(event, Result) and event.status == "error"  # said on stderr
        if isinstance(event, Result) and event.result and not shown and not failed:
            self.out.write(visible(event.result.rstrip("\n")) + "\n")
            self.out.flush()

    def close(self) -> None:
        close_writer(self.progress)


class RetryNotices:
    """A line on stderr while a slow retry waits, for runs nobody watches in a terminal (CI
    logs, scripts): otherwise a stalled server looks like a hung qac."""

    def __init__(self, inner: Writer, err: TextIO) -> None:
        self.inner = inner
        self.err = err

    def write(self, event: Event) -> None:
        self.inner.write(event)
        if isinstance(event, ErrorEvent) and event.retrying and event.slow:
            self.err.write(f"qac: {visible(event.message)}\n")
            self.err.flush()
