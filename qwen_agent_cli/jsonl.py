"""One JSON object per line, as qac writes them for scripts and exports: UTF-8 kept readable,
but every character a terminal could obey (C1 controls such as CSI, bidirectional overrides)
written as a `\\u` escape. JSON already escapes C0; the data read back is unchanged.

Imports nothing from qac.
"""

from __future__ import annotations

import json
import re
from typing import Any

OBEYED = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dumps(data: Any) -> str:
    """`json.dumps(data, ensure_ascii=False)` with terminal-active characters escaped."""
    return OBEYED.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False))
