"""Outside text in the pages qac writes (the session page, the evaluation report): one way to
make it inert, and the policy that keeps a page from running or loading anything."""

from __future__ import annotations

import html

from qwen_agent_cli.text import encodable, strip_ansi
from qwen_agent_cli.visible import visible

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing but the page's own style and embedded images, so a string that escaped anyway could
neither run nor call home."""


def safe(value: object) -> str:
    """Outside text made inert: terminal escapes removed, other control characters shown as
    `^X`, then escaped for HTML text and quoted attributes alike."""
    return html.escape(visible(strip_ansi(encodable(str(value)))), quote=True)
