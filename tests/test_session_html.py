"""`qac sessions show ID --html FILE` and the CI job's session.html: one self-contained page,
complete (turns, thinking, calls, diffs, outputs, usage) and inert (every string from the model,
a tool or the repository is text, never markup or a terminal sequence). The page in a real
browser: test_session_html_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qwen_agent_cli.html_text import CSP
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, server_args
from tests.session_pages import COMMAND, HOSTILE, MARKUP, SHOWN, make_session
from tests.test_ci import DONE, FIX, VERIFY

TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "dl", "dt", "dd",
    "main", "section", "span", "div", "details", "summary", "pre", "code", "p", "img", "footer",
}  # fmt: skip
"""Every element the renderer writes; any other would have come from a string."""
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Page(HTMLParser):
    """The page as a browser's parser reads it: its elements, with attributes and the text
    inside each element of interest."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.texts: dict[str, list[str]] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        classes = dict(attrs).get("class") or ""
        if tag not in ("meta", "img"):
            self.open.append(f"{tag}.{classes}" if classes else tag)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop().split(".")[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for name in self.open:
            self.texts.setdefault(name, []).append(data)

    def count(self, tag: str, css: str) -> int:
        return sum(1 for t, a in self.elements if t == tag and a.get("class") == css)

    def text(self, name: str) -> str:
        return "".join(self.texts.get(name, []))


def write_page(qac, session_id: str, target: Path) -> Page:
    out = qac("sessions", "show", session_id, "--html", str(target))
    assert (out.code, out.stderr) == (0, "")
    assert out.stdout == f"wrote {target}\n"
    return Page(target.read_text(encoding="utf-8"))


def test_the_page_holds_the_whole_session_and_every_hostile_string_only_as_text(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    result = make_session(qac, model_server, repo, tmp_path)
    target = tmp_path / "session.html"
    page = write_page(qac, str(result["session_id"]), target)
    raw = target.read_text(encoding="utf-8")

    assert {tag for tag, _ in page.elements} <= TAGS
    assert not [(t, a) for t, a in page.elements for name in a if name.startswith("on")]
    images = [a for t, a in page.elements if t == "img"]
    assert len(images) == 1
    assert str(images[0]["src"]).startswith("data:image/png;base64,iVBOR")
    assert ("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}) in page.elements
    assert CONTROL.search(raw) is None
    assert "evil.example" not in raw
    assert "owned-title" not in raw

    assert page.count("section", "turn user") == 1
    assert page.count("section", "turn assistant") == 3
    assert page.count("details", "thinking") == 3
    assert not [a for t, a in page.elements if t == "details" and "open" in a]
    assert page.count("details", "output") == 2
    assert page.count("details", "output error") == 1  # read_file of the hostile name
    assert page.count("p", "usage") == 3
    assert page.text("div.content") == "fix the average " + SHOWN + "Editing " + SHOWN + (
        "Fixed average. " + SHOWN
    )
    thinking = page.text("details.thinking")
    assert "average floors the result " + SHOWN + "\nuse true division" in thinking
    assert "Run a command " + SHOWN in thinking
    assert COMMAND in page.text("dl.arguments")  # a real newline, not "\n"
    assert "second " + MARKUP in page.text("details.output")
    assert SHOWN + " does not exist" in page.text("details.output error")
    assert page.text("span.del") == "-sum(values) // len"
    assert page.text("span.add") == "+sum(values) / len"
    assert page.text("h1") == ("fix the average " + SHOWN)[:80]  # the stored title
    header = page.text("dl.session")
    assert str(result["session_id"]) in header
    assert f"${result['cost_usd']:.4f}" in header
    usage = result["usage"]
    assert (
        f"prompt {usage['prompt_tokens']:,} · cached {usage['cached_tokens']:,} · "
        f"completion {usage['completion_tokens']:,} · reasoning {usage['reasoning_tokens']:,}"
    ) in header


def test_html_dash_writes_the_page_to_stdout(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(thinking="Nothing to do.", text="Hello."))
    run = qac("run", "hi", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    session_id = str(run.json()["session_id"])

    out = qac("sessions", "show", session_id[:12], "--html", "-")

    assert out.code == 0, out.stderr
    assert out.stdout.startswith("<!DOCTYPE html>\n")
    assert out.stdout.endswith("</html>\n")
    page = Page(out.stdout)
    assert page.text("dd.session") == session_id
    assert page.text("details.thinking") == "thinking (3 words)Nothing to do."


def test_a_directory_an_unwritable_place_and_an_unknown_session_are_refused(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(turn(text="Hello."))
    run = qac("run", "hi", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    session_id = str(run.json()["session_id"])

    folder = qac("sessions", "show", session_id, "--html", str(tmp_path))
    assert (folder.code, folder.stdout) == (2, "")
    assert folder.stderr == (
        f"qac: {tmp_path} is a directory; give --html the path of a file to write\n"
    )
    nowhere = tmp_path / "missing" / "page.html"
    missing = qac("sessions", "show", session_id, "--html", str(nowhere))
    assert missing.code == 2
    assert missing.stderr == f"qac: cannot write {nowhere}: No such file or directory\n"
    unknown = qac("sessions", "show", "no-such-session", "--html", str(tmp_path / "x.html"))
    assert unknown.code == 2
    assert unknown.stderr.startswith("qac: no session 'no-such-session' in ")
    assert not (tmp_path / "x.html").exists()


def test_an_existing_file_is_replaced_whole_and_nothing_is_left_beside_it(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(turn(text="Hello."))
    run = qac("run", "hi", *server_args(model_server), "-C", str(repo), "--output-format", "json")
    pages = tmp_path / "pages"
    pages.mkdir()
    target = pages / "page.html"
    target.write_text("old page")

    write_page(qac, str(run.json()["session_id"]), target)

    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in pages.iterdir()] == ["page.html"]
    assert target.stat().st_mode & 0o077 == 0  # private, like a session export


def test_anthropic_thinking_blocks_show_one_by_one_and_redacted_ones_as_redacted(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-anthropic-test")
    model_server.script(
        turn(
            thinking="Read calc.py " + HOSTILE,
            signature="sig-one",
            redacted=["OPAQUE-REDACTED-DATA=="],
            tool_call=("read_file", {"path": "calc.py"}),
        ),
        turn(thinking="Done.", signature="sig-two", text="It floors."),
    )
    args = ["--base-url", model_server.anthropic_url, "--model", "qwen3.6-plus"]
    run = qac(
        "run", "why?", "--provider", "dashscope-anthropic", *args, "-C", str(repo),
        "--output-format", "json",
    )  # fmt: skip
    assert run.code == 0, run.stderr

    target = tmp_path / "page.html"
    page = write_page(qac, str(run.json()["session_id"]), target)

    assert page.count("details", "thinking") == 2
    assert page.count("details", "thinking redacted") == 1
    assert page.text("details.thinking redacted") == "thinking (redacted)[redacted]"
    assert page.text("details.thinking") == "thinking (5 words)Read calc.py " + SHOWN + (
        "thinking (1 word)Done."
    )
    assert "OPAQUE-REDACTED-DATA" not in target.read_text()
    assert "sig-one" not in target.read_text()


def test_an_imported_session_is_priced_from_the_catalogue_and_its_tool_output_made_inert(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    """An export edited by hand (or by anyone): stored cost 0, terminal sequences and markup in
    a tool's output, a hostile title."""
    result = make_session(qac, model_server, repo, tmp_path)
    exported = qac("sessions", "export", str(result["session_id"]))
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    records[0]["session"]["id"] = "imported-1"
    records[0]["session"]["title"] = "title " + HOSTILE
    for record in records[1:]:
        if record["type"] != "message":
            continue  # the image, stored once by hash
        message = record["message"]
        if message["usage"]:
            message["usage"]["cost_usd"] = 0.0
        if message["role"] == "tool":
            message["content"] = "\x1b[1;31mFAILED\x1b[0m " + HOSTILE + "\nsecond line"
    source = tmp_path / "edited.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert qac("sessions", "import", str(source)).code == 0

    target = tmp_path / "page.html"
    page = write_page(qac, "imported-1", target)

    raw = target.read_text(encoding="utf-8")
    assert CONTROL.search(raw) is None
    assert {tag for tag, _ in page.elements} <= TAGS
    assert page.text("h1") == "title " + SHOWN
    assert page.text("details.output").count("FAILED " + SHOWN + "\nsecond line") == 2
    assert "(2 lines)" in page.text("details.output")
    assert f"${result['cost_usd']:.4f}" in page.text("dl.session")
    assert result["cost_usd"] > 0


def test_ci_leaves_session_html_beside_session_jsonl(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(FIX, VERIFY, DONE)
    out = qac("ci", "--test-cmd", TEST_CMD, *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr

    artifacts = repo / ".qac-out"
    assert {"session.jsonl", "session.html"} <= {p.name for p in artifacts.iterdir()}
    report = json.loads((artifacts / "report.json").read_text())
    page = Page((artifacts / "session.html").read_text(encoding="utf-8"))
    assert page.text("dd.session") == report["session_id"]
    assert page.text("dd.status") == "fixed"
    assert page.count("section", "turn assistant") == 3
    assert page.text("span.add") == "+sum(values) / len"
    assert "1 passed" in page.text("details.output") or "OK" in page.text("details.output")


def test_a_written_file_shows_as_all_new_lines_and_broken_arguments_as_written(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    model_server.script(
        turn(
            tool_calls=[
                ("write_file", {"path": "notes.md", "content": "# Notes\n\n<b>bold</b>\n"}),
                ("read_file", '{"path": "calc.py"'),
            ]
        ),
        turn(text="Written."),
    )
    run = qac(
        "run", "notes", *server_args(model_server), "-C", str(repo), "--output-format", "json"
    )
    assert run.code == 0, run.stderr

    page = write_page(qac, str(run.json()["session_id"]), tmp_path / "page.html")

    assert page.text("span.add") == "+# Notes++<b>bold</b>"
    assert page.text("span.del") == ""
    assert page.text("span.meta") == "--- a/notes.md+++ b/notes.md"
    assert "diff (the whole new content):" in page.text("p.note")
    assert "not a JSON object" in page.text("p.note")
    assert page.text("pre.arguments raw") == '{"path": "calc.py"'
    assert page.count("details", "output error") == 1
