"""The session store: WAL, append-only, migrations, lossless export and import."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.store_schema import MIGRATIONS
from qwen_agent_cli.types import Message, SessionInfo, ToolCall, Usage


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Callable[[str], SessionStore]]:
    """Open stores under tmp_path by name; every one is closed when the test ends."""
    stores: list[SessionStore] = []

    def open_store(name: str) -> SessionStore:
        stores.append(SessionStore(tmp_path / name))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


def sample_session(store: SessionStore) -> SessionInfo:
    info = store.create(
        SessionInfo(
            id="",
            repository="calc",
            workdir="/work/calc",
            provider="vllm",
            model="qwen",
            system_prompt="You are qac.",
            context="Repository: calc",
            tools=({"type": "function"},),
            settings={"sandbox": "workspace-write"},
        )
    )
    store.append_message(info.id, Message(role="user", content="fix ünïcode ✓"))
    store.append_message(
        info.id,
        Message(
            role="assistant",
            content="",
            reasoning="  keep\n\twhitespace  \n",
            reasoning_field="reasoning",
            reasoning_details=({"type": "reasoning.text", "index": 0},),
            tool_calls=(ToolCall("call_1", "read_file", '{"path": "a.py"}'),),
            usage=Usage(10, 5, 3, 2, 0.001),
            model="qwen",
        ),
    )
    store.append_message(
        info.id,
        Message(role="tool", content="x", tool_call_id="call_1", name="read_file", is_error=True),
    )
    return store.get(info.id)


def test_store_uses_wal_and_a_versioned_schema(tmp_path: Path):
    store = SessionStore(tmp_path / "s.db")
    store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db, db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_export_then_import_round_trips_to_equal_objects(tmp_path: Path):
    with (
        contextlib.closing(SessionStore(tmp_path / "a.db")) as source,
        contextlib.closing(SessionStore(tmp_path / "b.db")) as target,
    ):
        info = sample_session(source)
        lines = list(source.export_jsonl(info.id))
        imported = target.import_jsonl(lines)
        assert imported == info
        assert target.get(info.id) == info
        assert target.messages(info.id) == source.messages(info.id)
        assert list(target.export_jsonl(info.id)) == lines


def test_import_refuses_a_duplicate_and_garbage_without_writing(opened):
    store = opened("a.db")
    info = sample_session(store)
    lines = list(store.export_jsonl(info.id))
    with pytest.raises(StoreError, match="already in the store"):
        store.import_jsonl(lines)
    with pytest.raises(StoreError, match="line 1 is not a qac session record"):
        store.import_jsonl(["not json"])
    with pytest.raises(StoreError, match="line 3"):
        store.import_jsonl([lines[0].replace(info.id, "other"), lines[1], "{truncated"])
    assert [s.id for s in store.list()] == [info.id]


def test_a_session_is_found_by_unique_prefix(opened):
    store = opened("a.db")
    info = sample_session(store)
    assert store.get(info.id[:17]).id == info.id
    with pytest.raises(StoreError, match="no session"):
        store.get("zzz")


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "bad.db"
    path.write_text("this is not a database, " * 100)
    with pytest.raises(StoreError, match="cannot open the session store"):
        SessionStore(path)


def test_two_writers_at_once_do_not_corrupt_the_store(opened, tmp_path: Path):
    path = tmp_path / "shared.db"
    first = opened("shared.db")
    info = sample_session(first)
    errors: list[Exception] = []

    def write(count: int) -> None:
        store = SessionStore(path)
        try:
            for n in range(count):
                store.append_message(info.id, Message(role="user", content=str(n)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert first.count_messages(info.id) == 3 + 200
    assert first.integrity_ok()


def test_sessions_cli_list_show_export_import_rm(qac, tmp_path: Path):
    store = SessionStore(tmp_path / "qac-home" / "sessions.db")
    info = sample_session(store)
    store.close()

    listed = qac("sessions", "list")
    assert listed.code == 0
    assert info.id in listed.stdout
    assert "fix ünïcode" in listed.stdout
    shown = qac("sessions", "show", info.id, "--thinking")
    assert "  keep\n  \twhitespace" in shown.stdout
    assert "read_file" in shown.stdout
    assert "keep" not in qac("sessions", "show", info.id).stdout
    export_file = tmp_path / "s.jsonl"
    assert qac("sessions", "export", info.id, "-o", str(export_file)).code == 0
    assert qac("sessions", "rm", info.id).stdout == f"removed {info.id}\n"
    assert qac("sessions", "show", info.id).code == 2
    imported = qac("sessions", "import", str(export_file))
    assert (imported.code, imported.stdout) == (0, f"{info.id}\n")
    assert qac("sessions", "export", info.id).stdout == export_file.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("hello\n")
    failed = qac("sessions", "import", str(bad))
    assert failed.code == 2
    assert "not a qac session record" in failed.stderr


def test_export_import_through_the_cli_keeps_unicode_line_separators(qac, tmp_path: Path):
    store = SessionStore(tmp_path / "qac-home" / "sessions.db")
    info = sample_session(store)
    store.append_message(
        info.id,
        Message(
            role="tool", content="a\u2028b\u2029c\x85d", tool_call_id="call_1", name="read_file"
        ),
    )
    store.close()
    export_file = tmp_path / "s.jsonl"
    assert qac("sessions", "export", info.id, "-o", str(export_file)).code == 0
    fresh = tmp_path / "fresh.db"
    imported = qac("sessions", "import", str(export_file), "--store", str(fresh))
    assert imported.code == 0, imported.stderr
    again = SessionStore(fresh)
    assert again.messages(info.id)[-1].content == "a\u2028b\u2029c\x85d"
    again.close()


CREATE_AND_LIST = (
    "import sys; from pathlib import Path; from qwen_agent_cli.store import SessionStore;"
    " sys.stdin.read(); store = SessionStore(Path(sys.argv[1])); store.list(); store.close()"
)


def test_many_processes_creating_one_store_at_once_all_wait_for_the_lock(tmp_path: Path):
    """Each process imports first and then waits on stdin, so all eight open the new store
    together when stdin closes: the WAL switch and the migration must wait, never fail."""
    for attempt in range(3):
        path = tmp_path / f"race-{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CREATE_AND_LIST, str(path)],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
        errors = []
        for proc in procs:
            assert proc.stderr is not None
            errors.append(proc.stderr.read())
            proc.stderr.close()
        assert [proc.wait(timeout=60) for proc in procs] == [0] * 8, errors
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_opening_waits_while_another_connection_writes_in_rollback_mode(tmp_path: Path):
    """The WAL switch needs the write lock, and SQLite refuses at once instead of waiting when
    another connection holds it (as a creator a step ahead does): opening must wait. The
    writer lets go once the opener has had time to try; sooner only makes the test weaker."""
    path = tmp_path / "busy.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    outcome: list[StoreError | None] = []

    def open_store() -> None:
        try:
            SessionStore(path).close()
            outcome.append(None)
        except StoreError as exc:
            outcome.append(exc)

    try:
        writer.execute("CREATE TABLE other (x)")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO other VALUES (1)")
        opener = threading.Thread(target=open_store)
        opener.start()
        opener.join(timeout=0.5)
        writer.execute("COMMIT")
        opener.join(timeout=30)
    finally:
        writer.close()
    assert outcome == [None]


def test_a_store_from_before_leases_is_migrated_and_keeps_its_sessions(tmp_path: Path):
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        MIGRATIONS[0](db)
        db.execute("PRAGMA user_version = 1")
    old = SessionStore(path)
    try:
        info = sample_session(old)
    finally:
        old.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP TABLE leases")
        db.execute("DROP TABLE blobs")
        db.execute("PRAGMA user_version = 1")

    store = SessionStore(path)
    try:
        assert store.get(info.id) == info
        assert len(store.messages(info.id)) == 3
        store.acquire(info.id)
        store.append_message(info.id, Message(role="user", content="after the upgrade"))
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
