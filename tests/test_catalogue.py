"""The model catalogue: lookups, user tables, the shipped facts, and the server's window."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qwen_agent_cli.catalogue import (
    NO_PRICE_NOTICE,
    Catalogue,
    ModelFacts,
    describe,
    effective_window,
    load_catalogue,
    normalise,
)
from qwen_agent_cli.config import Price, packaged_text
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.window_probe import server_window

VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "Qwen/Qwen3.6-27B",
            "object": "model",
            "created": 1767225600,
            "owned_by": "vllm",
            "root": "Qwen/Qwen3.6-27B",
            "parent": None,
            "max_model_len": 32768,
            "permission": [],
        }
    ],
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("qwen3.6-max-preview", "qwen3.6-max-preview"),
        ("qwen3.6-max", "qwen3.6-max-preview"),
        ("qwen/qwen3.6-max-preview", "qwen3.6-max-preview"),
        ("qwen3.6-plus-preview", "qwen3.6-plus"),
        ("qwen/qwen3.6-plus", "qwen3.6-plus"),
        ("QWEN3.6-PLUS", "qwen3.6-plus"),
        ("Qwen/Qwen3.6-27B", "qwen3.6-27b"),
        ("Qwen/Qwen3.6-27B-AWQ", "qwen3.6-27b"),
        ("unsloth/Qwen3.6-27B-GGUF", "qwen3.6-27b"),
        ("/srv/models/Qwen3.6-27B-FP8", "qwen3.6-27b"),
        ("Qwen3.6-27B-Q4_K_M.gguf", "qwen3.6-27b"),
        ("qwen3.6-27b@q8_0", "qwen3.6-27b"),
        ("qwen3.6:27b", "qwen3.6-27b"),
        ("qwen3.6:27b-q4_K_M", "qwen3.6-27b"),
        ("qwen3.6:35b-a3b", "qwen3.6-35b-a3b"),
        ("Qwen/Qwen3.6-35B-A3B-FP8", "qwen3.6-35b-a3b"),
        ("mlx-community/Qwen3.6-35B-A3B-4bit", "qwen3.6-35b-a3b"),
        ("Qwen/Qwen3.5-397B-A17B", "qwen3.5-397b-a17b"),
        ("qwen3.6-flash", "qwen3.6-flash"),
    ],
)
def test_names_aliases_and_loose_spellings_find_the_entry(
    catalogue: Catalogue, model: str, entry: str
):
    facts = catalogue.facts(model)
    assert facts is not None, model
    assert facts.name == entry


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4.1",
        "qwen/qwen3.6-plus:free",  # a free variant: pricing it like the paid one would be wrong
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "qwen3.6",
        "",
    ],
)
def test_other_names_are_not_guessed(catalogue: Catalogue, model: str):
    assert catalogue.facts(model) is None
    assert catalogue.price(model) is None


def test_normalise_drops_org_tag_and_quantisation_only():
    assert normalise("Qwen/Qwen3.6-35B-A3B-GPTQ-Int4") == "qwen3.6-35b-a3b"
    assert normalise("qwen3.6:27b-iq4_xs") == "qwen3.6-27b"
    assert normalise("Qwen/Qwen3-30B-A3B-Instruct-2507") == "qwen3-30b-a3b-instruct-2507"
    assert normalise("qwen/qwen3.6-plus:thinking") == "qwen3.6-plus-thinking"


def test_the_shipped_facts_from_the_issue(catalogue: Catalogue):
    max_preview = catalogue.facts("qwen3.6-max-preview")
    assert max_preview is not None
    assert max_preview.window == 262_144
    assert catalogue.price("qwen3.6-max-preview") == Price(1.30, 7.80, 0.13)
    plus = catalogue.facts("qwen3.6-plus")
    assert plus is not None
    assert (plus.window, plus.price) == (1_000_000, None)
    for open_model in ("qwen3.6-27b", "qwen3.6-35b-a3b"):
        facts = catalogue.facts(open_model)
        assert facts is not None
        assert (facts.window, facts.max_window, facts.images) == (262_144, 1_010_000, True)
        assert facts.preserve_thinking is True
    flagship = catalogue.facts("qwen3.5-397b-a17b")
    assert flagship is not None
    assert flagship.window == 262_144
    assert flagship.price is not None


def test_every_packaged_entry_is_well_formed(catalogue: Catalogue):
    owner: dict[str, str] = {}
    for name, facts in catalogue.models.items():
        assert facts.source == "catalogue"
        assert facts.window is not None
        assert facts.window >= 1000, name
        assert facts.max_window is None or facts.max_window >= facts.window, name
        if facts.price is not None:
            prices = [facts.price.input, facts.price.output, facts.price.cached_input or 0]
            assert all(p >= 0 for p in prices), name
        assert isinstance(facts.images, bool), name
        assert isinstance(facts.preserve_thinking, bool), name
        for spelling in (name, *facts.aliases):
            assert owner.setdefault(spelling, name) == name, f"{spelling} names two models"
            loose = owner.setdefault("~" + normalise(spelling), name)
            assert loose == name, f"{spelling} loosely names {loose} too"
            found = catalogue.facts(spelling)
            assert found is not None
            assert found.name == name


def test_every_packaged_entry_says_where_its_facts_come_from():
    text = packaged_text("models.toml")
    for header, body in re.findall(r'^\["([^"]+)"\]\n(.*?)(?=^\["|\Z)', text, re.M | re.S):
        assert re.search(r"^# .*source", body, re.M), f"{header} has no source comment"


def test_a_user_table_changes_a_known_model_and_keeps_its_aliases():
    catalogue = load_catalogue(
        {"qwen3.6-plus": {"input": 0.5, "output": 3.0, "aliases": ["my-plus"]}}, "/home/u/qac.toml"
    )
    facts = catalogue.facts("my-plus")
    assert facts is not None
    assert facts.price == Price(0.5, 3.0)
    assert facts.source == "/home/u/qac.toml"
    assert facts.source_of("input") == "/home/u/qac.toml"
    assert facts.source_of("window") == "catalogue"
    assert "qwen/qwen3.6-plus" in facts.aliases
    assert catalogue.price("qwen/qwen3.6-plus") == Price(0.5, 3.0)


def test_a_user_table_for_an_alias_starts_its_own_entry():
    catalogue = load_catalogue({"qwen/qwen3.6-max-preview": {"input": 1.04, "output": 6.24}})
    routed = catalogue.facts("qwen/qwen3.6-max-preview")
    assert routed is not None
    assert routed.price == Price(1.04, 6.24)
    assert routed.window == 262_144  # inherited from the model it names
    assert catalogue.price("qwen3.6-max-preview") == Price(1.30, 7.80, 0.13)


def test_a_user_table_for_an_unknown_name_adds_a_model():
    catalogue = load_catalogue({"my-finetune": {"window": 32768, "aliases": ["ft"]}})
    facts = catalogue.facts("ft")
    assert facts is not None
    assert (facts.name, facts.window, facts.price, facts.images) == (
        "my-finetune",
        32768,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"windw": 32768}, ["windw"]),
        ({"window": "big"}, ["window"]),
        ({"window": 512}, ["window", "1000"]),
        ({"window": True}, ["window"]),
        ({"input": -1, "output": 1}, ["input"]),
        ({"input": float("nan"), "output": 1}, ["input"]),
        ({"input": "1.30", "output": 1}, ["input"]),
        ({"images": "yes"}, ["images"]),
        ({"preserve_thinking": 1}, ["preserve_thinking"]),
        ({"aliases": "x"}, ["aliases"]),
        ({"output": 1.0}, ["input and output"]),
        ({"cached_input": 0.1}, ["input and output"]),
        ({"window": 300_000, "max_window": 200_000}, ["max_window"]),
        ({"aliases": ["qwen3.6-plus"]}, ["qwen3.6-plus"]),
    ],
)
def test_a_bad_user_table_names_the_table_and_the_key(table, words):
    with pytest.raises(ConfigError) as caught:
        load_catalogue({"my-model": table}, "/home/u/qac.toml")
    message = str(caught.value)
    assert "my-model" in message
    assert "/home/u/qac.toml" in message or "alias" in message
    for word in words:
        assert word in message


def test_a_user_model_entry_must_be_a_table():
    with pytest.raises(ConfigError, match="my-model"):
        load_catalogue({"my-model": 3})  # type: ignore[dict-item]


def test_effective_window_prefers_setting_then_server_then_catalogue_then_profile():
    facts = ModelFacts("m", window=262_144)
    assert effective_window(facts, 32768, 65536, 100_000) == (65536, "context_window setting")
    assert effective_window(facts, 32768, None, 100_000) == (32768, "server")
    assert effective_window(facts, None, None, 100_000) == (262_144, "catalogue")
    assert effective_window(None, None, None, 100_000) == (100_000, "profile default")
    assert effective_window(ModelFacts("m"), None, None, 100_000) == (100_000, "profile default")
    user = ModelFacts("m", window=8192, source="/u.toml", user_keys=frozenset({"window"}))
    assert effective_window(user, None, None, 100_000) == (8192, "/u.toml")


def test_describe_gives_the_doctor_lines_with_their_sources(catalogue: Catalogue):
    lines = describe(catalogue.facts("qwen3.6-max-preview"), "qwen3.6-max-preview", None, None, 1)
    assert "window 262,144 tokens (catalogue)" in lines
    assert "price $1.30 / $7.80 per M, cached $0.13 (catalogue)" in lines
    served = describe(catalogue.facts("Qwen/Qwen3.6-27B"), "Qwen/Qwen3.6-27B", 32768, None, 1)
    assert served[0] == "model Qwen/Qwen3.6-27B: in the catalogue (as qwen3.6-27b)"
    assert "window 32,768 tokens (server)" in served
    assert NO_PRICE_NOTICE.format(model="Qwen/Qwen3.6-27B") in served
    too_big = describe(None, "local", 32768, 65536, 1)
    assert any("above the 32,768 tokens the server reports" in line for line in too_big)
    cheap = describe(ModelFacts("c", price=Price(0.1875, 1.125)), "c", None, None, 4096)
    assert "price $0.1875 / $1.125 per M (catalogue)" in cheap


def test_the_no_price_notice_says_what_it_costs_and_how_to_fix_it():
    notice = NO_PRICE_NOTICE.format(model="my-model")
    assert "my-model" in notice
    assert "$0" in notice
    assert "--max-cost" in notice
    assert '[models."my-model"]' in notice


# --- the server's own window, against a real loopback server ---------------------------------


class Served:
    """A loopback HTTP server and the requests it saw."""

    def __init__(self, release: threading.Event) -> None:
        self.seen: list[tuple[str, str]] = []
        self.redirect_to = ""
        seen, outer = self.seen, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization", "")))
                kind = self.path.split("/")[1]
                if kind == "hang":
                    release.wait()
                    return
                if kind in ("away", "here"):
                    target = outer.redirect_to if kind == "away" else "/ok/v1/models"
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                bodies = {
                    "ok": json.dumps(VLLM_MODELS).encode(),
                    "garbage": b"<html>not json</html>",
                    "big": b'{"data": [' + b" " * (2 << 20) + b"]}",
                    "many": json.dumps(
                        {"data": [{"id": "a", "max_model_len": 1}, {"id": "b", "max_model_len": 2}]}
                    ).encode(),
                }
                if kind not in bodies:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(bodies[kind])))
                self.end_headers()
                self.wfile.write(bodies[kind])

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Served]]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    release = threading.Event()
    servers: list[Served] = []

    def start() -> Served:
        servers.append(Served(release))
        return servers[-1]

    yield start
    release.set()
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join()


def test_server_window_reads_vllms_max_model_len(serve):
    server = serve()
    assert server_window(f"{server.url}/ok/v1", "Qwen/Qwen3.6-27B") == 32768
    assert server_window(f"{server.url}/ok/v1/", "served-under-another-name") == 32768  # only one
    assert server_window(f"{server.url}/many/v1", "b") == 2
    assert server_window(f"{server.url}/many/v1", "c") is None
    assert server.seen[0] == ("/ok/v1/models", "")


def test_server_window_sends_the_key_as_a_bearer_token(serve):
    server = serve()
    assert server_window(f"{server.url}/ok/v1", "Qwen/Qwen3.6-27B", api_key="sk-1") == 32768
    assert server.seen == [("/ok/v1/models", "Bearer sk-1")]


@pytest.mark.parametrize("kind", ["missing", "garbage", "big"])
def test_server_window_is_none_for_a_404_garbage_or_an_oversized_body(serve, kind):
    server = serve()
    assert server_window(f"{server.url}/{kind}/v1", "Qwen/Qwen3.6-27B") is None


def test_server_window_gives_up_on_a_server_that_never_answers(serve):
    server = serve()
    started = time.monotonic()
    assert server_window(f"{server.url}/hang/v1", "Qwen/Qwen3.6-27B", timeout=0.2) is None
    assert time.monotonic() - started < 5


def test_server_window_follows_a_redirect_only_on_the_same_host(serve):
    server, elsewhere = serve(), serve()
    assert server_window(f"{server.url}/here/v1", "Qwen/Qwen3.6-27B", api_key="k") == 32768
    server.redirect_to = f"{elsewhere.url}/ok/v1/models"
    assert server_window(f"{server.url}/away/v1", "Qwen/Qwen3.6-27B", api_key="k") is None
    assert elsewhere.seen == []


def test_server_window_never_raises_for_bad_urls(serve):
    closed = serve()
    url = closed.url
    closed.httpd.shutdown()
    closed.httpd.server_close()
    assert server_window(f"{url}/ok/v1", "m", timeout=0.5) is None
    assert server_window("file:///etc", "m") is None
    assert server_window("not a url", "m") is None
    assert server_window("http://[::1", "m") is None
