"""The instruction files a session starts with: `AGENTS.md`, `QWEN.md` and `CLAUDE.md` from the
repository root down to the working directory, the user's own `AGENTS.md`, and the files they
import with `@path`. Read once, when a session's snapshot is taken.

Repository files are read through the guard only (regular files inside the repository; a link
out is skipped). Imports nothing above `guard` and `tokens`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.guard import covered, read_capped, real_path
from qwen_agent_cli.tokens import estimate_tokens

INSTRUCTION_FILES = ("AGENTS.md", "QWEN.md", "CLAUDE.md")
USER_FILE = "AGENTS.md"
USER_LABEL = "~user config"
"""How the user-level file is shown: its directory is the user's, not the repository's."""
IMPORT_DEPTH = 5
TOTAL_LIMIT = 100_000
"""Bytes of instructions in all, imports included: past it a file is cut, with a note."""
IMPORT = re.compile(r"(?<![\w@`])@((?:\.{0,2}/)?[\w.-]+(?:/[\w.-]+)*)")
"""`@docs/style.md` as a word of its own (not an e-mail address, not inside backticks)."""
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """One file taken into the session's context, as the user is shown it."""

    path: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Instructions:
    files: tuple[LoadedFile, ...] = ()
    text: str = ""
    """Each file as `PATH:` then its text, in the order read, separated by blank lines."""
    notes: tuple[str, ...] = ()
    """What was cut, refused or not followed (also said in `text`, where it happened)."""

    def listing(self) -> list[dict[str, object]]:
        """The files as the session's settings and the `session` event carry them."""
        return [{"path": f.path, "tokens": f.tokens} for f in self.files]


@dataclass(slots=True)
class _Reader:
    """The state of one load: what was read (by real path and by content), what is left of the
    size budget, and the sections and notes so far."""

    budget: int
    secrets: Sequence[Path] = ()
    """Never read, even inside the repository (a workspace that is the home directory)."""
    seen_paths: set[Path] = field(default_factory=set)
    seen_content: set[str] = field(default_factory=set)
    sections: list[str] = field(default_factory=list)
    files: list[LoadedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.sections.append(f"[qac: {text}]")

    def read(
        self, root: Path, name: Path, label: str, *, chain: tuple[Path, ...], importer: str = ""
    ) -> None:
        """Read `root/name` (and, depth first, what it imports) unless it was read already."""
        resolved = real_path(root / name)
        if resolved in chain:
            self.note(f"{importer} imports {label}, which imports it back: cycle not followed")
            return
        if resolved in self.seen_paths:
            return
        if covered(resolved, self.secrets):
            self.note(f"{label} refused: it holds credentials or qac's own files")
            return
        if self.budget <= 0:
            self.note(f"{label} not loaded: instructions are limited to {TOTAL_LIMIT} bytes")
            return
        try:
            data = read_capped(root, name, self.budget)
        except ToolError as exc:
            if importer or resolved.exists():
                self.note(f"{label} skipped: {str(exc).split(': ', 1)[-1]}")
            return
        self.seen_paths.add(resolved)
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.seen_content:
            return  # a copy of a file already read (CLAUDE.md beside an identical AGENTS.md)
        self.seen_content.add(digest)
        cut = len(data) > self.budget
        data = data[: self.budget]
        self.budget -= len(data)
        text = data.decode("utf-8", errors="ignore" if cut else "replace").strip()
        header = f"{label} (imported by {importer})" if importer else label
        self.sections.append(f"{header}:\n{text}")
        self.files.append(LoadedFile(label, estimate_tokens(text)))
        if cut:
            self.note(f"{label} cut here: instructions are limited to {TOTAL_LIMIT} bytes")
            return
        if len(chain) >= IMPORT_DEPTH:
            if imports_in(text):
                self.note(f"imports in {label} not followed: they nest deeper than {IMPORT_DEPTH}")
            return
        for target in imports_in(text):
            self._import(root, name, label, target, (*chain, resolved))

    def _import(
        self, root: Path, importer: Path, label: str, target: str, chain: tuple[Path, ...]
    ) -> None:
        candidate = root / importer.parent / target  # an absolute target stays absolute
        if not candidate.exists() and not candidate.is_symlink():
            return  # prose such as `@someone`: nothing to import
        inside = real_path(candidate)
        if not inside.is_relative_to(real_path(root)):
            self.note(f"{label} imports @{target}: refused, it leads outside the workspace")
            return
        shown = _label(label, inside.relative_to(real_path(root)))
        self.read(root, inside.relative_to(real_path(root)), shown, chain=chain, importer=label)


def _label(importer_label: str, relative: Path) -> str:
    if importer_label.startswith(USER_LABEL + "/"):
        return f"{USER_LABEL}/{relative}"
    return str(relative)


def imports_in(text: str) -> list[str]:
    """The `@path` references of a file, outside fenced code blocks, in order, once each."""
    found: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for match in IMPORT.finditer(line):
            target = match.group(1).rstrip(".")
            if target and target not in found:
                found.append(target)
    return found


def load(
    root: Path,
    workdir: Path,
    user_dir: Path | None = None,
    *,
    secrets: Sequence[Path] = (),
    limit: int = TOTAL_LIMIT,
) -> Instructions:
    """The user's AGENTS.md, then each directory's files from `root` down to `workdir`: read
    once each (a link or a copy of one already read is skipped), imports followed in place.
    `secrets` (credentials, qac's own files) are never read from the repository's side."""
    root, workdir = root.resolve(), workdir.resolve()
    reader = _Reader(budget=limit)
    if user_dir is not None and (user_dir / USER_FILE).exists():
        # The user's own file sits among qac's private files: it is read before they are barred.
        # A link (a dotfiles checkout) is the user's to make: its target's folder is the root.
        user_file = real_path(user_dir / USER_FILE)
        label = f"{USER_LABEL}/{USER_FILE}"
        reader.read(user_file.parent, Path(user_file.name), label, chain=())
    # As the Workspace does: a secret folder that holds the repository is where the user works.
    reader.secrets = [real_path(p) for p in secrets if not root.is_relative_to(real_path(p))]
    directories = [Path()]
    if workdir != root and workdir.is_relative_to(root):
        parts = workdir.relative_to(root).parts
        directories += [Path(*parts[: i + 1]) for i in range(len(parts))]
    for directory in directories:
        for name in INSTRUCTION_FILES:
            path = directory / name
            if (root / path).exists() or (root / path).is_symlink():
                reader.read(root, path, str(path), chain=())
    return Instructions(tuple(reader.files), "\n\n".join(reader.sections), tuple(reader.notes))


def describe(files: list[dict[str, object]]) -> str:
    """One line for the banner: which files were loaded and their tokens."""
    if not files:
        return "no instruction files (AGENTS.md, QWEN.md, CLAUDE.md); /init writes an AGENTS.md"
    shown = ", ".join(f"{f.get('path')} ({f.get('tokens')} tokens)" for f in files)
    return f"instructions: {shown}"
