"""web_fetch through the real CLI: the tool is offered unless turned off, a domain the user did
not allow is refused in a run nobody watches, and an allowed one is fetched and converted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args

PAGE = b"<html><head><title>Release notes</title></head><body><h1>v2</h1><p>fixed</p></body></html>"


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/notes"
    server.shutdown()
    server.server_close()


def user_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def fetch_turns(url: str) -> list[dict[str, object]]:
    return [turn(tool_call=("web_fetch", {"url": url})), turn(text="Read it.")]


def tool_output(server: ScriptedServer) -> str:
    message = server.requests[1]["messages"][-1]
    assert message["role"] == "tool"
    return str(message["content"])


def test_an_allowed_domain_is_fetched_as_markdown(
    qac, model_server: ScriptedServer, repo: Path, site: str, clean_environ: Path
) -> None:
    user_config(
        clean_environ,
        '[tools]\nweb_fetch_private = ["127.0.0.1"]\nweb_fetch_domains = ["127.0.0.1"]\n',
    )
    model_server.script(*fetch_turns(site))
    out = qac("run", "read the notes", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    text = tool_output(model_server)
    assert text.startswith(f"Fetched {site} (200")
    assert "# Release notes" in text
    assert "v2" in text


def test_a_domain_nobody_allowed_is_refused_in_a_non_interactive_run(
    qac, model_server: ScriptedServer, repo: Path, site: str, clean_environ: Path
) -> None:
    user_config(clean_environ, '[tools]\nweb_fetch_private = ["127.0.0.1"]\n')
    model_server.script(*fetch_turns(site))
    out = qac("run", "read the notes", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    text = tool_output(model_server)
    assert text.startswith("refused: fetching from 127.0.0.1 needs the user's approval")


def test_a_private_address_is_refused_even_when_its_domain_is_allowed(
    qac, model_server: ScriptedServer, repo: Path, site: str, clean_environ: Path
) -> None:
    user_config(clean_environ, '[tools]\nweb_fetch_domains = ["127.0.0.1"]\n')
    model_server.script(*fetch_turns(site))
    out = qac("run", "read the notes", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    assert "loopback" in tool_output(model_server)


def test_turned_off_it_is_not_offered_and_a_project_cannot_turn_it_on(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    user_config(clean_environ, "[tools]\nweb_fetch = false\n")
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text(
        '[tools]\nweb_fetch = true\nweb_fetch_domains = ["*"]\nweb_fetch_private = ["0.0.0.0/0"]\n'
    )
    model_server.script(turn(text="Nothing to fetch."))
    out = qac("run", "hi", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    names = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert "web_fetch" not in names
    assert "read_file" in names
    assert "ignoring web_fetch, web_fetch_domains, web_fetch_private" in out.stderr
