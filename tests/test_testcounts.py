"""Test counts from real runner outputs in tests/golden/runners (`*.sample.txt` are written by
hand from the runner's documented format, the rest were captured). expected.json is checked by
hand against each output, so it is never regenerated from the parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_agent_cli.testcounts import describe_counts, parse_test_counts, strip_ansi
from qwen_agent_cli.tools.shell import describe_counts as shell_describe_counts
from qwen_agent_cli.tools.shell import parse_test_counts as shell_parse_test_counts

RUNNERS = Path(__file__).parent / "golden" / "runners"
EXPECTED: dict[str, dict[str, int]] = json.loads((RUNNERS / "expected.json").read_text())


def output(name: str) -> str:
    return (RUNNERS / name).read_text()


def test_every_output_has_expected_counts():
    assert sorted(p.name for p in RUNNERS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_from_runner_output(name: str):
    assert parse_test_counts(output(name), 1) == EXPECTED[name]


@pytest.mark.parametrize("name", ["jest_failed", "vitest_failed", "mocha_failed", "node_test_spec"])
def test_colour_does_not_change_counts(name: str):
    coloured = output(f"{name}_color.txt")
    assert "\x1b[" in coloured
    assert parse_test_counts(coloured, 1) == parse_test_counts(output(f"{name}.txt"), 1)
    assert "\x1b" not in strip_ansi(coloured)


def test_cargo_counts_every_test_binary_and_the_doc_tests():
    """The bug of issue 13: only the doc-tests' last `test result:` line was read."""
    assert parse_test_counts(output("cargo_pass.txt"), 0) == {"passed": 6, "skipped": 1}


def test_summaries_of_several_runners_add_up():
    both = output("pytest_quiet.txt") + output("cargo_pass.txt") + output("jest_pass.txt")
    assert parse_test_counts(both, 1) == {"passed": 9, "failed": 1, "skipped": 3, "errors": 1}


def test_a_runner_run_twice_adds_up():
    twice = output("pytest_pass.txt") + output("pytest_quiet.txt")
    assert parse_test_counts(twice, 1) == {"passed": 4, "failed": 1, "skipped": 2, "errors": 1}


def test_surefire_counts_module_totals_not_class_lines_as_well():
    text = output("surefire_failed.sample.txt")
    assert text.count("Tests run:") == 3
    assert parse_test_counts(text, 1) == {"passed": 4, "failed": 1, "skipped": 1, "errors": 1}


def test_surefire_without_its_results_block_sums_class_lines():
    text = output("surefire_failed.sample.txt").split("[INFO] Results:")[0]
    assert parse_test_counts(text, 1) == {"passed": 4, "failed": 1, "skipped": 1, "errors": 1}


def test_go_without_v_leaves_passes_unknown():
    assert parse_test_counts(output("go_test_pass.sample.txt"), 0) == {}
    assert parse_test_counts(output("go_test.sample.txt"), 1) == {"failed": 2}


def test_raw_tap_without_closing_comments_counts_ok_lines():
    tap = "TAP version 13\n1..4\nok 1 a\nnot ok 2 b\nok 3 c # SKIP later\nok 4 d\n"
    assert parse_test_counts(tap, 1) == {"passed": 2, "failed": 1, "skipped": 1}


def test_pytest_and_unittest_edge_cases():
    assert parse_test_counts("===== no tests ran in 0.01s =====", 5) == {"passed": 0}
    assert parse_test_counts("== 3 passed, 2 deselected, 1 warning in 0.2s ==", 0) == {"passed": 3}
    assert parse_test_counts("Ran 3 tests in 0.1s\n\nOK (skipped=1)", 0) == {
        "passed": 2,
        "skipped": 1,
    }
    assert parse_test_counts("Ran 3 tests in 0.1s\n", 0) == {"passed": 3}
    assert parse_test_counts("Ran 3 tests in 0.1s\n", 1) == {"passed": 0}


def test_unrecognised_output_has_unknown_counts_not_zero():
    for text in ("", "Segmentation fault (core dumped)", output("gradle_pass.sample.txt")):
        assert parse_test_counts(text, 1) == {}
    assert describe_counts({}) == "counts unknown"
    assert describe_counts({"passed": 0, "failed": 2}) == "2 failed, 0 passed"


def test_shell_tool_delegates_to_the_module():
    text = output("cargo_no_fail_fast.txt")
    assert shell_parse_test_counts(text, 101) == parse_test_counts(text, 101)
    assert shell_describe_counts({}) == "counts unknown"
