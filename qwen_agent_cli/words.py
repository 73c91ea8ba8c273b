"""Counted nouns for people: "1 line", "2 lines", "0 files". Imports nothing."""

from __future__ import annotations


def plural(count: int, word: str, many: str = "") -> str:
    """`count word`, the word in the plural unless count is 1 (`many` for an irregular one)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
