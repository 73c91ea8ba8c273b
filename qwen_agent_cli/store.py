"""The session store: one SQLite file in WAL mode, append-only messages, numbered migrations,
a lease per session so one process writes it, and lossless export and import (export.py).

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
from collections.abc import Iterable, Iterator
from dataclasses import astuple, fields, replace
from pathlib import Path

from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.export import export_lines, parse_export
from qwen_agent_cli.lease import Holder, Lease, in_use_message, is_stale, this_process
from qwen_agent_cli.store_schema import MIGRATIONS
from qwen_agent_cli.types import Image, Message, SessionInfo

BUSY_TIMEOUT_MS = 10_000
LOCK_RETRY_S = 0.02
PRIVATE_MODE = 0o600


class SessionStore:
    """Sessions and their messages. Every write is its own committed transaction; a session is
    written by the one process that holds its lease."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: str | None = None
        # Transcripts hold file contents and command output: the folder is 0700 and the
        # database 0600 from creation (SQLite gives its WAL and SHM files the database's mode).
        # The modes are given to mkdir and open, never by changing the umask: that is
        # process-wide, and a thread writing files (or a git started) meanwhile would take it.
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE))
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._prepare()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._close_quietly()
            verb = "create" if isinstance(exc, OSError) else "open"
            raise StoreError(f"cannot {verb} the session store {path}: {exc}") from exc
        except BaseException:
            self._close_quietly()
            raise

    def close(self) -> None:
        """Give back the lease, then the connection, whatever happens on the way."""
        try:
            # A lease left behind names a process that has exited by then: it is stale.
            with contextlib.suppress(StoreError):
                self.release()
        finally:
            self._db.close()

    def _close_quietly(self) -> None:
        """A store that failed to open leaves no connection behind (Python 3.13 warns of one)."""
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _prepare(self) -> None:
        """Switch to WAL and migrate, waiting out other processes creating the same store.
        The switch upgrades a read lock, and SQLite answers "locked" at once rather than call
        the busy handler there (two upgraders would deadlock), so that is retried here."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                code = (exc.sqlite_errorcode or 0) & 0xFF
                locked = code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not locked or time.monotonic() > deadline:
                    raise
            time.sleep(LOCK_RETRY_S)

    def _migrate(self) -> None:
        if self._version() == len(MIGRATIONS):
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            for number in range(self._version(), len(MIGRATIONS)):
                MIGRATIONS[number](self._db)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the session store {self.path} was written by a newer qac (schema {version}); "
                "upgrade qac"
            )
        return version

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, so two processes writing one store serialize cleanly."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write the session store {self.path}: {exc}") from exc

    def _rollback(self) -> None:
        """Undo a failed transaction; the error that failed it is the one worth reporting."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads fail as writes do: one line naming the store, never a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the session store {self.path}: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the session store {self.path} is damaged: {exc}") from exc

    def create(self, info: SessionInfo) -> SessionInfo:
        """Store a new session header; fills in id and timestamps when they are empty."""
        now = time.time()
        info = replace(info, id=info.id or new_session_id())
        info = replace(info, created_at=info.created_at or now, updated_at=info.updated_at or now)
        with self._transaction():
            self._insert_session(info)
        return info

    def _insert_session(self, info: SessionInfo) -> None:
        row = {field.name: getattr(info, field.name) for field in fields(info)}
        row["tools"], row["settings"] = json.dumps(list(info.tools)), json.dumps(info.settings)
        columns, values = ", ".join(row), ", ".join(f":{name}" for name in row)
        self._db.execute(f"INSERT INTO sessions ({columns}) VALUES ({values})", row)

    def acquire(self, session_id: str) -> None:
        """Take the session's lease for this process, or refuse with StoreError: a second
        writer would interleave the history. A lease whose holder is gone is taken over. One
        store writes one session: the lease it held before is given back."""
        now, me = time.time(), this_process()
        with self._transaction():
            self._refuse_if_held(session_id, now)
            self._db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?)",
                (session_id, me.pid, me.host, me.started, now, now),
            )
        if self._held not in (None, session_id):
            self.release()
        self._held = session_id

    def release(self) -> None:
        """Give back the lease this store holds, if any."""
        session_id, self._held = self._held, None
        if session_id is not None:
            with self._transaction():
                self._db.execute(
                    f"DELETE FROM leases WHERE {_MINE}", (session_id, *astuple(this_process()))
                )

    def _refuse_if_held(self, session_id: str, now: float) -> None:
        row = self._db.execute("SELECT * FROM leases WHERE session_id = ?", (session_id,))
        found = row.fetchone()
        lease = Lease(found[0], Holder(*found[1:4]), *found[4:]) if found else None
        if lease and lease.holder != this_process() and not is_stale(lease, now):
            raise StoreError(in_use_message(lease))

    def _heartbeat(self, session_id: str, now: float) -> None:
        """Refresh this process's lease, in the write that proves it alive. Without one, write
        only where no live process holds the session (tests and imports hold none)."""
        cursor = self._db.execute(
            f"UPDATE leases SET heartbeat_at = ? WHERE {_MINE}",
            (now, session_id, *astuple(this_process())),
        )
        if cursor.rowcount == 0:
            self._refuse_if_held(session_id, now)

    def append_message(self, session_id: str, message: Message) -> int:
        """Commit one complete message at the end of the session; returns its sequence number."""
        now = time.time()
        with self._transaction():
            self._heartbeat(session_id, now)
            return self._append(session_id, message, now)

    def _append(self, session_id: str, message: Message, created_at: float) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()
        seq = int(row[0])
        for image in message.images:  # each image's bytes once, whatever refers to it
            self._db.execute(
                "INSERT OR IGNORE INTO blobs VALUES (?,?,?)",
                (image.sha256, image.mime, sqlite3.Binary(image.data)),
            )
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
        with self._reading():
            rows = self._db.execute(
                "SELECT * FROM sessions WHERE id = ? OR id LIKE ? ESCAPE '\\'"
                " ORDER BY id = ? DESC LIMIT 2",
                (session_id, _like_prefix(session_id), session_id),
            ).fetchall()
            found = [_session(r) for r in rows]
        if not found:
            raise StoreError(f"no session {session_id!r} in {self.path}; see `qac sessions list`")
        if len(found) > 1 and found[0].id != session_id:
            raise StoreError(f"session id {session_id!r} is ambiguous; give more characters")
        return found[0]

    def latest(self, workdir: str) -> SessionInfo | None:
        """The most recently updated session for a directory (for --continue)."""
        with self._reading():
            row = self._db.execute(
                "SELECT * FROM sessions WHERE workdir = ? ORDER BY updated_at DESC LIMIT 1",
                (workdir,),
            ).fetchone()
            return _session(row) if row else None

    def in_workdir(self, workdir: str, limit: int = 50) -> builtins.list[tuple[SessionInfo, int]]:
        """A directory's sessions, newest first, each with its count of user turns (the
        picker's rows)."""
        with self._reading():
            rows = self._db.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id"
                " AND m.role = 'user') AS turns FROM sessions s WHERE s.workdir = ?"
                " ORDER BY s.updated_at DESC LIMIT ?",
                (workdir, limit),
            ).fetchall()
            return [(_session(row), int(row["turns"])) for row in rows]

    def list(self, limit: int = 50) -> builtins.list[SessionInfo]:
        with self._reading():
            rows = self._db.execute(
                "SELECT * FROM sessions ORDER BY updated_at DESC LIMIT ?", (limit,)
            ).fetchall()
            return [_session(r) for r in rows]

    def messages(self, session_id: str) -> builtins.list[Message]:
        return [m for _, m, _ in self._rows(session_id)]

    def count_messages(self, session_id: str) -> int:
        with self._reading():
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)
            ).fetchone()
            return int(row[0])

    def _rows(self, session_id: str) -> builtins.list[tuple[int, Message, float]]:
        with self._reading():
            rows = self._db.execute(
                "SELECT seq, body, created_at FROM messages WHERE session_id = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
            found = [
                (int(seq), Message.from_dict(json.loads(body)), float(created_at))
                for seq, body, created_at in rows
            ]
            return [(seq, self._with_images(m), at) for seq, m, at in found]

    def _with_images(self, message: Message) -> Message:
        """The message with its images' bytes read back from the blobs they were stored in."""
        if not message.images:
            return message
        images = []
        for ref in message.images:
            row = self._db.execute(
                "SELECT mime, data FROM blobs WHERE sha256 = ?", (ref.sha256,)
            ).fetchone()
            if row is None:
                raise StoreError(f"image {ref.sha256[:12]} is missing from {self.path}")
            images.append(Image(sha256=ref.sha256, mime=str(row[0]), data=bytes(row[1])))
        return replace(message, images=tuple(images))

    def remove(self, session_id: str) -> None:
        """Delete a session, unless a live process is writing it."""
        info = self.get(session_id)
        with self._transaction():
            self._refuse_if_held(info.id, time.time())
            self._db.execute("DELETE FROM leases WHERE session_id = ?", (info.id,))
            self._db.execute("DELETE FROM messages WHERE session_id = ?", (info.id,))
            self._db.execute("DELETE FROM sessions WHERE id = ?", (info.id,))
        if self._held == info.id:
            self._held = None

    def export_jsonl(self, session_id: str) -> Iterator[str]:
        """The session as JSON Lines: everything needed to resume it elsewhere."""
        info = self.get(session_id)
        return export_lines(info, self._rows(info.id))

    def import_jsonl(self, lines: Iterable[str], source: str = "input") -> SessionInfo:
        """Recreate an exported session exactly, under its original id."""
        header, records = parse_export(lines, source)
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
        with self._reading():
            row = self._db.execute("PRAGMA integrity_check").fetchone()
        return bool(row and row[0] == "ok")


_MINE = "session_id = ? AND pid = ? AND host = ? AND started = ?"


def new_session_id() -> str:
    """Sortable by creation time, short enough to type a prefix of."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _session(row: sqlite3.Row) -> SessionInfo:
    """A sessions row: its columns are SessionInfo's fields, with tools and settings as JSON."""
    values = dict(zip(row.keys(), row, strict=True))
    values.pop("turns", None)  # the picker's count, not a column
    values["tools"] = tuple(json.loads(values["tools"]))
    values["settings"] = json.loads(values["settings"])
    return SessionInfo(**values)
