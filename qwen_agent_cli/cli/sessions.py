"""`qac sessions`: list, show, export, import and remove stored sessions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from qwen_agent_cli.atomic import write_text_atomically
from qwen_agent_cli.cli.app import (
    open_store,
    sessions_app,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    StoreOpt,
)
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.images import describe
from qwen_agent_cli.types import Message, SessionInfo
from qwen_agent_cli.words import plural


@sessions_app.command("list")
def sessions_list(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Stored sessions, newest first."""
    import time

    session_store = open_store(settings_for(None, store=store))
    try:
        for info in session_store.list():
            count = session_store.count_messages(info.id)
            if as_json:
                show(
                    json.dumps(
                        {
                            "id": info.id,
                            "repository": info.repository,
                            "model": info.model,
                            "status": info.status,
                            "title": info.title,
                            "messages": count,
                            "updated_at": info.updated_at,
                        }
                    )
                )
                continue
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
            show(
                f"{info.id}  {when}  {info.status:<11} {count:>4} "
                f"{'msg ' if count == 1 else 'msgs'}  "
                f"{info.repository}  {info.title[:50]}"
            )
    finally:
        session_store.close()


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    thinking: Annotated[bool, typer.Option("--thinking", help="Include the reasoning.")] = False,
    context: Annotated[
        bool, typer.Option("--context", help="Tokens by part of the next request.")
    ] = False,
    html: Annotated[
        str | None,
        typer.Option(
            "--html", metavar="FILE", help='Write a self-contained HTML page ("-": stdout).'
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A session's messages, with tool calls and (with --thinking) the reasoning."""
    if html is not None and html != "-" and Path(html).is_dir():
        raise ConfigError(f"{html} is a directory; give --html the path of a file to write")
    settings = settings_for(None, store=store)
    session_store = open_store(settings)
    try:
        info = session_store.get(session_id)
        if html is not None:
            _write_html(html, info, session_store.messages(info.id), settings)
            return
        if context:
            _show_context(info, session_store.messages(info.id))
            return
        show(
            f"session {info.id} · {info.repository} · {info.provider}/{info.model} · {info.status}"
        )
        for number, message in enumerate(session_store.messages(info.id), start=1):
            if message.role == "compaction":
                show(
                    f"\n[{number}] ── compacted here: {message.name} starts; earlier turns "
                    "are summarized for the model (and all kept here) ──"
                )
                continue
            flags = " (interrupted)" if message.interrupted else ""
            flags += " (error)" if message.is_error else ""
            show(f"\n[{number}] {message.role}{flags}")
            if thinking and message.reasoning:
                show("  <thinking>")
                show("  " + message.reasoning.replace("\n", "\n  "))
                show("  </thinking>")
            if message.content:
                show(message.content)
            for image in message.images:
                show(f"  {describe(image)}")
            for call in message.tool_calls:
                show(f"  -> {call.name}({call.arguments})")
    finally:
        session_store.close()


def _write_html(
    target: str, info: SessionInfo, messages: list[Message], settings: Settings
) -> None:
    """The page, written whole or not at all: a new private file beside the target, renamed
    over it, so a reader never sees half a page and an interrupted write leaves the old one."""

    from qwen_agent_cli.session_html import render_session

    page = render_session(info, messages, settings.catalogue)
    if target == "-":
        sys.stdout.write(page)
        return
    path = Path(target)
    try:
        write_text_atomically(path, page)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    show(f"wrote {target}")


def _show_context(info: Any, messages: Any) -> None:
    from qwen_agent_cli.compaction import active
    from qwen_agent_cli.tokens import context_breakdown, exact

    parts = context_breakdown(info, active(messages))
    how = "Qwen3.6 tokenizer" if exact() else "estimated, 4 characters a token"
    show(f"session {info.id}: tokens of the next request by part ({how})")
    for part, count in parts.items():
        show(f"  {part:<20} {count:>9}")
    show(f"  {'total':<20} {sum(parts.values()):>9}")


@sessions_app.command("export")
def sessions_export(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    out: Annotated[str | None, typer.Option("-o", "--output", help="File to write.")] = None,
    store: StoreOpt = None,
) -> None:
    """Write a session as JSON Lines (lossless, reasoning included) to a file or stdout."""
    from qwen_agent_cli.workspace import write_private

    session_store = open_store(settings_for(None, store=store))
    try:
        lines = list(session_store.export_jsonl(session_id))
    finally:
        session_store.close()
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        write_private(Path(out), text)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc}") from exc


@sessions_app.command("import")
def sessions_import(
    file: Annotated[str, typer.Argument(help='A JSON Lines export; "-" reads stdin.')],
    store: StoreOpt = None,
) -> None:
    """Add an exported session to the store under its original id, ready to --resume."""
    from qwen_agent_cli.errors import StoreError

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        # Only "\n" ends a record: U+2028 and friends may stand raw inside JSON strings.
        lines = text.split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {file}: {exc}") from exc
    session_store = open_store(settings_for(None, store=store))
    try:
        info = session_store.import_jsonl(lines, source=file)
    finally:
        session_store.close()
    show(info.id)


@sessions_app.command("rm")
def sessions_rm(
    session_id: Annotated[str, typer.Argument(help="Session id or a unique prefix.")],
    store: StoreOpt = None,
) -> None:
    """Delete a session, its messages and its checkpoints in its repository."""
    session_store = open_store(settings_for(None, store=store))
    try:
        info = session_store.get(session_id)
        session_store.remove(info.id)
    finally:
        session_store.close()
    forgotten = _forget_checkpoints(info)
    show(f"removed {info.id}{forgotten}")


def _forget_checkpoints(info: SessionInfo) -> str:
    """The session's `refs/qac/...` go with it (they keep its trees alive in the repository);
    a repository that moved or a git failure leaves them, said, never an error."""
    from qwen_agent_cli import checkpoints
    from qwen_agent_cli.repository import GitError, Repository

    repository = Repository.find(Path(info.workdir)) if Path(info.workdir).is_dir() else None
    if repository is None:
        return ""
    try:
        count = checkpoints.forget(repository, info.id)
    except GitError as exc:
        return f" (its checkpoints in {repository.root} stay: {exc})"
    return f" and its {plural(count, 'checkpoint')}" if count else ""
