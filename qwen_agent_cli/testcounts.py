"""Test counts read from a runner's own summary lines, so `run_tests` and `qac ci` can say how
many tests passed whatever the project's runner. Pure text in, numbers out; imports nothing.

Each runner family has one function that returns its counts, or None when its summary is absent.
A family reads its totals, never its per-file lines as well, so nothing is counted twice; the
families' counts add up, as do several summaries of one family (cargo's test binaries, go's
packages, Maven's modules).
"""

from __future__ import annotations

import re
from collections.abc import Callable

KEYS = ("passed", "failed", "skipped", "errors")
"""The only keys a result has; expected failures and todos count as skipped (not run to pass)."""

Counts = dict[str, int]

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
WORDS = {
    "passed": "passed",
    "passing": "passed",
    "xpassed": "passed",
    "successful": "passed",
    "failed": "failed",
    "failing": "failed",
    "failure": "failed",
    "failures": "failed",
    "skipped": "skipped",
    "pending": "skipped",
    "todo": "skipped",
    "xfailed": "skipped",
    "aborted": "skipped",
    "incomplete": "skipped",
    "error": "errors",
    "errors": "errors",
}
"""A runner's word for an outcome → our key; words not here (warnings, total) are not counts."""

# An item may be two words: pytest 9 reports `152 subtests passed` (left out of the counts).
PYTEST = re.compile(r"^=*\s*((?:\d+ \w+(?: \w+)?(?:, )?)+|no tests ran) in [\d.]+s\b", re.M)
UNITTEST = re.compile(r"^Ran (\d+) tests? in \S+\n*(?:(OK|FAILED)(?: \((.*)\))?$)?", re.M)
CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;", re.M)
GO_RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(", re.M)
GO_PACKAGE = re.compile(
    r"^(?:ok|FAIL|\?)\s+\S+\s+(?:[\d.]+s|\(cached\)|\[no test files\]|\[(build|setup) failed\])",
    re.M,
)
JEST = re.compile(r"^Test Suites:(.*)\nTests:(.*)$", re.M)
VITEST = re.compile(r"^\s*Test Files\s+(.*)\n\s*Tests\s+(.*)$", re.M)
VITEST_ERRORS = re.compile(r"^\s*Errors\s+(\d+) errors?", re.M)
MOCHA = re.compile(r"^\s*(\d+) passing \(.*\)$(?:\s*(\d+) pending$)?(?:\s*(\d+) failing$)?", re.M)
TAP_SUMMARY = re.compile(
    r"^[#\u2139]\s*(tests|pass|fail|skip|skipped|todo|cancelled)\s+(\d+)\s*$", re.M
)
TAP_PLAN = re.compile(r"^1\.\.(\d+)", re.M)
TAP_LINE = re.compile(r"^(not )?ok\b(?:.*(# (?i:skip|todo)\b))?", re.M)
SUREFIRE = re.compile(
    r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)(.*)$", re.M
)
JUNIT_CONSOLE = re.compile(r"^\[\s*(\d+) tests (successful|failed|skipped|aborted)\s*\]", re.M)
GRADLE = re.compile(r"^(\d+) tests? completed(?:, (\d+) failed)?(?:, (\d+) skipped)?", re.M)
RSPEC = re.compile(
    r"^(\d+) examples?, (\d+) failures?(?:, (\d+) pending)?"
    r"(?:, (\d+) errors? occurred outside of examples)?",
    re.M,
)
PHPUNIT_OK = re.compile(r"^OK \((\d+) tests?, \d+ assertions?\)", re.M)
PHPUNIT = re.compile(r"^Tests: (\d+), Assertions: \d+((?:, [\w ]+: \d+)*)\.?$", re.M)


def strip_ansi(text: str) -> str:
    """Colour codes out, since Jest, Vitest and pytest colour their summaries."""
    return ANSI.sub("", text).replace("\r\n", "\n")


def _add(into: Counts, more: Counts) -> Counts:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value
    return into


def _tally(text: str) -> Counts:
    """`3 passed, 1 failed` (in any runner's words) as counts; unknown words are left out."""
    counts: Counts = {}
    for number, word in re.findall(r"(\d+) ([a-z]+)", text.lower()):
        if word in WORDS:
            _add(counts, {WORDS[word]: int(number)})
    return counts


def _with_passed(total: int, counts: Counts) -> Counts:
    """Runners that print a total and the bad outcomes: the rest passed."""
    return {"passed": max(total - sum(counts.values()), 0), **counts}


def _sum(found: list[Counts]) -> Counts | None:
    if not found:
        return None
    total: Counts = {"passed": 0}
    for counts in found:
        _add(total, counts)
    return total


def _pytest(text: str) -> Counts | None:
    found = [
        {"passed": 0} if m[1] == "no tests ran" else _tally(m[1]) for m in PYTEST.finditer(text)
    ]
    return _sum([counts for counts in found if counts])


def _unittest(text: str, exit_code: int) -> Counts | None:
    found: list[Counts] = []
    for match in UNITTEST.finditer(text):
        ran, verdict, details = int(match[1]), match[2], match[3] or ""
        if verdict is None:
            # cut off before the verdict: only the exit code says how the run went
            found.append({"passed": ran if exit_code == 0 else 0})
            continue
        bad = {k: int(v) for k, v in re.findall(r"([a-z ]+)=(\d+)", details.replace(", ", ","))}
        counts = {
            "failed": bad.get("failures", 0) + bad.get("unexpected successes", 0),
            "errors": bad.get("errors", 0),
            "skipped": bad.get("skipped", 0) + bad.get("expected failures", 0),
        }
        found.append(_with_passed(ran, counts))
    return _sum(found)


def _cargo(text: str) -> Counts | None:
    """One `test result:` line per test binary and one for doc-tests; all of them count."""
    found = [
        {"passed": int(p), "failed": int(f), "skipped": int(i)} for p, f, i in CARGO.findall(text)
    ]
    return _sum(found)


def _go(text: str) -> Counts | None:
    """`--- PASS/FAIL/SKIP` lines (only -v prints passes); a test with subtests is counted by its
    subtests, since its own line only repeats theirs. Without -v passes are unknown, not zero."""
    packages = list(GO_PACKAGE.finditer(text))
    results = GO_RESULT.findall(text)
    if not packages and not results:
        return None
    counts: Counts = {}
    if "=== RUN" in text or any(status == "PASS" for status, _ in results):
        counts["passed"] = 0
    start = 0
    for end in [m.start() for m in packages] + [len(text)]:
        segment = GO_RESULT.findall(text, start, end)
        parents = {name.rsplit("/", 1)[0] for _, name in segment if "/" in name}
        for status, name in segment:
            if name not in parents:
                key = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[status]
                _add(counts, {key: 1})
        start = end
    broken = sum(1 for m in packages if m[1])
    return _add(counts, {"errors": broken}) if broken else counts or None


def _files_failed(files: str, counts: Counts) -> Counts:
    """A test file that failed with no failing test never ran (a syntax or import error)."""
    failed = _tally(files).get("failed", 0)
    return _add(counts, {"errors": failed}) if failed and not counts.get("failed") else counts


def _jest(text: str) -> Counts | None:
    return _sum([_files_failed(m[1], _tally(m[2])) for m in JEST.finditer(text)])


def _vitest(text: str) -> Counts | None:
    found = [_files_failed(m[1], _tally(m[2])) for m in VITEST.finditer(text)]
    if found:
        found += [{"errors": int(n)} for n in VITEST_ERRORS.findall(text)]
    return _sum(found)


def _mocha(text: str) -> Counts | None:
    found = [
        {"passed": int(p), "skipped": int(s or 0), "failed": int(f or 0)}
        for p, s, f in MOCHA.findall(text)
    ]
    return _sum(found)


def _tap(text: str) -> Counts | None:
    """TAP's closing comments (tape, node --test, mocha's tap reporter), else its `ok` lines.
    tape counts a skipped assertion as a pass and mocha leaves it out: the plan tells which."""
    summary = TAP_SUMMARY.findall(text)
    lines = TAP_LINE.findall(text)
    if not summary:
        if not TAP_PLAN.search(text) or not lines:
            return None
        return {
            "passed": sum(1 for bad, note in lines if not bad and not note),
            "failed": sum(1 for bad, note in lines if bad and not note),
            "skipped": sum(1 for _, note in lines if note),
        }
    said: Counts = {}
    for word, number in summary:
        _add(said, {word: int(number)})
    skipped = said.get("skip", 0) + said.get("skipped", 0) + said.get("todo", 0)
    passed = said.get("pass", 0)
    failed = said.get("fail", 0) + said.get("cancelled", 0)
    if not {"skip", "skipped", "todo"} & said.keys():
        skipped = sum(1 for bad, note in lines if note and not bad)
        total = max(said.get("tests", 0), sum(int(n) for n in TAP_PLAN.findall(text)))
        passed -= max(passed + failed + skipped - total, 0)
    return {"passed": passed, "failed": failed, "skipped": skipped}


def _surefire(text: str) -> Counts | None:
    """Maven prints a line per test class and then a total per module: the totals are used."""
    rows = SUREFIRE.findall(text)
    totals = [row for row in rows if "Time elapsed" not in row[4]] or rows
    found = [
        _with_passed(int(run), {"failed": int(f), "errors": int(e), "skipped": int(s)})
        for run, f, e, s, _ in totals
    ]
    return _sum(found)


def _junit_console(text: str) -> Counts | None:
    return _sum([{WORDS[word]: int(n)} for n, word in JUNIT_CONSOLE.findall(text)])


def _gradle(text: str) -> Counts | None:
    """Gradle prints counts only when a test fails; a green run has no counts to read."""
    found = [
        _with_passed(int(n), {"failed": int(f or 0), "skipped": int(s or 0)})
        for n, f, s in GRADLE.findall(text)
    ]
    return _sum(found)


def _rspec(text: str) -> Counts | None:
    found = [
        {**_with_passed(int(n), {"failed": int(f), "skipped": int(p or 0)}), "errors": int(e or 0)}
        for n, f, p, e in RSPEC.findall(text)
    ]
    return _sum(found)


def _phpunit(text: str) -> Counts | None:
    found = [{"passed": int(n)} for n in PHPUNIT_OK.findall(text)]
    for tests, rest in PHPUNIT.findall(text):
        counts = _tally(re.sub(r"(\w+): (\d+)", r"\2 \1", rest))
        found.append(_with_passed(int(tests), counts))
    return _sum(found)


PARSERS: tuple[Callable[[str], Counts | None], ...] = (
    _pytest,
    _cargo,
    _go,
    _jest,
    _vitest,
    _mocha,
    _tap,
    _surefire,
    _junit_console,
    _gradle,
    _rspec,
    _phpunit,
)


def parse_test_counts(output: str, exit_code: int) -> Counts:
    """Counts summed over every summary recognised in `output`; {} when none is, so a report
    can say the counts are unknown instead of showing zero."""
    text = strip_ansi(output)
    found = [parse(text) for parse in PARSERS] + [_unittest(text, exit_code)]
    total: Counts = {}
    for counts in found:
        if counts is not None:
            _add(total, counts)
    return {key: total[key] for key in KEYS if key in total and (total[key] or key == "passed")}


def describe_counts(counts: Counts) -> str:
    """`1 failed, 3 passed` for a report line, what went wrong first (as pytest says it);
    "counts unknown" rather than a made-up zero."""
    order = {"failed": 0, "errors": 1, "passed": 2, "skipped": 3}
    ranked = sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))
    return ", ".join(f"{value} {key}" for key, value in ranked) or "counts unknown"
