"""The repository map's cache: each file's tags under its git blob id or stat stamp, and the
last finished map under a digest of them all, so a start-up where nothing changed neither parses
nor ranks. Written whole and privately (0600 files in a 0700 folder); imports nothing from qac."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import secrets
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAGS_FILE = "repomap.json"
RESULT_FILE = "repomap-result.json"
CACHE_VERSION = 2
HEADER = b'["qac repository map cache",%d]\n' % CACHE_VERSION
STALE_TAGS = 0.005
"""The share of the tags file that may be out of date (files changed or gone since it was
written) before it is written again: parsing a few files again in a later build costs less
than rewriting every file's tags now."""
TAGS_SHAPE = (str, list, list, str, dict)
"""The types of a FileTags' fields, in order, as a cache line holds them after the path."""


@dataclass(frozen=True, slots=True)
class FileTags:
    """A file's definitions in source order, as parallel lists (so the cache loads them as is)."""

    stamp: str
    """The git blob id of the content that was parsed, or that file's size, mtime, ctime and
    inode (see `scan`)."""
    names: list[str]
    rows: list[int]
    signatures: str
    """The text of the line each definition's name is on, joined by newlines: one string, not
    one per definition, because only the few files the map shows ever need them split."""
    refs: dict[str, int]
    """How many times each identifier occurs."""

    def lines(self) -> list[str]:
        """Each definition's signature line, in the order of `names`."""
        return self.signatures.split("\n") if self.names else []


@dataclass(frozen=True, slots=True)
class StoredMap:
    """A finished map and the digest of the inputs it was built from."""

    key: str
    text: str
    files: int
    symbols: int


def scan(
    root: Path,
    files: Iterable[str],
    languages: Mapping[str, str],
    max_bytes: int,
    blobs: Mapping[str, str],
) -> list[tuple[str, str, str]]:
    """The files to map, with their language (by suffix) and stamp. A file in `blobs` (git
    vouches that its content is that blob) is stamped with the blob id, unlooked at: a later
    parse reads it through the guard. Any other must be a regular file (not a link) within
    `max_bytes`, under no linked directory, so nothing outside `root` is read or served from
    the cache: one lstat a file and one a directory, and no path is resolved."""
    base = os.fspath(root)
    directories = {"": True}
    found = []
    for rel in dict.fromkeys(files):
        slash, dot = rel.rfind("/"), rel.rfind(".")
        language = languages.get(rel[dot:].lower()) if dot > slash + 1 else None
        if language is None or rel.startswith("/") or (".." in rel and ".." in rel.split("/")):
            continue
        if (blob := blobs.get(rel)) is not None:
            found.append((rel, language, f"blob {blob}"))
            continue
        parent = rel[: max(slash, 0)]
        plain = directories.get(parent)
        if not (plain or (plain is None and _plain_directory(base, parent, directories))):
            continue
        try:
            info = os.lstat(f"{base}/{rel}")
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size <= max_bytes:
            found.append((rel, language, stamp(info)))
    return found


def _plain_directory(base: str, rel: str, known: dict[str, bool]) -> bool:
    """Whether `base/rel` is a directory reached through no link; each is looked at once."""
    if rel not in known:
        plain = _plain_directory(base, rel.rpartition("/")[0], known)
        try:
            known[rel] = plain and stat.S_ISDIR(os.lstat(f"{base}/{rel}").st_mode)
        except OSError:
            known[rel] = False
    return known[rel]


def stamp(info: os.stat_result) -> str:
    """What says a file git does not vouch for is unchanged, without reading it. The ctime and
    inode catch a rewrite that kept size and mtime (`cp -p`, `touch -r`, a rename over it)."""
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


def key(
    root: Path,
    sources: list[tuple[str, str, str]],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    modules: Iterable[str],
) -> str:
    """One key for everything a finished map depends on: the files and their stamps, the
    budget, the token counter (by its qualified name), and where tree-sitter and each grammar
    module is installed, since one may be added or upgraded later."""
    name = getattr(count_tokens, "__qualname__", None)  # a partial has none: never reused
    counter = f"{count_tokens.__module__}.{name}" if name else repr(count_tokens)
    grammars = [_installed(module) for module in ("tree_sitter", *sorted(modules))]
    hasher = hashlib.sha256()
    for part in (str(CACHE_VERSION), os.fspath(root), str(budget_tokens), counter, *grammars):
        hasher.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for rel, _, file_stamp in sources:
        hasher.update(f"{rel}\0{file_stamp}\0".encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def _installed(module: str) -> str:
    """Where a module would load from and when that file changed, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return f"{module}: missing"
    try:
        return f"{module}: {spec.origin} {Path(spec.origin).stat().st_mtime_ns}"
    except OSError:
        return f"{module}: {spec.origin}"


def load_result(directory: Path) -> StoredMap | None:
    """The last finished map, or None when it is missing, damaged or of another version."""
    try:
        (record,) = _records(directory / RESULT_FILE)
        key, text, files, symbols = record
    except (OSError, ValueError, TypeError):
        return None
    if not (isinstance(key, str) and isinstance(text, str)):
        return None
    if not (isinstance(files, int) and isinstance(symbols, int)):
        return None
    return StoredMap(key, text, files, symbols)


def save_result(directory: Path, stored: StoredMap) -> None:
    _write(directory / RESULT_FILE, [[stored.key, stored.text, stored.files, stored.symbols]])


def load_tags(directory: Path) -> dict[str, FileTags]:
    """Every file's tags from the last build; a missing, damaged or outdated cache is empty.
    Read a line at a time, names interned, so loading holds no copy of the file and one string
    per distinct name. An entry of the wrong shape is left out (parsed again), never trusted."""
    tags: dict[str, FileTags] = {}
    try:
        for record in _records(directory / TAGS_FILE):
            if isinstance(record, list) and len(record) == len(TAGS_SHAPE) + 1:
                rel, *fields = record
                if isinstance(rel, str) and (entry := _tags_of(fields)) is not None:
                    tags[rel] = entry
    except (OSError, ValueError, TypeError):
        return {}
    return tags


def _tags_of(fields: list[Any]) -> FileTags | None:
    """A cache entry of the right shape as FileTags. Only the shape is checked: the checksum
    says the file is what `save_tags` wrote (a name that is not a string fails `intern`)."""
    if not all(map(isinstance, fields, TAGS_SHAPE)):
        return None
    file_stamp, names, rows, signatures, refs = fields
    if len(names) != len(rows):
        return None
    intern = sys.intern
    return FileTags(
        file_stamp,
        [intern(name) for name in names],
        rows,
        signatures,
        {intern(name): count for name, count in refs.items()},
    )


def save_tags(directory: Path, tags: dict[str, FileTags], *, outdated: int) -> None:
    """Write every file's tags, once more than STALE_TAGS of the file on disk is `outdated`."""
    if outdated <= len(tags) * STALE_TAGS:
        return
    _write(
        directory / TAGS_FILE,
        ([rel, t.stamp, t.names, t.rows, t.signatures, t.refs] for rel, t in tags.items()),
    )


def _records(path: Path) -> Iterator[Any]:
    """Each record of a cache file, parsed as it is read; raises ValueError at the end unless
    the file is of this version and its last line is the checksum of all before it, so a
    caller keeps nothing of a damaged, truncated or outdated cache."""
    with path.open("rb") as lines:
        header = next(lines, b"")
        if header != HEADER:
            raise ValueError("another version")
        checksum = zlib.crc32(header)
        for line in lines:
            if not line.startswith(b"["):
                if line != b"%08x\n" % checksum or lines.read(1):
                    raise ValueError("damaged")
                return
            checksum = zlib.crc32(line, checksum)
            yield json.loads(line)
    raise ValueError("truncated")


def _write(path: Path, records: Iterable[object]) -> None:
    """Write a private temporary file a record a line, then rename it over `path`, so a crash
    or a concurrent session never leaves half a cache; one that cannot be written only costs
    time. Lines are ASCII JSON, which never holds a raw newline."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(partial, flags, 0o600), "wb") as out:
            out.write(HEADER)
            checksum = zlib.crc32(HEADER)
            for record in records:
                line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
                checksum = zlib.crc32(line, checksum)
                out.write(line)
            out.write(b"%08x\n" % checksum)
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
