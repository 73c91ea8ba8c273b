"""Images in the prompt: attached from a file the user names, typed by their bytes, sent as each
format's image content, stored once by hash, and re-sent byte-identical on resume."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from qwen_agent_cli.images import MAX_IMAGE_BYTES, sniff
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from tests.conftest import run_process, server_args


def png(width: int = 2, height: int = 2, seed: int = 0) -> bytes:
    """A real, small PNG (so any decoder would accept it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([seed % 256, 0, 0] * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image_parts(request: dict[str, object]) -> list[object]:
    messages = request["messages"]
    assert isinstance(messages, list)
    found = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            found += [p for p in content if p.get("type") in ("image_url", "image")]
    return found


def test_types_are_told_by_their_bytes() -> None:
    assert sniff(png()) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"GIF89a....") == "image/gif"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"<svg xmlns=...>") is None
    assert sniff(b"%PDF-1.7") is None


@pytest.mark.parametrize(
    ("provider", "model"),
    [("vllm", "Qwen/Qwen3.6-27B"), ("anthropic", "Qwen/Qwen3.6-27B")],
)
def test_an_image_goes_on_the_wire_and_comes_back_identical_on_resume(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path, provider: str, model: str
) -> None:
    picture = tmp_path / "bug.png"
    picture.write_bytes(png(seed=7))
    model_server.script(turn(text="I see a red square."))
    out = qac(
        "run",
        "what is in the screenshot?",
        *server_args(model_server, provider),
        "--model",
        model,
        "--image",
        str(picture),
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    first = model_server.requests[0]
    parts = image_parts(first)
    assert len(parts) == 1
    import base64

    encoded = base64.b64encode(png(seed=7)).decode()
    if provider == "vllm":
        assert parts[0] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{encoded}"},
        }
    else:
        assert parts[0] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": encoded},
        }
    session = str(out.json()["session_id"])
    picture.unlink()  # resume needs the store, not the file
    model_server.script(turn(text="Still red."))
    again = run_process(
        "run", "and now?", "--resume", session, "-C", str(repo), "--output-format", "json"
    )
    assert again.code == 0, again.stderr
    assert image_parts(model_server.requests[1]) == parts
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    try:
        stored = store.messages(session)
    finally:
        store.close()
    assert stored[0].images[0].data == png(seed=7)
    shown = qac("sessions", "show", session)
    assert "[image " in shown.stdout
    assert "image/png" in shown.stdout


def test_the_same_image_twice_is_stored_once_and_exports_import_it(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "same.png"
    picture.write_bytes(png(seed=3))
    model_server.script(turn(text="One."), turn(text="Two."))
    args = [*server_args(model_server), "--model", "Qwen/Qwen3.6-27B", "-C", str(repo)]
    first = qac("run", "look", *args, "--image", str(picture), "--output-format", "json")
    session = str(first.json()["session_id"])
    second = qac(
        "run",
        "again",
        *args,
        "--resume",
        session,
        "--image",
        str(picture),
        "--output-format",
        "json",
    )
    assert second.code == 0, second.stderr
    import sqlite3

    db = sqlite3.connect(Path(os.environ["QAC_HOME"]) / "sessions.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM blobs").fetchone() == (1,)
    finally:
        db.close()
    exported = tmp_path / "s.jsonl"
    assert qac("sessions", "export", session, "-o", str(exported)).code == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [r["type"] for r in lines].count("image") == 1
    env = {**os.environ, "QAC_HOME": str(tmp_path / "other")}
    imported = run_process("sessions", "import", str(exported), env=env)
    assert imported.code == 0, imported.stderr
    tampered = exported.read_text().replace(
        '"type": "image", "sha256": "', '"type": "image", "sha256": "0'
    )
    (tmp_path / "bad.jsonl").write_text(tampered)
    env["QAC_HOME"] = str(tmp_path / "third")
    refused = run_process("sessions", "import", str(tmp_path / "bad.jsonl"), env=env)
    assert refused.code == 2
    assert "does not match its hash" in refused.stderr


def test_a_model_that_cannot_take_images_is_refused_before_any_request(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    picture = tmp_path / "x.png"
    picture.write_bytes(png())
    out = qac(
        "run",
        "look",
        "--provider",
        "dashscope",
        "--base-url",
        model_server.url,
        "--model",
        "qwen3.6-max-preview",
        "--image",
        str(picture),
        "-C",
        str(repo),
    )
    assert out.code == 2
    assert "qwen3.6-max-preview cannot take images" in out.stderr
    assert model_server.requests == []
    unknown = qac(
        "run",
        "look",
        *server_args(model_server),
        "--model",
        "my-text-model",
        "--image",
        str(picture),
        "-C",
        str(repo),
    )
    assert unknown.code == 2
    assert "it is not in the catalogue" in unknown.stderr


def test_bad_image_files_get_one_clear_line(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
) -> None:
    args = [*server_args(model_server), "--model", "Qwen/Qwen3.6-27B", "-C", str(repo)]
    fake = tmp_path / "fake.png"
    fake.write_text("<svg/>")
    out = qac("run", "look", *args, "--image", str(fake))
    assert out.code == 2
    assert "is not a PNG, JPEG, GIF or WebP image" in out.stderr
    huge = tmp_path / "huge.png"
    huge.write_bytes(png() + b"\x00" * MAX_IMAGE_BYTES)
    out = qac("run", "look", *args, "--image", str(huge))
    assert out.code == 2
    assert "the limit is" in out.stderr
    out = qac("run", "look", *args, "--image", str(tmp_path / "missing.png"))
    assert out.code == 2
    assert "cannot read image" in out.stderr
    assert model_server.requests == []


def test_at_paths_in_the_repl_attach_workspace_images_and_not_as_text(tmp_path: Path) -> None:
    from qwen_agent_cli.ui.prompt import attach_files, attach_images
    from qwen_agent_cli.workspace import Workspace

    root = tmp_path / "ws"
    root.mkdir()
    (root / "shot.png").write_bytes(png(seed=9))
    (root / "notes.txt").write_text("hello")
    (tmp_path / "outside.png").write_bytes(png())
    text = "see @shot.png, @notes.txt and @../outside.png"
    images, attached = attach_images(text, Workspace(root))
    assert attached == ["shot.png"]
    assert images[0].data == png(seed=9)
    message, files = attach_files(text, Workspace(root))
    assert files == ["notes.txt"]
    assert "PNG" not in message
