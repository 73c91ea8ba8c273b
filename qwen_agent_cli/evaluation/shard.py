"""Which (task, arm) pairs one machine runs: a stable hash of the pair's ids, so every machine of
a CI matrix or a Kubernetes Indexed Job takes its own share without a scheduler.

Imports nothing above `errors`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from qwen_agent_cli.errors import ConfigError

INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def takes(self, task_id: str, arm: str) -> bool:
        return shard_of(task_id, arm, self.count) == self.index


ALL = Shard(0, 1)


def shard_of(task_id: str, arm: str, count: int) -> int:
    """The shard a pair belongs to: the same on every machine and Python version."""
    digest = hashlib.sha256(f"{task_id}\0{arm}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str | None, env: Mapping[str, str]) -> Shard:
    """`I/N` (I from 0), or `auto/N` for I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)."""
    if not text:
        return ALL
    index_text, sep, count_text = text.partition("/")
    if index_text == "auto":
        index_text = env.get(INDEX_ENV, "")
        if not index_text:
            raise ConfigError(f"--shard {text}: auto needs {INDEX_ENV} in the environment")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write I/N (0 <= I < N) or auto/N") from None
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: write I/N with 0 <= I < N (or auto/N)")
    return Shard(index, count)
