"""The session store: one SQLite file in WAL mode, append-only messages, numbered migrations,
lossless JSON Lines export and import.

Owns all SQL; callers see only our dataclasses.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from qwen_agent_cli import jsonl
from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.types import Message, SessionInfo

EXPORT_FORMAT = "qac-session"
EXPORT_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
PRIVATE_MODE = 0o600


def _migration_1(db: sqlite3.Connection) -> None:
    _run_statements(
        db,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            repository TEXT NOT NULL,
            workdir TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            system_prompt TEXT NOT NULL,
            context TEXT NOT NULL,
            tools TEXT NOT NULL,
            settings TEXT NOT NULL,
            title TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (session_id, seq)
        );
        CREATE INDEX sessions_by_workdir ON sessions(workdir, updated_at);
        """,
    )


def _run_statements(db: sqlite3.Connection, script: str) -> None:
    """Each statement on its own: executescript would commit the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migration_1,)


class SessionStore:
    """Sessions and their messages. Every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Transcripts hold file contents and command output: the folder is 0700 and the
        # database 0600 from creation (SQLite gives its WAL and SHM files the database's mode).
        umask = os.umask(0o077)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE))
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise StoreError(f"cannot open the session store {path}: {exc}") from exc
        except OSError as exc:
            self._close_quietly()
            raise StoreError(f"cannot create the session store {path}: {exc}") from exc
        except BaseException:
            self._close_quietly()
            raise
        finally:
            os.umask(umask)

    def close(self) -> None:
        self._db.close()

    def _close_quietly(self) -> None:
        """A store that failed to open leaves no connection behind (Python 3.13 warns of one)."""
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _migrate(self) -> None:
        version = self._version()
        if version == len(MIGRATIONS):
            return
        with self._transaction():
            # Read again under the write lock: another process may have migrated meanwhile.
            for number in range(self._version(), len(MIGRATIONS)):
                MIGRATIONS[number](self._db)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    def _version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the session store {self.path} was written by a newer qac (schema {version}); "
                "upgrade qac"
            )
        return version

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    def create(self, info: SessionInfo) -> SessionInfo:
        """Store a new session header; fills in id and timestamps when they are empty."""
        now = time.time()
        info = replace(
            info,
            id=info.id or new_session_id(),
            created_at=info.created_at or now,
            updated_at=info.updated_at or now,
        )
        with self._transaction():
            self._insert_session(info)
        return info

    def _insert_session(self, info: SessionInfo) -> None:
        self._db.execute(
            "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                info.id,
                info.repository,
                info.workdir,
                info.provider,
                info.model,
                info.system_prompt,
                info.context,
                json.dumps(list(info.tools)),
                json.dumps(info.settings),
                info.title,
                info.status,
                info.created_at,
                info.updated_at,
            ),
        )

    def append_message(self, session_id: str, message: Message) -> int:
        """Commit one complete message at the end of the session; returns its sequence number."""
        with self._transaction():
            return self._append(session_id, message, time.time())

    def _append(self, session_id: str, message: Message, created_at: float) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()
        seq = int(row[0])
        self._db.execute(
            "INSERT INTO messages VALUES (?,?,?,?,?)",
            (session_id, seq, message.role, json.dumps(message.to_dict()), created_at),
        )
        title = (message.content or "").strip().splitlines()[0][:80] if message.content else ""
        self._db.execute(
            "UPDATE sessions SET updated_at = ?,"
            " title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
            (created_at, message.role, title, session_id),
        )
        return seq

    def set_status(self, session_id: str, status: str) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?",
                (status, time.time(), session_id),
            )

    def get(self, session_id: str) -> SessionInfo:
        """A session by id, or by a unique prefix of it."""
        rows = self._db.execute(
            "SELECT * FROM sessions WHERE id = ? OR id LIKE ? ESCAPE '\\'"
            " ORDER BY id = ? DESC LIMIT 2",
            (session_id, _like_prefix(session_id), session_id),
        ).fetchall()
        if not rows:
            raise StoreError(f"no session {session_id!r} in {self.path}; see `qac sessions list`")
        if len(rows) > 1 and rows[0][0] != session_id:
            raise StoreError(f"session id {session_id!r} is ambiguous; give more characters")
        return _session(rows[0])

    def latest(self, workdir: str) -> SessionInfo | None:
        """The most recently updated session for a directory (for --continue)."""
        row = self._db.execute(
            "SELECT * FROM sessions WHERE workdir = ? ORDER BY updated_at DESC LIMIT 1", (workdir,)
        ).fetchone()
        return _session(row) if row else None

    def list(self, limit: int = 50) -> builtins.list[SessionInfo]:
        rows = self._db.execute(
            "SELECT * FROM sessions ORDER BY updated_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_session(r) for r in rows]

    def messages(self, session_id: str) -> builtins.list[Message]:
        return [m for _, m, _ in self._rows(session_id)]

    def count_messages(self, session_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0])

    def _rows(self, session_id: str) -> Iterator[tuple[int, Message, float]]:
        cursor = self._db.execute(
            "SELECT seq, body, created_at FROM messages WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        for seq, body, created_at in cursor:
            yield int(seq), Message.from_dict(json.loads(body)), float(created_at)

    def remove(self, session_id: str) -> None:
        info = self.get(session_id)
        with self._transaction():
            self._db.execute("DELETE FROM messages WHERE session_id = ?", (info.id,))
            self._db.execute("DELETE FROM sessions WHERE id = ?", (info.id,))

    def export_jsonl(self, session_id: str) -> Iterator[str]:
        """One header line, then one line per message: everything needed to resume elsewhere."""
        info = self.get(session_id)
        header = {"type": "session", "format": EXPORT_FORMAT, "version": EXPORT_VERSION}
        header["session"] = asdict(info)
        yield jsonl.dumps(header)
        for seq, message, created_at in self._rows(info.id):
            record = {"type": "message", "seq": seq, "created_at": created_at}
            record["message"] = message.to_dict()
            yield jsonl.dumps(record)

    def import_jsonl(self, lines: Iterable[str], source: str = "input") -> SessionInfo:
        """Recreate an exported session exactly, under its original id."""
        header: SessionInfo | None = None
        records: list[tuple[Message, float]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if number == 1 or header is None:
                    header = _header(data)
                    continue
                if data.get("type") != "message":
                    raise ValueError(f"unexpected record type {data.get('type')!r}")
                records.append((Message.from_dict(data["message"]), float(data["created_at"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(
                    f"{source} line {number} is not a qac session record: {exc}"
                ) from exc
        if header is None:
            raise StoreError(f"{source} is empty: nothing to import")
        with self._transaction():
            if self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (header.id,)).fetchone():
                raise StoreError(
                    f"session {header.id} is already in the store; "
                    f"`qac sessions rm {header.id}` first to replace it"
                )
            self._insert_session(header)
            for message, created_at in records:
                self._append(header.id, message, created_at)
            self._db.execute(
                "UPDATE sessions SET updated_at = ?, title = ? WHERE id = ?",
                (header.updated_at, header.title, header.id),
            )
        return header

    def check_writable(self) -> None:
        """Take and release the write lock: raises StoreError when the store is read-only."""
        with self._transaction():
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS _probe(x)")

    def integrity_ok(self) -> bool:
        row = self._db.execute("PRAGMA integrity_check").fetchone()
        return bool(row and row[0] == "ok")


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, so two processes writing one store serialize cleanly."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write the session store {self._path}: {exc}") from exc

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                self._rollback()
                raise StoreError(f"cannot write the session store {self._path}: {error}") from error
            return
        self._rollback()
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(f"cannot write the session store {self._path}: {exc}") from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def new_session_id() -> str:
    """Sortable by creation time, short enough to type a prefix of."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _session(row: Any) -> SessionInfo:
    (id_, repo, workdir, provider, model, system, context, tools, settings, title, status) = row[
        :11
    ]
    return SessionInfo(
        id=id_,
        repository=repo,
        workdir=workdir,
        provider=provider,
        model=model,
        system_prompt=system,
        context=context,
        tools=tuple(json.loads(tools)),
        settings=json.loads(settings),
        title=title,
        status=status,
        created_at=float(row[11]),
        updated_at=float(row[12]),
    )


def _header(data: dict[str, Any]) -> SessionInfo:
    if data.get("type") != "session" or data.get("format") != EXPORT_FORMAT:
        raise ValueError("the first line must be a qac session header")
    if int(data.get("version", 0)) > EXPORT_VERSION:
        raise ValueError(f"export version {data['version']} is newer than this qac understands")
    fields = dict(data["session"])
    fields["tools"] = tuple(fields.get("tools") or ())
    return SessionInfo(**fields)
