"""A hostile wire and odd text (issue 12): servers that stall or never stop, replies with broken
arguments or repeated ids, file names and prompts that are not UTF-8. Nothing of it may end a
session for good, hang silently, or grow without bound."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAC_RETRIES", "2")
    monkeypatch.setenv("QAC_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("QAC_RETRY_MAX_DELAY", "0.05")


def run_json(qac: Any, server: ScriptedServer, repo: Path, *extra: str) -> Any:
    return qac(
        "run", "x", *server_args(server), "-C", str(repo), "--output-format", "stream-json", *extra
    )


def wire_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for m in body["messages"] for c in m.get("tool_calls") or []]


def test_a_stream_that_goes_silent_is_retried_with_a_line_on_stderr(
    qac: Any, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QAC_STREAM_IDLE_TIMEOUT", "1")
    model_server.script(turn(text="half an answer", pieces=6, stall_after=3), turn(text="fine"))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    assert out.lines()[-1]["result"] == "fine"
    assert out.stderr.count("\n") == 1, out.stderr
    assert "sent nothing for 1s; retrying in" in out.stderr


def test_a_server_that_always_stalls_ends_the_run_with_one_clear_error(
    qac: Any, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QAC_STREAM_IDLE_TIMEOUT", "1")
    monkeypatch.setenv("QAC_RETRIES", "1")
    model_server.script(*[turn(text="never done", stall_after=1)] * 2)
    out = run_json(qac, model_server, repo)
    assert out.code == 3
    assert out.lines()[-1]["status"] == "error"
    last = out.stderr.splitlines()[-1]
    assert last.startswith("qac: model API error: model API failed after 2 attempts"), last
    assert "sent nothing for 1s" in last


def test_an_endless_stream_is_cut_at_the_cap_and_not_retried(
    qac: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QAC_MAX_TOKENS", "64")
    with ScriptedServer([turn(endless=True), turn(text="a retry")], check_prefix=False) as server:
        out = run_json(qac, server, repo)
        played = server.played
        body = server.requests[0]
    assert out.code == 0, out.stderr
    assert played == 1
    assert body["max_tokens"] == 64
    errors = [e for e in out.lines() if e["type"] == "error"]
    assert errors
    assert "it was cut there" in errors[0]["message"]
    result = out.lines()[-1]
    assert result["status"] == "done"
    assert 0 < len(result["result"]) <= 64 * 16 + 1000


def test_max_tokens_is_sent_per_profile_and_can_be_turned_off(
    qac: Any, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    model_server.script(turn(text="one"), turn(text="two"), turn(text="three"))
    assert run_json(qac, model_server, repo).code == 0
    monkeypatch.setenv("QAC_MAX_TOKENS", "0")
    assert run_json(qac, model_server, repo).code == 0
    monkeypatch.delenv("QAC_MAX_TOKENS")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert run_json(qac, model_server, repo, "--provider", "openai").code == 0
    default, unlimited, openai = model_server.requests
    assert default["max_tokens"] == 32768
    assert "max_tokens" not in unlimited
    assert "max_completion_tokens" not in unlimited
    assert openai["max_completion_tokens"] == 32768
    assert "max_tokens" not in openai


def test_broken_arguments_go_back_as_a_json_object_now_and_on_resume(
    qac: Any, model_server: ScriptedServer, repo: Path
):
    broken = ['{"command": "echo hi"', "[1, 2]", ""]
    model_server.script(*(turn(tool_call=("shell", raw)) for raw in broken), turn(text="done"))
    first = run_json(qac, model_server, repo)
    assert first.code == 0, first.stderr
    model_server.script(turn(text="resumed"))
    resumed = run_json(qac, model_server, repo, "--resume", first.lines()[0]["session_id"])
    assert resumed.code == 0, resumed.stderr
    for body in model_server.requests[1:]:
        for call in wire_calls(body):
            assert isinstance(json.loads(call["function"]["arguments"]), dict), call
    sent = [json.loads(c["function"]["arguments"]) for c in wire_calls(model_server.requests[-1])]
    assert sent == [{"invalid_arguments": broken[0]}, {"invalid_arguments": broken[1]}, {}]
    shown = [e["arguments"] for e in first.lines() if e["type"] == "tool_call"]
    assert shown == broken  # the raw text stays what the model wrote, on screen and in the store


def test_repeated_tool_call_ids_in_one_reply_are_made_unique(
    qac: Any, model_server: ScriptedServer, repo: Path
):
    calls: list[tuple[str, dict[str, Any] | str]] = [
        ("shell", {"command": "echo first"}),
        ("shell", {"command": "echo second"}),
    ]
    model_server.script(turn(tool_calls=calls, same_id="call_dup"), turn(text="done"))
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    messages = model_server.requests[1]["messages"]
    ids = [c["id"] for c in wire_calls(model_server.requests[1])]
    assert len(set(ids)) == 2
    assert ids[0] == "call_dup"
    answers = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert "first" in answers[ids[0]]
    assert "second" in answers[ids[1]]


def test_a_file_name_that_is_not_utf8_is_shown_escaped_and_accepted_back(
    qac: Any, model_server: ScriptedServer, repo: Path
):
    Path(os.fsdecode(os.fsencode(repo) + b"/caf\xe9.txt")).write_bytes(b"bonjour\n")
    model_server.script(
        turn(tool_call=("list_files", {})),
        turn(tool_call=("read_file", {"path": "caf\\xe9.txt"})),
        turn(text="read it"),
    )
    out = run_json(qac, model_server, repo)
    assert out.code == 0, out.stderr
    listing, reading = (e["output"] for e in out.lines() if e["type"] == "tool_result")
    assert "caf\\xe9.txt" in listing
    assert "bonjour" in reading
    model_server.script(turn(text="again"))
    again = run_json(qac, model_server, repo, "--continue")
    assert again.code == 0, again.stderr


def test_a_prompt_on_stdin_with_bytes_that_are_not_utf8_runs(
    model_server: ScriptedServer, repo: Path
):
    model_server.script(turn(text="ok"))
    where = ["-C", str(repo), "--output-format", "json"]
    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent_cli", "run", "-", *server_args(model_server), *where],
        input=b"fix the caf\xe9 bug\n",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "done"
    assert "fix the caf\ufffd bug\n" in [m["content"] for m in model_server.requests[0]["messages"]]


def test_a_full_disk_mid_run_still_prints_the_result_and_loses_nothing(
    model_server: ScriptedServer, repo: Path, clean_environ: Path
):
    """A file-size limit stands in for a full disk: SQLite gets EFBIG while storing a big reply."""
    model_server.script(turn(text="first"))
    where = ["-C", str(repo), "--output-format", "stream-json", *server_args(model_server)]
    first = subprocess.run(
        [sys.executable, "-m", "qwen_agent_cli", "run", "start", *where],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    store = clean_environ / "sessions.db"
    room = max(p.stat().st_size for p in store.parent.iterdir()) + 64 * 1024
    model_server.script(turn(thinking="a long thought " * 40_000, text="never stored"))

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent_cli", "run", "more", "--continue", *where],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit_file_size,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("qac: cannot write the session store"), proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["type"] == "result"
    assert result["status"] == "error"
    check = subprocess.run(
        [sys.executable, "-m", "qwen_agent_cli", "sessions", "show", result["session_id"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "first" in check.stdout
    assert "more" in check.stdout


def test_an_imported_session_with_text_utf8_cannot_carry_is_repaired(
    qac: Any, repo: Path, tmp_path: Path
):
    """An export is JSON, which can spell a lone surrogate; SQLite cannot store one."""
    with ScriptedServer([turn(text="first"), turn(text="second")], check_prefix=False) as server:
        session_id = run_json(qac, server, repo).lines()[0]["session_id"]
        exported = qac("sessions", "export", session_id)
        assert exported.code == 0, exported.stderr
        head, *records = exported.stdout.splitlines()
        broken = json.loads(records[0])
        broken["message"]["content"] = "name: caf\udce9 \ud800"
        foreign = json.loads(head)
        foreign["session"]["id"] = "imported-1"
        file = tmp_path / "foreign.jsonl"
        file.write_text("\n".join([json.dumps(foreign), json.dumps(broken), *records[1:]]) + "\n")
        imported = qac("sessions", "import", str(file))
        assert imported.code == 0, imported.stderr
        resumed = run_json(qac, server, repo, "--resume", "imported-1")
        assert resumed.code == 0, resumed.stderr
        contents = [m.get("content") for m in server.requests[-1]["messages"]]
    assert "name: caf\\xe9 \ufffd" in contents
