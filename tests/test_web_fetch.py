"""web_fetch against real loopback servers (HTTP, and HTTPS with a certificate made here), and
the address policy it runs under. Nothing here reaches the internet or waits on a clock."""

from __future__ import annotations

import datetime
import gzip
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli import __version__
from qwen_agent_cli.config import Settings, load_settings
from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.netguard import (
    AddressRefusedError,
    check_address,
    resolve,
    resolve_checked,
)
from qwen_agent_cli.sandbox import DirectExecutor
from qwen_agent_cli.tools import BUILTIN_TOOLS, ToolContext, ToolRegistry
from qwen_agent_cli.tools.web import OFF, FetchedPage, domain_of, fetch, web_fetch
from qwen_agent_cli.types import ToolCall, ToolResult
from qwen_agent_cli.workspace import Workspace

LOOPBACK = ("127.0.0.1",)


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


MISSING = Route(404, b"<title>Missing</title><p>nope</p>", {"Content-Type": "text/html"})


@dataclass
class Site:
    """A real HTTP(S) server on 127.0.0.1 that serves `routes` and records every request."""

    port: int = 0
    scheme: str = "http"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def page(self, path: str, body: bytes | str, content_type: str, **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(200, data, {"Content-Type": content_type, **headers})

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = Route(status, b"", {"Location": location})


def serve(site: Site, tls: ssl.SSLContext | None = None) -> Callable[[], None]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = site.routes.get(self.path, MISSING)
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        site.scheme = "https"
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


@pytest.fixture
def site() -> Iterator[Site]:
    found = Site()
    stop = serve(found)
    yield found
    stop()


def settings(**flags: Any) -> Settings:
    return load_settings(
        env={}, user_file=None, project_dir=None, flags={"web_fetch_private": LOOPBACK, **flags}
    )


def refusal(url: str, config: Settings | None = None) -> str:
    with pytest.raises(ToolError) as caught:
        fetch(url, config or settings())
    return str(caught.value)


def call(config: Settings, tmp_path: Path, **args: object) -> ToolResult:
    registry = ToolRegistry(
        [web_fetch], ToolContext(Workspace(tmp_path), DirectExecutor({}), config)
    )
    tool_call = ToolCall("c1", "web_fetch", json.dumps(args))
    found, parsed = registry.parse(tool_call)
    return registry.invoke(found, tool_call, parsed)


# -- content ---------------------------------------------------------------------------------

HTML = """<!doctype html><html><head><title>Guide &amp; Notes</title>
<style>body { color: red }</style><script>steal(document.cookie)</script></head>
<body><h1>Install</h1><noscript>enable js</noscript>



<p>Read <a href="/docs/api">the API</a> and <a href="javascript:run()">this</a>.</p>
<iframe src="https://ads.example/"></iframe><svg><text>chart</text></svg>
<h2>Usage</h2><p>Run it.<img src="data:image/png;base64,AAAA" alt="diagram"></p></body></html>"""


def test_html_becomes_markdown_with_title_headings_and_links(site: Site):
    site.page("/guide", HTML, "text/html; charset=utf-8")
    page = fetch(site.url("/guide"), settings())
    assert page == FetchedPage(
        final_url=site.url("/guide"),
        status=200,
        content_type="text/html",
        text=(
            "# Guide & Notes\n\n# Install\n\n"
            f"Read [the API]({site.url('/docs/api')}) and this.\n\n"
            "## Usage\n\nRun it.diagram"
        ),
        size=len(HTML.encode()),
    )


def test_json_is_pretty_printed_and_text_kept_without_escapes(site: Site):
    site.page("/api", b'{"name":"qac","tags":["a","b"]}', "application/json")
    site.page(
        "/log",
        "caf\xe9 \x1b[31mred\x1b[0m\r\nnext".encode("latin-1"),
        "text/plain; charset=latin-1",
    )
    assert fetch(site.url("/api"), settings()).text == json.dumps(
        {"name": "qac", "tags": ["a", "b"]}, indent=2
    )
    assert fetch(site.url("/log"), settings()).text == "caf\xe9 red\nnext"


def test_binary_types_are_refused_naming_type_and_size(site: Site):
    site.page("/logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 92, "image/png")
    site.page("/paper.pdf", b"%PDF-1.7 ...", "application/pdf")
    site.routes["/blob"] = Route(200, b"\x00\x01\x02binary")
    assert "is image/png (100 bytes); web_fetch reads text only" in refusal(site.url("/logo.png"))
    assert "is application/pdf (12 bytes)" in refusal(site.url("/paper.pdf"))
    assert "is application/octet-stream" in refusal(site.url("/blob"))


def test_long_pages_are_cut_to_max_chars_with_a_note(site: Site, tmp_path: Path):
    site.page("/long", "x" * 5000, "text/plain")
    result = call(settings(), tmp_path, url=site.url("/long"), max_chars=1000)
    header = f"Fetched {site.url('/long')} (200 OK, text/plain, 5000 bytes)"
    assert result.output == (
        f"{header}\n\n{'x' * 1000}\n[... 4000 of 5000 characters cut; a larger max_chars "
        "(up to 20000) or a narrower URL (a section or subpage) shows more]"
    )
    assert not result.is_error
    whole = call(settings(tool_output_limit=2000), tmp_path, url=site.url("/long"))
    assert len(whole.output) <= 2000
    assert whole.output.endswith(
        "characters cut; a narrower URL (a section or subpage) shows more]"
    )


def test_reading_stops_at_max_bytes(site: Site):
    site.page("/big", "y" * 10_000, "text/plain")
    page = fetch(site.url("/big"), settings(web_fetch_max_bytes=1000))
    assert (page.size, page.truncated, page.text) == (1000, True, "y" * 1000)


def test_a_gzip_bomb_is_capped_after_decoding(site: Site):
    bomb = gzip.compress(b"0" * 20_000_000)
    assert len(bomb) < 100_000
    site.page("/bomb", bomb, "text/plain", **{"Content-Encoding": "gzip"})
    site.page("/small", gzip.compress(b"hello"), "text/plain", **{"Content-Encoding": "gzip"})
    page = fetch(site.url("/bomb"), settings(web_fetch_max_bytes=100_000))
    assert (page.size, page.truncated, len(page.text)) == (100_000, True, 100_000)
    assert fetch(site.url("/small"), settings()).text == "hello"


def test_an_http_error_is_an_error_result_with_the_page_text(site: Site, tmp_path: Path):
    result = call(settings(), tmp_path, url=site.url("/missing"))
    assert result.is_error
    assert result.output == (
        f"Fetched {site.url('/missing')} (404 Not Found, text/html, 33 bytes)\n"
        "[the server answered with the error 404 Not Found; the page it sent follows]\n\n"
        "# Missing\n\nnope"
    )


# -- redirects ---------------------------------------------------------------------------------


def test_redirects_are_followed_and_counted(site: Site):
    site.redirect("/r1", "/r2", 301)
    site.redirect("/r2", site.url("/final"), 307)
    site.page("/final", "arrived", "text/plain")
    page = fetch(site.url("/r1"), settings())
    assert (page.final_url, page.redirects, page.text) == (
        site.url("/final"),
        (site.url("/r1"), site.url("/r2")),
        "arrived",
    )


def test_at_most_five_redirects_are_followed(site: Site):
    for step in range(6):
        site.redirect(f"/c{step}", f"/c{step + 1}")
    site.page("/c6", "end", "text/plain")
    assert len(fetch(site.url("/c1"), settings()).redirects) == 5
    assert "too many redirects" in refusal(site.url("/c0"))


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is not public: cloud metadata",
        ),
        ("http://10.0.0.1/", "10.0.0.1 is not public: private"),
        ("http://127.0.0.2:{port}/", "127.0.0.2 is not public: loopback"),
        ("http://[::1]:{port}/", "::1 is not public: loopback"),
        ("file:///etc/passwd", "http and https URLs only, not file:"),
        ("http://user:pw@127.0.0.1:{port}/", "user name or password"),
    ],
)
def test_a_redirect_to_a_refused_place_is_refused(site: Site, location: str, reason: str):
    site.redirect("/go", location.format(port=site.port))
    message = refusal(site.url("/go"))
    assert message.startswith(f"{site.url('/go')} redirected to ")
    assert reason in message
    assert [path for path, _ in site.requests] == ["/go"]


def test_a_redirect_to_another_host_is_checked_but_not_followed(site: Site, tmp_path: Path):
    """The person approves web_fetch by domain, so an open redirect must not carry it past."""
    site.redirect("/hop", "/away")
    site.redirect("/away", f"http://localhost:{site.port}/elsewhere")
    result = call(settings(), tmp_path, url=site.url("/hop"))
    assert (result.is_error, result.output) == (
        False,
        f"Fetched {site.url('/away')} (302 Found, no body, 0 bytes)\n"
        f"[followed 1 redirect(s) from {site.url('/hop')}]\n\n"
        f"{site.url('/away')} redirects to http://localhost:{site.port}/elsewhere, on another "
        "host (localhost). web_fetch does not follow a redirect to another host: call it with "
        "that URL.",
    )
    assert [path for path, _ in site.requests] == ["/hop", "/away"]


# -- what is refused before any connection -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://2130706433:{port}/",
    ],
)
def test_loopback_is_refused_without_the_allowance(site: Site, url: str):
    message = refusal(url.format(port=site.port), settings(web_fetch_private=()))
    assert "is not public: loopback" in message
    assert "web_fetch_private" in message
    assert site.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:pw@127.0.0.1:{port}/", "user name or password"),
        ("http://token@127.0.0.1:{port}/", "user name or password"),
        ("file:///etc/passwd", "not file:"),
        ("ftp://127.0.0.1:{port}/", "not ftp:"),
        ("127.0.0.1:{port}/", "needs http:// or https:// in front"),
        ("data:text/html,<p>hi</p>", "not data:"),
        ("http:///path", "no valid host name"),
        ("http://127.0.0.1:99999/", "invalid port"),
        ("http://127.0.0.1:{port}/\x1b[2J", "control characters"),
    ],
)
def test_malformed_or_credentialed_urls_are_refused(site: Site, url: str, reason: str):
    assert reason in refusal(url.format(port=site.port))
    assert site.requests == []


def test_no_cookie_or_credential_is_ever_sent(site: Site):
    site.routes["/login"] = Route(302, b"", {"Set-Cookie": "session=s3cret", "Location": "/home"})
    site.page("/home", "welcome", "text/plain", **{"Set-Cookie": "more=1"})
    fetch(site.url("/login"), settings())
    fetch(site.url("/home"), settings())
    assert [path for path, _ in site.requests] == ["/login", "/home", "/home"]
    for _, headers in site.requests:
        assert set(headers) == {"host", "user-agent", "accept", "accept-encoding", "connection"}
        assert headers["user-agent"] == f"qac-web-fetch/{__version__}"
        assert headers["accept"] == "text/html, text/plain, application/json, */*;q=0.5"
        assert headers["accept-encoding"] == "gzip, deflate"
        assert headers["host"] == f"127.0.0.1:{site.port}"


def test_turned_off_by_config(site: Site, tmp_path: Path):
    result = call(settings(web_fetch=False), tmp_path, url=site.url("/"))
    assert (result.is_error, result.output) == (True, OFF)
    assert site.requests == []


def test_a_spent_time_limit_is_a_timeout(site: Site):
    with pytest.raises(ToolError, match=r"took longer than the 0 s limit"):
        fetch(site.url("/"), settings(), timeout=0)


def test_the_name_is_resolved_once_and_the_checked_address_used(
    site: Site, monkeypatch: pytest.MonkeyPatch
):
    """DNS rebinding: the second answer would be the metadata service; it is never asked."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    site.page("/", "pinned", "text/plain")
    assert fetch(f"http://rebind.test:{site.port}/", settings()).text == "pinned"
    assert asked == ["rebind.test"]
    assert site.requests[0][1]["host"] == f"rebind.test:{site.port}"


def test_a_name_with_any_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch):
    def split(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", split)
    with pytest.raises(AddressRefusedError, match=r"split\.test resolves to 10\.1\.2\.3"):
        resolve_checked("split.test", 80)
    assert "10.1.2.3 is not public: private" in refusal("http://split.test/")


def test_domain_of_names_the_host_for_approval():
    assert domain_of("https://Docs.Python.ORG:8443/3/library/?q=1") == "docs.python.org"
    assert domain_of("http://bücher.example./") == "xn--bcher-kva.example"
    assert domain_of("http://[::1]:8080/") == "::1"
    assert domain_of("ftp://example.com/") == ""
    assert domain_of("http://user@example.com/") == ""


def test_web_fetch_is_registered_read_only_with_its_schema():
    assert BUILTIN_TOOLS[-1] is web_fetch
    assert web_fetch.read_only
    assert web_fetch.parameters == {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "the full http:// or https:// URL"},
            "max_chars": {
                "type": "integer",
                "description": "the most characters of the page to return (default: as many "
                "as fit)",
            },
        },
        "required": ["url"],
    }


# -- HTTPS -------------------------------------------------------------------------------------


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for the name `localhost` only (no IP address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        # The extensions Python 3.13's strict verification (VERIFY_X509_STRICT) requires.
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        usage = dict.fromkeys(
            (
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, **usage),
            critical=True,
        )
        if not ca:
            names = x509.SubjectAlternativeName([x509.DNSName("localhost")])
            builder = builder.add_extension(names, critical=False).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("qac test CA", ca_key, "qac test CA", ca_key, ca=True)
    leaf = certificate("localhost", leaf_key, "qac test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_https_checks_the_certificate_against_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ca, leaf, key = make_certificates(tmp_path)
    secure = Site()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(leaf, key)

    def record(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        secure.server_names.append(name)

    tls.sni_callback = record
    stop = serve(secure, tls)
    try:
        secure.page("/", "<title>Secure</title><p>over TLS</p>", "text/html")
        by_name = secure.url("/", host="localhost")
        local = settings(web_fetch_private=("localhost",))
        assert "certificate of localhost was refused" in refusal(by_name, local)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        page = fetch(by_name, local)
        assert (page.status, page.text) == (200, "# Secure\n\nover TLS")
        assert secure.server_names[-1] == "localhost"
        # Pinned to 127.0.0.1, the certificate still has to name the host of the URL.
        assert "certificate of 127.0.0.1 was refused" in refusal(secure.url("/"))
    finally:
        stop()


# -- the address policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.20.30.40", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private (unique local)"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "reserved ('this network')"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.7", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.7", "documentation"),
        ("2001:db8::7", "documentation"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("::ffff:127.0.0.1", "loopback (embedded in"),
        ("::ffff:169.254.169.254", "cloud metadata (embedded in"),
        ("::ffff:0:10.0.0.1", "private (embedded in"),
        ("::127.0.0.1", "loopback (embedded in"),
        ("64:ff9b::10.0.0.1", "private (embedded in"),
        ("64:ff9b:1::1", "reserved (local-use NAT64)"),
        ("2002:7f00:1::1", "loopback (embedded in"),
        ("2002:a9fe:a9fe::", "cloud metadata (embedded in"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation (embedded in"),
    ],
)
def test_check_address_refuses_each_class(address: str, reason: str):
    found = check_address(address)
    assert found is not None
    assert found.startswith(reason)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ],
)
def test_check_address_lets_public_addresses_through(address: str):
    assert check_address(address) is None
    assert check_address(ipaddress.ip_address(address)) is None


def test_allowed_entries_are_addresses_networks_or_names(monkeypatch: pytest.MonkeyPatch):
    assert check_address("10.1.2.3", ("10.0.0.0/8",)) is None
    assert check_address("192.168.0.1", ("10.0.0.0/8",)) == "private"
    assert check_address("fd00::5", ("fd00::/8",)) is None
    assert check_address("127.0.0.1", ("127.0.0.1",)) is None
    assert check_address("127.0.0.2", ("127.0.0.1",)) == "loopback"
    assert check_address("::ffff:127.0.0.1", ("127.0.0.1",)) is None
    assert check_address("169.254.169.254", ("10.0.0.0/8",)) == "cloud metadata"
    assert check_address("127.0.0.1", ("localhost",)) is None

    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    assert check_address("127.0.0.1", ("no-such-host.test",)) == "loopback"


def test_resolve_returns_each_address_once():
    assert resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
