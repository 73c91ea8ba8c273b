"""The store's schema, as numbered migrations: each runs once, in order, inside the
transaction that records the new version, so a store is never half-migrated."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _migration_1(db: sqlite3.Connection) -> None:
    script = """
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
        """
    # One statement at a time: executescript would commit the migration's transaction.
    for statement in filter(str.strip, script.split(";")):
        db.execute(statement)


def _migration_2(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE leases (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started TEXT NOT NULL,
            acquired_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL
        )
        """
    )


def _migration_3(db: sqlite3.Connection) -> None:
    """Images attached to messages, stored once per content hash (messages refer to them)."""
    db.execute(
        """
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            mime TEXT NOT NULL,
            data BLOB NOT NULL
        )
        """
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
)
