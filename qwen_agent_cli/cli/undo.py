"""`qac undo [SESSION]`: put the working tree back as it was before a session's last `qac run`,
and tell the session so (checkpoints.py keeps the runs and does the restoring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qwen_agent_cli.cli.app import (
    app,
    open_store,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    DirOpt,
    FormatOpt,
    StoreOpt,
)
from qwen_agent_cli.errors import StoreError

if TYPE_CHECKING:
    from qwen_agent_cli.store import SessionStore

SHOWN_NAMES = 5


@app.command()
def undo(
    session: Annotated[
        str | None,
        typer.Argument(
            metavar="SESSION",
            help="Session id or a unique prefix (default: the latest for this directory).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Undo even when the files changed since the run ended (or it never recorded "
            "its end); what is replaced is kept under refs/qac/undone/.",
        ),
    ] = False,
    output_format: FormatOpt = None,
    store: StoreOpt = None,
    directory: DirOpt = None,
) -> None:
    """Restore the working tree from before a session's last run; again for the run before."""
    from qwen_agent_cli import checkpoints
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.repository import Repository

    workdir = workdir_of(directory)
    settings = settings_for(workdir, store=store, output_format=output_format)
    repository = Repository.find(workdir)
    if repository is None:
        raise checkpoints.UndoError(
            f"cannot undo in {workdir}: it is not in a git repository, and `qac run` keeps its "
            "checkpoints only in one"
        )
    session_store = open_store(settings)
    try:
        info = session_store.get(session) if session else session_store.latest(str(workdir))
        if info is None:
            raise StoreError(
                f"no session for {workdir} to undo; name one with `qac undo ID` "
                "(see `qac sessions list`)"
            )
        within = _within(repository.root, Path(info.workdir).resolve(), info.id)
        # A live qac writing this session (and its files) is refused here, before any change.
        session_store.acquire(info.id)
        undone = checkpoints.undo_last_run(repository, info.id, within=within, force=force)
        if undone.restored:
            _tell(session_store, info.id, checkpoints.undo_note("qac undo", "run", undone.restored))
    finally:
        session_store.close()
    if settings.output_format in ("json", "stream-json"):
        record = {
            "type": "undo",
            "session_id": info.id,
            "run": undone.run.number,
            "files_restored": undone.restored,
            "kept_at": undone.kept_at,
        }
        show(json.dumps(record))
        return
    count = len(undone.restored)
    names = f" ({checkpoints.named(undone.restored, SHOWN_NAMES)})" if count else ""
    show(
        f"restored {count} file{'s' * (count != 1)} to before run {undone.run.number} of "
        f"session {info.id}{names}; what was replaced is kept at {undone.kept_at}"
    )


def _within(root: Path, workdir: Path, session_id: str) -> str:
    """The session's directory relative to the repository root: undo touches nothing else."""
    from qwen_agent_cli.checkpoints import UndoError

    try:
        relative = workdir.relative_to(root)
    except ValueError:
        raise UndoError(
            f"session {session_id} ran in {workdir}, outside the repository at {root}; "
            f"run `qac undo -C {workdir}`"
        ) from None
    return "" if relative == Path() else relative.as_posix()


def _tell(store: SessionStore, session_id: str, note: str) -> None:
    """Add the note as the session's next user message, after answering any tool call a killed
    run left open, as a resume would (a tool result may only follow its call)."""
    from qwen_agent_cli.compaction import active
    from qwen_agent_cli.history import unanswered_calls
    from qwen_agent_cli.text import encodable_message
    from qwen_agent_cli.types import Message

    history = active(store.messages(session_id))
    for message in [*unanswered_calls(history), Message(role="user", content=note)]:
        store.append_message(session_id, encodable_message(message))
