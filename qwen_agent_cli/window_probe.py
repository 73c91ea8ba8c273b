"""The window a local server was started with, asked over HTTP: vLLM and SGLang report
`max_model_len` on `GET /v1/models`. Kept apart from the catalogue so reading configuration never
imports urllib (about 30 ms of every command's start-up).
"""

from __future__ import annotations

import json
import time
import urllib.request
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit

BODY_LIMIT = 1 << 20


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same scheme, host and port, so the key never leaves."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def server_window(base_url: str, model: str, api_key: str = "", timeout: float = 2.0) -> int | None:
    """The window the server was started with: vLLM and SGLang report `max_model_len` on
    `GET /models`. Any failure is None (the caller falls back to the catalogue); never raises."""
    try:
        url = base_url.rstrip("/") + "/models"
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if api_key:
            request.add_header("Authorization", f"Bearer {api_key}")
        deadline = time.monotonic() + timeout
        with urllib.request.build_opener(_SameHostRedirects).open(request, timeout=timeout) as r:
            body = b""
            while chunk := r.read(64 * 1024):
                body += chunk
                if len(body) > BODY_LIMIT or time.monotonic() > deadline:
                    return None
        return _max_model_len(json.loads(body), model)
    except Exception:
        return None


def _max_model_len(data: Any, model: str) -> int | None:
    entries = data.get("data") if isinstance(data, dict) else None
    cards = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    match = [c for c in cards if c.get("id") == model] or (cards if len(cards) == 1 else [])
    value = match[0].get("max_model_len") if match else None
    return value if type(value) is int and value > 0 else None
