"""The repository map: tree-sitter definitions and references, ranked, fitted to a token budget.

Its cache lives in `mapcache`. Imports tree-sitter lazily (CLI start-up time matters), and never
sqlite3, subprocess, git, openai, rich or typer."""

from __future__ import annotations

import heapq
import importlib
import math
import operator
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_agent_cli import mapcache
from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.guard import read_capped
from qwen_agent_cli.mapcache import FileTags, StoredMap

if TYPE_CHECKING:
    from tree_sitter import Parser, Query

DEFAULT_BUDGET_TOKENS = 2000
MAX_FILE_BYTES = 1_000_000
MAX_SIGNATURE_CHARS = 120
DAMPING = 0.85
ITERATIONS = 8


def _named(kinds: str, name: str) -> str:
    """One pattern per node kind, each capturing that kind's `name` field as a definition."""
    return "".join(f"({kind} name: ({name}) @name)\n" for kind in kinds.split())


_PYTHON = _named("class_definition function_definition", "identifier") + (
    "(module (expression_statement (assignment left: (identifier) @name)))"
)
_JS = (
    _named("function_declaration generator_function_declaration", "identifier")
    + _named("method_definition", "property_identifier")
    + """
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])
(program (lexical_declaration (variable_declarator name: (identifier) @name)))
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @name))))
"""
)
_JAVASCRIPT = _JS + _named("class_declaration", "identifier")
_TS = (
    _JS
    + _named(
        "class_declaration abstract_class_declaration interface_declaration type_alias_declaration",
        "type_identifier",
    )
    + _named("method_signature abstract_method_signature", "property_identifier")
    + _named("enum_declaration function_signature", "identifier")
)
_GO = (
    _named("function_declaration", "identifier")
    + _named("method_declaration", "field_identifier")
    + _named("type_spec", "type_identifier")
    + "(source_file (const_declaration (const_spec name: (identifier) @name)))"
)
_RUST = (
    _named("function_item function_signature_item mod_item macro_definition", "identifier")
    + _named("const_item static_item", "identifier")
    + _named("struct_item enum_item union_item trait_item type_item", "type_identifier")
    + "(impl_item type: [(type_identifier) @name (generic_type type: (type_identifier) @name)])"
)
_JAVA = _named(
    "class_declaration interface_declaration enum_declaration record_declaration"
    " annotation_type_declaration method_declaration constructor_declaration",
    "identifier",
)
_C = _named("preproc_def preproc_function_def", "identifier") + (
    """
(function_declarator declarator: [(identifier) (field_identifier)] @name)
(struct_specifier name: (type_identifier) @name body: (_))
(union_specifier name: (type_identifier) @name body: (_))
(enum_specifier name: (type_identifier) @name body: (_))
(type_definition declarator: (type_identifier) @name)
"""
)
_CPP = (
    _C
    + _named("namespace_definition", "namespace_identifier")
    + """
(function_declarator declarator: (qualified_identifier name: (identifier) @name))
(class_specifier name: (type_identifier) @name body: (_))
"""
)
_IDENTIFIERS = "(identifier) (field_identifier) (type_identifier)"
_JS_REFS = "(identifier) (property_identifier)"
_TS_REFS = "(identifier) (property_identifier) (type_identifier)"


@dataclass(frozen=True, slots=True)
class _Grammar:
    module: str
    function: str
    names: str
    """A query whose `@name` captures are the names of definitions."""
    refs: str
    """The node types whose text counts as a reference."""


GRAMMARS = {
    "python": _Grammar("tree_sitter_python", "language", _PYTHON, "(identifier)"),
    "javascript": _Grammar("tree_sitter_javascript", "language", _JAVASCRIPT, _JS_REFS),
    "typescript": _Grammar("tree_sitter_typescript", "language_typescript", _TS, _TS_REFS),
    "tsx": _Grammar("tree_sitter_typescript", "language_tsx", _TS, _TS_REFS),
    "go": _Grammar("tree_sitter_go", "language", _GO, _IDENTIFIERS),
    "rust": _Grammar("tree_sitter_rust", "language", _RUST, _IDENTIFIERS),
    "java": _Grammar("tree_sitter_java", "language", _JAVA, "(identifier) (type_identifier)"),
    "c": _Grammar("tree_sitter_c", "language", _C, _IDENTIFIERS),
    "cpp": _Grammar("tree_sitter_cpp", "language", _CPP, f"{_IDENTIFIERS} (namespace_identifier)"),
}
EXTENSIONS = {
    extension: language
    for language, extensions in {
        "python": ".py .pyi",
        "javascript": ".js .jsx .mjs .cjs",
        "typescript": ".ts .mts .cts",
        "tsx": ".tsx",
        "go": ".go",
        "rust": ".rs",
        "java": ".java",
        "c": ".c .h",
        "cpp": ".cc .cpp .cxx .hh .hpp .hxx",
    }.items()
    for extension in extensions.split()
}


@dataclass(frozen=True, slots=True)
class RepoMap:
    text: str
    """One block per file, most important first: the path, then indented signature lines."""
    files_parsed: int
    """Source files parsed by this call."""
    files_cached: int
    """Source files whose definitions and references came from the cache."""
    symbols: int
    """Signature lines in `text`."""
    reused: bool = False
    """Served whole from the cache, as no mapped file changed: no file's tags even loaded."""


def estimate_tokens(text: str) -> int:
    """Four characters a token: close enough when no tokenizer is at hand."""
    return len(text) // 4


def build_map(
    root: Path,
    files: Sequence[str],
    *,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    cache_dir: Path | None = None,
    count_tokens: Callable[[str], int] | None = None,
    blobs: Mapping[str, str] | None = None,
) -> RepoMap:
    """Map the symbols the rest of `files` refers to most, so the model knows the code at once.
    `blobs`: the blob ids of files git just found unchanged, known by content without a stat.
    With a cache, when no mapped file changed nothing is parsed or ranked."""
    count_tokens = count_tokens or estimate_tokens
    sources = mapcache.scan(root, files, EXTENSIONS, MAX_FILE_BYTES, blobs or {})
    cached: dict[str, FileTags] = {}
    key = ""
    if cache_dir is not None:
        modules = {GRAMMARS[language].module for _, language, _ in sources}
        key = mapcache.key(root, sources, budget_tokens, count_tokens, modules)
        stored = mapcache.load_result(cache_dir)
        if stored is not None and stored.key == key:
            return RepoMap(stored.text, 0, stored.files, stored.symbols, reused=True)
        cached = mapcache.load_tags(cache_dir)
    grammars: dict[str, tuple[Parser, Query] | None] = {}
    tags: dict[str, FileTags] = {}
    parsed = 0
    for rel, language, file_stamp in sources:
        entry = cached.get(rel)
        if entry is not None and entry.stamp == file_stamp:
            tags[rel] = entry
            continue
        if language not in grammars:
            grammars[language] = _load_grammar(GRAMMARS[language])
        grammar = grammars[language]
        fresh = _extract(root, rel, file_stamp, grammar) if grammar is not None else None
        if fresh is not None:
            tags[rel] = fresh
            parsed += 1
    if cache_dir is not None:
        outdated = parsed + sum(rel not in tags for rel in cached)  # changed, gone
        mapcache.save_tags(cache_dir, tags, outdated=outdated)
    cached.clear()  # entries of changed and deleted files, before ranking needs the memory
    text, symbols = _fit(tags, budget_tokens, count_tokens)
    if cache_dir is not None:
        mapcache.save_result(cache_dir, StoredMap(key, text, len(tags), symbols))
    return RepoMap(text, parsed, len(tags) - parsed, symbols)


def _load_grammar(grammar: _Grammar) -> tuple[Parser, Query] | None:
    """A missing or incompatible grammar leaves its files out of the map instead of failing."""
    try:
        from tree_sitter import Language, Parser, Query

        module = importlib.import_module(grammar.module)
        language = Language(getattr(module, grammar.function)())
        query = Query(language, f"{grammar.names}\n[{grammar.refs}] @ref")
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    return Parser(language), query


def _extract(
    root: Path, rel: str, file_stamp: str, grammar: tuple[Parser, Query]
) -> FileTags | None:
    """One parse and one query pass per file: definitions with their lines, references counted.
    Read through the guard: a regular file inside the repository, size-capped."""
    from tree_sitter import QueryCursor

    try:
        if (root / rel).lstat().st_size > MAX_FILE_BYTES:
            return None  # one known by its blob id was not looked at before
        data = read_capped(root, rel, MAX_FILE_BYTES)
    except (OSError, ToolError):
        return None
    if b"\0" in data[:8192] or len(data) > MAX_FILE_BYTES:
        return None
    parser, query = grammar
    captures = QueryCursor(query).captures(parser.parse(data).root_node)
    defs: dict[tuple[int, str], str] = {}
    for node in captures.get("name", ()):
        start, row = node.start_byte, node.start_point.row
        name = data[start : node.end_byte].decode(errors="replace")
        if (row, name) not in defs:
            line_end = data.find(b"\n", start)
            line = data[data.rfind(b"\n", 0, start) + 1 : None if line_end < 0 else line_end]
            defs[row, name] = (
                line.decode(errors="replace").rstrip().expandtabs(4)[:MAX_SIGNATURE_CHARS]
            )
    refs = Counter(data[node.start_byte : node.end_byte] for node in captures.get("ref", ()))
    ordered = sorted(defs.items())
    # Interned, as the cache loads them: a name used in thousands of files is one string.
    return FileTags(
        file_stamp,
        [sys.intern(name) for (_, name), _ in ordered],
        [row for (row, _), _ in ordered],
        "\n".join(line for _, line in ordered),
        {sys.intern(name.decode(errors="replace")): count for name, count in refs.items()},
    )


def _weight(name: str, definers: int) -> float:
    """Long compound names point at one thing; private and oft-defined ones (`_x`, `get`) don't
    (Aider's factors)."""
    weight = 1.0
    if len(name) >= 8 and ("_" in name.strip("_") or (name.lower() != name != name.upper())):
        weight *= 10
    if name.startswith("_"):
        weight *= 0.1
    if definers > 5:
        weight *= 0.1
    return weight


def _rank(tags: dict[str, FileTags]) -> tuple[list[float], dict[str, float]]:
    """PageRank over files, each linking to the definers of the names it uses (Aider), through
    the names so a step is one pass over the references. The rank of each file (in the order
    of `tags`) and the score of each name some other file uses."""
    if not tags:
        return [], {}
    definers = Counter(name for file_tags in tags.values() for name in set(file_tags.names))
    weights: dict[str, float] = {}
    ids: dict[str, int] = {}
    sources: list[list[int]] = []
    shares: list[list[float]] = []
    sending: list[int] = []
    for index, file_tags in enumerate(tags.values()):
        refs = file_tags.refs
        # Sorted, because set order varies between runs and float sums must not.
        used = sorted((refs.keys() & definers.keys()).difference(file_tags.names))
        if not used:
            continue
        sending.append(index)
        edges = []
        for name in used:
            if name not in weights:
                weights[name] = _weight(name, definers[name])
            edges.append(weights[name] * math.sqrt(refs[name]))
        total = sum(edges)
        for name, weight in zip(used, edges, strict=True):
            if name not in ids:
                ids[name] = len(sources)
                sources.append([])
                shares.append([])
            sources[ids[name]].append(index)
            shares[ids[name]].append(weight / total)
    # What each file defines that others use, so that a step gathers its rank in one sum.
    gathers = [[ids[n] for n in dict.fromkeys(t.names) if n in ids] for t in tags.values()]
    counts = [definers[name] for name in ids]
    count = len(tags)
    ranks = [1 / count] * count
    scored: list[float] = []
    for _ in range(ITERATIONS):
        scored = [
            sum(map(operator.mul, map(ranks.__getitem__, where), share)) / definer_count
            for where, share, definer_count in zip(sources, shares, counts, strict=True)
        ]
        # Rank that dangling files hold is spread evenly, as teleporting is.
        base = (1 - DAMPING * sum(map(ranks.__getitem__, sending))) / count
        ranks = [base + DAMPING * sum(map(scored.__getitem__, used)) for used in gathers]
    return ranks, dict(zip(ids, scored, strict=True))


def _fit(
    tags: dict[str, FileTags], budget_tokens: int, count_tokens: Callable[[str], int]
) -> tuple[str, int]:
    """The most definitions whose rendering `count_tokens` says fits (Aider's bisection). The
    search gallops up from a few definitions, so large renderings are never tokenized, and
    only as many of the best-scored definitions are picked out as it looks at."""
    ranks, scored = _rank(tags)
    paths = list(tags)
    by_rank = sorted(range(len(paths)), key=ranks.__getitem__, reverse=True)
    position = {paths[index]: place for place, index in enumerate(by_rank)}
    total = sum(len(dict.fromkeys(file_tags.names)) for file_tags in tags.values())
    best: list[tuple[float, str, str]] = []

    def best_first(count: int) -> list[tuple[float, str, str]]:
        """The `count` best (file, name) pairs, ties in rank order: what a stable sort of all
        would start with, without sorting (or holding) half a million pairs."""
        nonlocal best
        if count > len(best):
            pairs = (
                (scored.get(name, 0.0), paths[index], name)
                for index in by_rank
                for name in dict.fromkeys(tags[paths[index]].names)
            )
            best = heapq.nlargest(max(count, 2 * len(best), 256), pairs, key=operator.itemgetter(0))
        return best[:count]

    split: dict[str, tuple[list[str], list[int]]] = {}
    """Each shown file's signature lines and their parents, worked out once."""
    fitting: dict[int, tuple[str, int]] = {0: ("", 0)}

    def fits(count: int) -> bool:
        names: dict[str, set[str]] = defaultdict(set)
        for _, rel, name in best_first(count):
            names[rel].add(name)
        lines: list[str] = []
        for rel in sorted(names, key=position.__getitem__):
            file_tags, wanted = tags[rel], names[rel]
            if rel not in split:
                signatures = file_tags.lines()
                split[rel] = signatures, _parents(signatures)
            signatures, parents = split[rel]
            shown: dict[int, str] = {}
            for index, name in enumerate(file_tags.names):
                at = index if name in wanted else -1
                # An enclosing class or impl is shown with its members, for context.
                while at >= 0 and file_tags.rows[at] not in shown:
                    shown[file_tags.rows[at]] = signatures[at]
                    at = parents[at]
            lines.append(rel)
            lines.extend(f"    {shown[row]}" for row in sorted(shown))
        text = "".join(f"{line}\n" for line in lines)
        if count_tokens(text) > budget_tokens:
            return False
        fitting[count] = (text, len(lines) - len(names))
        return True

    low, high = 0, total + 1
    step = 16
    while low + step < high and fits(low + step):
        low, step = low + step, step * 2
    high = min(high, low + step)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return fitting[low]


def _parents(lines: list[str]) -> list[int]:
    """Each definition's enclosing one (-1 at top level), by indentation. Only a line that opens
    a block (`:`, `{`) encloses, so a constant above a nested class is not its parent."""
    parents: list[int] = []
    stack: list[tuple[int, int]] = []
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][1] >= indent:
            stack.pop()
        parents.append(stack[-1][0] if stack else -1)
        if line.endswith((":", "{")):
            stack.append((index, indent))
    return parents
