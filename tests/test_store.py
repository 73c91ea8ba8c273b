"""The session store: WAL, append-only, migrations, lossless export and import."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from qwen_agent_cli.errors import StoreError
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.types import Message, SessionInfo, ToolCall, Usage


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
        assert db.execute("PRAGMA user_version").fetchone() == (1,)


def test_export_then_import_round_trips_to_equal_objects(tmp_path: Path):
    source = SessionStore(tmp_path / "a.db")
    info = sample_session(source)
    lines = list(source.export_jsonl(info.id))
    target = SessionStore(tmp_path / "b.db")
    imported = target.import_jsonl(lines)
    assert imported == info
    assert target.get(info.id) == info
    assert target.messages(info.id) == source.messages(info.id)
    assert list(target.export_jsonl(info.id)) == lines


def test_import_refuses_a_duplicate_and_garbage_without_writing(tmp_path: Path):
    store = SessionStore(tmp_path / "a.db")
    info = sample_session(store)
    lines = list(store.export_jsonl(info.id))
    with pytest.raises(StoreError, match="already in the store"):
        store.import_jsonl(lines)
    with pytest.raises(StoreError, match="line 1 is not a qac session record"):
        store.import_jsonl(["not json"])
    with pytest.raises(StoreError, match="line 3"):
        store.import_jsonl([lines[0].replace(info.id, "other"), lines[1], "{truncated"])
    assert [s.id for s in store.list()] == [info.id]


def test_a_session_is_found_by_unique_prefix(tmp_path: Path):
    store = SessionStore(tmp_path / "a.db")
    info = sample_session(store)
    assert store.get(info.id[:17]).id == info.id
    with pytest.raises(StoreError, match="no session"):
        store.get("zzz")


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "bad.db"
    path.write_text("this is not a database, " * 100)
    with pytest.raises(StoreError, match="cannot open the session store"):
        SessionStore(path)


def test_two_writers_at_once_do_not_corrupt_the_store(tmp_path: Path):
    path = tmp_path / "shared.db"
    first = SessionStore(path)
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


def test_many_processes_opening_a_new_store_at_once(tmp_path: Path):
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from qwen_agent_cli.store import SessionStore;"
        " SessionStore(Path(sys.argv[1])).close()"
    )
    for attempt in range(5):
        path = tmp_path / f"race-{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(path)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        errors = [p.communicate(timeout=30)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            assert db.execute("PRAGMA user_version").fetchone() == (1,)
