"""Text from outside qac (the model, tools, files, servers) made safe to show in a terminal: no
control sequence in it may reach the terminal, so it can neither set the title, write the
clipboard (OSC 52), plant links (OSC 8) nor redraw the screen (CSI).

Imports nothing; every output path that can reach a terminal uses `visible`.
"""

from __future__ import annotations

import re

CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
"""C0 (but tab and newline), DEL, C1, the bidirectional marks and overrides that reorder what
is read, and the Unicode line separators."""


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 64)  # ESC is ^[, BEL is ^G, as `cat -v` shows them
    if code == 0x7F:
        return "^?"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"<U+{code:04X}>"


def visible(text: str) -> str:
    """`text` with every control character shown as visible characters instead of obeyed."""
    return CONTROL.sub(_shown, text)
