"""The repository map over real files: ranking, the token budget, the cache, and files it skips."""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import pytest

from qwen_agent_cli.repomap import CACHE_FILE, RepoMap, build_map

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


def test_a_second_build_reads_everything_from_the_cache(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = build_map(shop, FILES, cache_dir=cache)
    second = build_map(shop, FILES, cache_dir=cache)

    assert first == RepoMap(EXPECTED, len(FILES), 0, SYMBOLS)
    assert second == RepoMap(EXPECTED, 0, len(FILES), SYMBOLS)


def test_only_a_changed_file_is_parsed_again(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    lonely = shop / "shop/lonely.py"
    lonely.write_text("def renamed_function():\n    return 43\n")
    later = lonely.stat().st_mtime_ns + 1_000_000_000
    os.utime(lonely, ns=(later, later))

    repo_map = build_map(shop, FILES, cache_dir=cache)

    expected = EXPECTED.replace("def nobody_calls_this():", "def renamed_function():")
    assert repo_map == RepoMap(expected, 1, len(FILES) - 1, SYMBOLS)


def test_a_deleted_file_leaves_the_map(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (shop / "shop/lonely.py").unlink()

    repo_map = build_map(shop, FILES, cache_dir=cache)

    expected = EXPECTED.replace("shop/lonely.py\n    def nobody_calls_this():\n", "")
    assert repo_map == RepoMap(expected, 0, len(FILES) - 1, SYMBOLS - 1)


def checksummed(body: bytes) -> bytes:
    """A cache file whose checksum is right, to test what lies behind it."""
    return b"%08x\n" % zlib.crc32(body) + body


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not json",
        bytes(range(256)),
        b"00000000\n[1, {}]",
        checksummed(b"{}"),
        checksummed(b"[1, []]"),
        checksummed(b'[1, {"shop/money.py": 3}]'),
        checksummed(b'[1, {"shop/money.py": ["big", 0, [], [], [], {}]}]'),
        checksummed(b'[99, {"shop/money.py": [1, 0, [], [], [], {}]}]'),
    ],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(shop: Path, tmp_path: Path, damage: bytes):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    (cache / CACHE_FILE).write_bytes(damage)

    rebuilt = build_map(shop, FILES, cache_dir=cache)
    again = build_map(shop, FILES, cache_dir=cache)

    assert (rebuilt, again) == (
        RepoMap(EXPECTED, len(FILES), 0, SYMBOLS),
        RepoMap(EXPECTED, 0, len(FILES), SYMBOLS),
    )


def test_a_truncated_cache_is_ignored(shop: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    build_map(shop, FILES, cache_dir=cache)
    data = (cache / CACHE_FILE).read_bytes()
    (cache / CACHE_FILE).write_bytes(data[: len(data) // 2])

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
    assert build_map(shop, files, cache_dir=cache) == RepoMap(EXPECTED, 0, len(FILES), SYMBOLS)


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
