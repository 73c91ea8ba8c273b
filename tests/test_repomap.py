"""The repository map over real files: ranking, the token budget, the cache, and files it skips."""

from __future__ import annotations

import os
import stat
import sys
import zlib
from pathlib import Path

import pytest

from qwen_agent_cli.mapcache import HEADER, RESULT_FILE, TAGS_FILE
from qwen_agent_cli.repomap import RepoMap, build_map

SOURCES = {
    "shop/money.py": """\
from decimal import Decimal


class Money(Decimal):
    def rounded(self):
        return round(self, 2)


def average_price(prices):
    return Money(sum(prices) / len(prices))


def _unused_helper():
    return None
""",
    "shop/cart.py": """\
from shop.money import Money, average_price


class Cart:
    def total(self, prices):
        return Money(sum(prices)).rounded()

    def mean(self, prices):
        return average_price(prices)
""",
    "shop/invoice.py": """\
from shop.cart import Cart
from shop.money import Money, average_price


def invoice_line(prices):
    return Money(average_price(prices)), Cart()
""",
    "shop/report.py": """\
from shop.money import Money, average_price


def summary(prices):
    return f"{average_price(prices)} of {Money(len(prices))}"
""",
    "shop/lonely.py": """\
def nobody_calls_this():
    return 42
""",
    "web/format.ts": """\
export interface PriceTag {
  label: string;
}

export function formatPrice(amount: number): PriceTag {
  return { label: amount.toFixed(2) };
}
""",
    "web/app.ts": """\
import { formatPrice, PriceTag } from "./format";

export class App {
  render(amounts: number[]): PriceTag[] {
    return amounts.map((amount) => formatPrice(amount));
  }
}
""",
    "server/server.go": """\
package server

import "context"

type Server struct {
\taddr string
}

func (s *Server) Run(ctx context.Context) error {
\treturn nil
}
""",
    "server/main.go": """\
package server

import "context"

func Start() error {
\tserver := &Server{addr: ":8080"}
\treturn server.Run(context.Background())
}
""",
}
FILES = list(SOURCES)
EXPECTED = """\
shop/money.py
    class Money(Decimal):
        def rounded(self):
    def average_price(prices):
    def _unused_helper():
web/format.ts
    export interface PriceTag {
    export function formatPrice(amount: number): PriceTag {
server/server.go
    type Server struct {
    func (s *Server) Run(ctx context.Context) error {
shop/cart.py
    class Cart:
        def total(self, prices):
        def mean(self, prices):
shop/invoice.py
    def invoice_line(prices):
shop/report.py
    def summary(prices):
shop/lonely.py
    def nobody_calls_this():
web/app.ts
    export class App {
      render(amounts: number[]): PriceTag[] {
server/main.go
    func Start() error {
"""
SYMBOLS = 17


def words(text: str) -> int:
    """A counter unlike the default one, to show the budget is kept by the caller's measure."""
    return len(text.split())


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop-repo"
    for rel, text in SOURCES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_most_referenced_files_and_symbols_come_first(shop: Path):
    assert build_map(shop, FILES) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)


def test_a_small_budget_keeps_the_most_referenced_symbols(shop: Path):
    repo_map = build_map(shop, FILES, budget_tokens=12, count_tokens=words)

    assert repo_map == RepoMap(
        "shop/money.py\n    def average_price(prices):\n"
        "web/format.ts\n    export interface PriceTag {\n",
        len(FILES),
        0,
        2,
    )


@pytest.mark.parametrize("budget", [0, 1, 5, 17, 40, 2000])
def test_the_map_never_exceeds_the_budget(shop: Path, budget: int):
    for count in (words, len):
        repo_map = build_map(shop, FILES, budget_tokens=budget, count_tokens=count)
        assert count(repo_map.text) <= budget
        assert set(repo_map.text.splitlines()) <= set(EXPECTED.splitlines())


def test_a_second_build_reuses_the_map_without_parsing(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = build_map(shop, FILES, cache_dir=cache)
    (cache / TAGS_FILE).unlink()  # the unchanged map needs no file's tags at all
    second = build_map(shop, FILES, cache_dir=cache)

    assert first == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
    assert second == RepoMap(EXPECTED, 0, len(FILES), SYMBOLS, reused=True)


def later(path: Path) -> None:
    """Move a file's mtime on, as a later edit would on a coarse-clock file system."""
    when = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(when, when))


def test_only_a_changed_file_is_parsed_again(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    lonely = shop / "shop/lonely.py"
    lonely.write_text("def renamed_function():\n    return 43\n")
    later(lonely)

    repo_map = build_map(shop, FILES, cache_dir=cache)

    expected = EXPECTED.replace("def nobody_calls_this():", "def renamed_function():")
    assert repo_map == RepoMap(expected, 1, len(FILES) - 1, SYMBOLS)
    assert build_map(shop, FILES, cache_dir=cache) == RepoMap(
        expected, 0, len(FILES), SYMBOLS, reused=True
    )


def test_a_few_changes_leave_the_tags_file_to_be_rewritten_later(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Below the stale share the changed file's tags are not written back; the next build that
    cannot reuse the map parses it again, and past the share the file is rewritten."""
    monkeypatch.setattr("qwen_agent_cli.mapcache.STALE_TAGS", 0.2)  # 1 of 9 files may be stale
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    parsed = []
    for rel in ("shop/lonely.py", "shop/report.py", "shop/invoice.py"):
        (shop / rel).write_text((shop / rel).read_text() + "\n# edited\n")
        later(shop / rel)
        parsed.append(build_map(shop, FILES, cache_dir=cache).files_parsed)

    assert parsed == [1, 2, 1]


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    lonely = shop / "shop/lonely.py"
    before = lonely.stat()
    lonely.write_text("def nobody_calls_that():\n    return 42\n")  # the same size
    os.utime(lonely, ns=(before.st_atime_ns, before.st_mtime_ns))

    repo_map = build_map(shop, FILES, cache_dir=cache)

    expected = EXPECTED.replace("def nobody_calls_this():", "def nobody_calls_that():")
    assert repo_map == RepoMap(expected, 1, len(FILES) - 1, SYMBOLS)


def test_a_deleted_file_leaves_the_map(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (shop / "shop/lonely.py").unlink()

    repo_map = build_map(shop, FILES, cache_dir=cache)

    expected = EXPECTED.replace("shop/lonely.py\n    def nobody_calls_this():\n", "")
    assert repo_map == RepoMap(expected, 0, len(FILES) - 1, SYMBOLS - 1)


def test_a_new_file_joins_the_map(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (shop / "shop/extra.py").write_text("def brand_new_function():\n    return 1\n")

    repo_map = build_map(shop, [*FILES, "shop/extra.py"], cache_dir=cache)

    assert repo_map == RepoMap(
        f"{EXPECTED}shop/extra.py\n    def brand_new_function():\n", 1, len(FILES), SYMBOLS + 1
    )


def test_a_new_budget_or_counter_ranks_again_from_the_cached_tags(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)

    smaller = build_map(shop, FILES, cache_dir=cache, budget_tokens=12, count_tokens=words)
    by_length = build_map(shop, FILES, cache_dir=cache, budget_tokens=12, count_tokens=len)

    assert smaller == RepoMap(
        "shop/money.py\n    def average_price(prices):\n"
        "web/format.ts\n    export interface PriceTag {\n",
        0,
        len(FILES),
        2,
    )
    assert by_length == RepoMap("", 0, len(FILES), 0)


def test_a_grammar_installed_later_maps_its_files(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "cache"
    with monkeypatch.context() as without_go:
        without_go.setitem(sys.modules, "tree_sitter_go", None)
        assert "server/" not in build_map(shop, FILES, cache_dir=cache).text

    assert build_map(shop, FILES, cache_dir=cache) == RepoMap(EXPECTED, 2, len(FILES) - 2, SYMBOLS)


def test_files_behind_a_linked_directory_are_never_mapped(shop: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("def leaked_symbol_name():\n    pass\n")
    (shop / "linked").symlink_to(outside)
    (shop / "alias.py").symlink_to(shop / "shop/money.py")
    cache = tmp_path / "cache"
    files = [*FILES, "linked/secret.py", "alias.py"]

    assert build_map(shop, files, cache_dir=cache) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
    # A mapped directory swapped for a link later is not served from the cache either.
    (shop / "server").rename(outside / "server")
    (shop / "server").symlink_to(outside / "server")
    repo_map = build_map(shop, files, cache_dir=cache)
    assert "server/" not in repo_map.text
    assert (repo_map.files_parsed, repo_map.files_cached) == (0, len(FILES) - 2)


def test_the_cache_is_private(shop: Path, tmp_path: Path):
    cache = tmp_path / "data" / "cache"
    build_map(shop, FILES, cache_dir=cache)

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (cache, *cache.iterdir())}
    assert modes == {"cache": 0o700, TAGS_FILE: 0o600, RESULT_FILE: 0o600}


def cache_file(*lines: bytes, header: bytes = HEADER) -> bytes:
    """A cache file whose header and checksum are right, to test what lies between them."""
    body = header + b"".join(line + b"\n" for line in lines)
    return body + b"%08x\n" % zlib.crc32(body)


DAMAGE = [
    b"",
    b"not json",
    bytes(range(256)),
    HEADER,
    HEADER + b"00000000\n",
    cache_file(b"{}"),
    cache_file(b"[1, 2"),
    cache_file(b'["shop/money.py", 3]'),
    cache_file(b'["shop/money.py", 1, [], [], "", {}]'),
    cache_file(b'["shop/money.py", "1:2:3:4", ["a"], [], "", {}]'),
    cache_file(b'["shop/money.py", "1:2:3:4", [5], [1], "", {}]'),
    cache_file(b'["key", "text", "1", 0]'),
    cache_file(b'["key", "text", 1, 0]', b'["key", "text", 1, 0]'),
    cache_file(b'["shop/money.py", 1, 0, [], [], [], {}]', header=b"[1]\n"),
    cache_file(b'["key", "text", 1, 0]') + b"trailing",
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_corrupt_cache_is_ignored_and_rewritten(shop: Path, tmp_path: Path, damage: bytes):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (cache / TAGS_FILE).write_bytes(damage)
    (cache / RESULT_FILE).write_bytes(damage)

    rebuilt = build_map(shop, FILES, cache_dir=cache)
    again = build_map(shop, FILES, cache_dir=cache)

    assert (rebuilt, again) == (
        RepoMap(EXPECTED, len(FILES), 0, SYMBOLS),
        RepoMap(EXPECTED, 0, len(FILES), SYMBOLS, reused=True),
    )


@pytest.mark.parametrize("damage", DAMAGE[:5])
def test_a_corrupt_result_falls_back_on_the_tags(shop: Path, tmp_path: Path, damage: bytes):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (cache / RESULT_FILE).write_bytes(damage)

    assert build_map(shop, FILES, cache_dir=cache) == RepoMap(EXPECTED, 0, len(FILES), SYMBOLS)


def test_a_truncated_cache_is_ignored(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    for name in (TAGS_FILE, RESULT_FILE):
        data = (cache / name).read_bytes()
        (cache / name).write_bytes(data[: len(data) // 2])

    assert build_map(shop, FILES, cache_dir=cache) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)


def test_binary_huge_unknown_and_missing_files_are_skipped(shop: Path, tmp_path: Path):
    junk = {
        "shop/blob.py": bytes(range(256)) * 8,
        "web/bundle.js": b"function big() {}\n" * 60_000,
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        "README": b"def not_code():\n",
        "shop/notes.txt": b"class NotCode:\n",
    }
    for rel, data in junk.items():
        (shop / rel).parent.mkdir(parents=True, exist_ok=True)
        (shop / rel).write_bytes(data)
    files = [*FILES, *junk, "shop/deleted.py", "shop"]
    cache = tmp_path / "cache"

    assert build_map(shop, files, cache_dir=cache) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
    assert build_map(shop, files, cache_dir=cache) == RepoMap(
        EXPECTED, 0, len(FILES), SYMBOLS, reused=True
    )


def test_broken_source_still_yields_what_parses(tmp_path: Path):
    (tmp_path / "broken.py").write_bytes(b"def fine(a):\n    return a\n\n\xff\xfe def ((((:\n")

    assert build_map(tmp_path, ["broken.py"]) == RepoMap("broken.py\n    def fine(a):\n", 1, 0, 1)


def test_without_tree_sitter_the_map_is_empty(shop: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "tree_sitter", None)

    assert build_map(shop, FILES) == RepoMap("", 0, 0, 0)


def test_a_missing_grammar_leaves_out_only_its_language(
    shop: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "tree_sitter_go", None)

    repo_map = build_map(shop, FILES)

    assert "server/" not in repo_map.text
    assert repo_map.files_parsed == len(FILES) - 2
    assert repo_map.text.startswith("shop/money.py\n    class Money(Decimal):\n")


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        (
            "src/geometry.rs",
            "#[derive(Debug)]\npub struct Point {\n    x: f64,\n}\n\n"
            "impl Point {\n    pub fn norm(&self) -> f64 {\n        self.x\n    }\n}\n",
            "    pub struct Point {\n    impl Point {\n        pub fn norm(&self) -> f64 {\n",
        ),
        (
            "src/Shape.java",
            "package geo;\n\npublic class Shape extends Base {\n    @Override\n"
            "    public double area(int scale) {\n        return 0;\n    }\n}\n",
            "    public class Shape extends Base {\n        public double area(int scale) {\n",
        ),
        (
            "src/list.c",
            "#define MAX 8\n\ntypedef struct node {\n    int value;\n} node_t;\n\n"
            "int\nlength(node_t *head)\n{\n    return 0;\n}\n",
            "    #define MAX 8\n    typedef struct node {\n    } node_t;\n"
            "    length(node_t *head)\n",
        ),
        (
            "src/shape.cpp",
            "namespace geo {\nclass Circle : public Shape {\n public:\n"
            "  double area() const;\n};\ndouble Circle::area() const { return 1; }\n}\n",
            "    namespace geo {\n    class Circle : public Shape {\n      double area() const;\n"
            "    double Circle::area() const { return 1; }\n",
        ),
        (
            "src/view.jsx",
            "export const Button = (props) => <b>{props.label}</b>;\n"
            "function* ids() {\n  yield 1;\n}\n",
            "    export const Button = (props) => <b>{props.label}</b>;\n    function* ids() {\n",
        ),
    ],
)
def test_signatures_in_other_languages(tmp_path: Path, rel: str, source: str, expected: str):
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_text(source)

    repo_map = build_map(tmp_path, [rel])

    assert repo_map.text == f"{rel}\n{expected}"


def test_an_unwritable_cache_only_costs_time(shop: Path, tmp_path: Path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")

    assert build_map(shop, FILES, cache_dir=blocked) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
    assert build_map(shop, FILES, cache_dir=blocked) == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
