"""The web_fetch tool: one web page as text for the model. It runs in qac's own process, outside
the sandbox, so the model chooses only the URL: public addresses only (netguard, checked after
DNS and on every redirect, then connected to as checked), no credentials, bounded size and time,
and nothing written to disk.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.client import HTTPException
from time import monotonic
from urllib.parse import quote, urljoin, urlsplit

from qwen_agent_cli import __version__
from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.netguard import (
    AddressRefusedError,
    IPAddress,
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    resolve_checked,
)
from qwen_agent_cli.text import encodable, strip_ansi
from qwen_agent_cli.tools.base import Output, ToolContext, tool

TOTAL_TIMEOUT = 30.0
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PRETTY_JSON_LIMIT = 100_000
NOTE_ROOM = 300
HEADERS = {
    "User-Agent": f"qac-web-fetch/{__version__}",
    "Accept": "text/html, text/plain, application/json, */*;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "close",
}
TEXT_SUFFIXES: tuple[str, ...] = ("/json", "+json", "/xml", "+xml", "/javascript", "/ecmascript")
TEXT_SUFFIXES += ("/x-javascript", "/toml", "/yaml", "/x-yaml", "/x-sh", "/sql")
DROPPED_TAGS = ("script", "style", "noscript", "iframe", "svg", "template", "object", "embed")
ELSEWHERE = "web_fetch does not follow a redirect to another host: call it with that URL."
OFF = "web_fetch is turned off in your config ([tools] web_fetch)"
_PHRASES = {status.value: status.phrase for status in HTTPStatus}
_URL_SAFE = "/:@!$&'()*+,;=-._~%"
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A fetched page as text; `size` counts the body's bytes read (after decompression)."""

    final_url: str
    status: int
    content_type: str
    text: str
    size: int
    truncated: bool = False
    """Reading stopped at web_fetch_max_bytes; the rest of the body was never read."""
    redirects: tuple[str, ...] = ()
    """The URLs that redirected, in order, before `final_url`."""


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    netloc: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: Message
    body: bytes
    truncated: bool


@tool(read_only=True)
def web_fetch(ctx: ToolContext, url: str, max_chars: int | None = None) -> str | Output:
    """Fetch a web page over http or https and read it as text: HTML comes back as Markdown
    (headings and links kept), JSON and plain text as they are. Use it for documentation, an
    issue or an API answer the task needs. Public addresses only, no cookies or logins;
    images, PDFs and other binary files are refused; a redirect to another host is reported,
    not followed.

    Args:
        url: the full http:// or https:// URL
        max_chars: the most characters of the page to return (default: as many as fit)
    """
    page = fetch(url, ctx.settings)
    return render(page, max_chars, ctx.settings.tool_output_limit)


def domain_of(url: str) -> str:
    """The host a URL names (lowercase, IDNA-encoded, no port), for asking a person whether
    web_fetch may go there; "" for a URL web_fetch refuses before any connection."""
    try:
        return _parse(url).host
    except ToolError:
        return ""


def fetch(url: str, settings: Settings, *, timeout: float = TOTAL_TIMEOUT) -> FetchedPage:
    """The page at `url` after at most MAX_REDIRECTS redirects on the same host, each hop
    checked from scratch. A redirect to another host is checked but not followed: the model
    asks for it in a new call, which a person approves by domain. Every failure is a ToolError
    of one line the model can act on."""
    if not settings.web_fetch:
        raise ToolError(OFF)
    deadline = monotonic() + timeout
    visited: list[str] = []
    current, host, status = url, "", 0
    while True:
        try:
            target = _parse(current)
            addresses = _addresses(target, settings)
            if visited and target.host != host:
                moved = f"{visited[-1]} redirects to {target.url}, on another host ({target.host})"
                text, before = f"{moved}. {ELSEWHERE}", tuple(visited[:-1])
                return FetchedPage(visited[-1], status, "no body", text, 0, redirects=before)
            reply = _exchange(target, addresses, settings, deadline, timeout)
        except ToolError as exc:
            if not visited:
                raise
            raise ToolError(f"{visited[-1]} redirected to {current!r}; {exc}") from None
        host, status = host or target.host, reply.status
        if reply.status not in REDIRECTS:
            return _page(target, reply, tuple(visited))
        location = reply.headers.get("Location", "").strip()
        if not location:
            raise ToolError(f"{target.url} answered {reply.status} without a Location to follow")
        following = urljoin(target.url, location)
        if len(visited) == MAX_REDIRECTS:
            raise ToolError(
                f"too many redirects: {url} redirected {MAX_REDIRECTS} times and then again "
                f"to {following!r}; web_fetch follows at most {MAX_REDIRECTS}"
            )
        visited.append(target.url)
        current = following


def render(page: FetchedPage, max_chars: int | None, limit: int) -> Output:
    """The page for the model: a header line, notes, then the text cut to fit `max_chars` and
    the tool output budget, saying what was cut."""
    if max_chars is not None and max_chars < 1:
        raise ToolError("max_chars must be 1 or more")
    cap = min(max_chars or limit, limit)
    status = f"{page.status} {_PHRASES.get(page.status, '')}".rstrip()
    lines = [f"Fetched {page.final_url} ({status}, {page.content_type}, {page.size} bytes)"]
    if page.redirects:
        lines.append(f"[followed {len(page.redirects)} redirect(s) from {page.redirects[0]}]")
    if page.truncated:
        lines.append(f"[stopped reading after {page.size} bytes, the web_fetch_max_bytes limit]")
    if page.status >= 400:
        lines.append(f"[the server answered with the error {status}; the page it sent follows]")
    head = "\n".join(lines)
    budget = max(min(cap, limit - len(head) - NOTE_ROOM), 0)
    text = page.text if page.text.strip() else "[the page has no text]"
    if len(text) > budget:
        ways = "a narrower URL (a section or subpage)"
        if cap < limit:
            ways = f"a larger max_chars (up to {limit}) or {ways}"
        cut = len(text) - budget
        text = f"{text[:budget]}\n[... {cut} of {len(text)} characters cut; {ways} shows more]"
    return Output(f"{head}\n\n{text}", failed=page.status >= 400)


def _parse(url: str) -> _Target:
    """The URL checked and normalised: http(s), a host, no user name or password."""
    text = url.strip()
    if _CONTROL.search(text):
        raise ToolError(f"the URL {text!r} holds control characters")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if "://" not in text and not text.lower().startswith(("file:", "data:")):
            raise ToolError(f"the URL {text!r} needs http:// or https:// in front")
        raise ToolError(f"web_fetch fetches http and https URLs only, not {scheme}: ({text!r})")
    if "@" in parts.netloc:
        raise ToolError(f"web_fetch refuses URLs with a user name or password ({text!r})")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ToolError(f"the URL {text!r} has an invalid port") from None
    host = _ascii_host(parts.hostname or "", text)
    netloc = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        netloc = f"{netloc}:{port}"
    path = quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        path = f"{path}?{quote(parts.query, safe=_URL_SAFE + '?')}"
    return _Target(scheme, host, port, netloc, path)


def _ascii_host(host: str, url: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        name = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        name = ""
    if not _HOST_NAME.fullmatch(name):
        raise ToolError(f"the URL {url!r} has no valid host name")
    return name


def _addresses(target: _Target, settings: Settings) -> list[IPAddress]:
    """The host's addresses, every one of them public or allowed by the user's config."""
    try:
        return resolve_checked(target.host, target.port, settings.web_fetch_private)
    except AddressRefusedError as exc:
        raise ToolError(
            f"web_fetch refuses {target.url}: {exc}; only public addresses may be fetched "
            "(a person can allow more with [tools] web_fetch_private)"
        ) from None
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ToolError(f"cannot resolve {target.host}: {reason}") from None


def _exchange(
    target: _Target,
    addresses: list[IPAddress],
    settings: Settings,
    deadline: float,
    timeout: float,
) -> _Reply:
    """One GET to addresses netguard approved; the body is read (capped) unless the reply is
    a redirect or declares a binary type."""
    kind = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    connection = kind(target.host, target.port, addresses, deadline)
    limit = settings.web_fetch_max_bytes
    try:
        connection.request("GET", target.path, headers={**HEADERS, "Host": target.netloc})
        response = connection.getresponse()
        headers = response.headers
        if response.status in REDIRECTS or _declared_binary(headers):
            return _Reply(response.status, headers, b"", False)
        raw, cut = _read(response.read, limit)
        body, cut_decoded = _decode(raw, headers.get("Content-Encoding", ""), limit)
        return _Reply(response.status, headers, body, cut or cut_decoded)
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or exc.reason
        raise ToolError(f"the TLS certificate of {target.host} was refused: {why}") from None
    except ssl.SSLError as exc:
        raise ToolError(f"TLS with {target.host} failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise ToolError(f"{target.url} took longer than the {timeout:g} s limit") from None
    except HTTPException as exc:
        raise ToolError(f"{target.url} sent a broken HTTP reply ({type(exc).__name__})") from None
    except OSError as exc:
        raise ToolError(f"cannot fetch {target.url}: {exc.strerror or exc}") from None
    finally:
        connection.close()


def _read(read: Callable[[int], bytes], limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = read(min(65536, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    data = b"".join(chunks)
    return data[:limit], len(data) > limit


def _decode(raw: bytes, coding: str, limit: int) -> tuple[bytes, bool]:
    """The body without its Content-Encoding, at most `limit` bytes however well it packs."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return raw, False
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise ToolError(f"the server sent the body {coding}-encoded, which web_fetch cannot read")
    tries = [16 + zlib.MAX_WBITS] if "gzip" in coding else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for wbits in tries:
        try:
            data = zlib.decompressobj(wbits).decompress(raw, limit + 1)
        except zlib.error:
            continue
        return data[:limit], len(data) > limit
    raise ToolError(f"the server's {coding} encoding of the body is corrupt")


def _declared_binary(headers: Message) -> bool:
    return bool(headers.get("Content-Type")) and not _is_text(headers.get_content_type())


def _is_text(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type.endswith(TEXT_SUFFIXES)


def _page(target: _Target, reply: _Reply, redirects: tuple[str, ...]) -> FetchedPage:
    headers, body = reply.headers, reply.body
    if headers.get("Content-Type"):
        content_type = headers.get_content_type()
    elif b"\x00" in body[:8192]:
        content_type = "application/octet-stream"
    else:
        html = body[:512].lstrip().lower().startswith((b"<!doctype html", b"<html"))
        content_type = "text/html" if html else "text/plain"
    if not _is_text(content_type):
        length = headers.get("Content-Length", "")
        size = f"{length} bytes" if length.isdigit() else f"{len(body)} bytes or more"
        raise ToolError(
            f"{target.url} is {content_type} ({size}); web_fetch reads text only "
            "(HTML, plain text, JSON, XML)"
        )
    text = _text(body, headers.get_content_charset(), content_type)
    if content_type == "text/html" or content_type == "application/xhtml+xml":
        text = html_to_markdown(text, target.url)
    elif content_type == "application/json" or content_type.endswith("+json"):
        text = _pretty_json(text)
    text = _CONTROL.sub("", strip_ansi(text.replace("\r\n", "\n").replace("\r", "\n")))
    return FetchedPage(
        target.url,
        reply.status,
        content_type,
        encodable(text),
        len(body),
        reply.truncated,
        redirects,
    )


def _text(body: bytes, charset: str | None, content_type: str) -> str:
    """Decoded by the declared charset (or an HTML meta tag's), else UTF-8; bad bytes become
    U+FFFD rather than failing."""
    if charset is None and "html" in content_type:
        found = _META_CHARSET.search(body[:4096])
        charset = found.group(1).decode("ascii") if found else None
    for name in (charset, "utf-8-sig"):
        if name:
            try:
                return body.decode(name, errors="replace")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace")


def html_to_markdown(html: str, base_url: str) -> str:
    """Readable Markdown: headings, links (made absolute) and text kept; scripts, styles,
    frames and images dropped; the <title> as a first `# ` line."""
    # Imported here: the parser and converter cost about 75 ms, paid only when a page is read.
    from bs4 import BeautifulSoup, Tag
    from markdownify import ATX, MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for element in soup.find_all([*DROPPED_TAGS, "title", "meta", "link"]):
        element.decompose()
    for image in soup.find_all("img"):
        alt = image.get("alt") if isinstance(image, Tag) else None
        image.replace_with(alt if isinstance(alt, str) else "")
    for link in soup.find_all("a", href=True):
        if isinstance(link, Tag):
            href = str(link["href"]).strip()
            if href.lower().startswith(("javascript:", "data:", "vbscript:")):
                del link["href"]
            else:
                link["href"] = urljoin(base_url, href)
    markdown = MarkdownConverter(heading_style=ATX, bullets="-").convert_soup(soup)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip()
    if title and not markdown.startswith(f"# {title}\n"):
        markdown = f"# {title}\n\n{markdown}"
    return markdown


def _pretty_json(text: str) -> str:
    if len(text) > PRETTY_JSON_LIMIT:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text
