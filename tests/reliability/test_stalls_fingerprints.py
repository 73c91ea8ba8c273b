"""What counts as "the same" call and outcome: masking real test runners' volatile output,
normalising near-repeat arguments, and the Stalls counts built on them."""

from __future__ import annotations

import json

import pytest

from qwen_agent_cli.fingerprints import fingerprint, mask_volatile, normal_arguments, read_target
from qwen_agent_cli.stalls import Stalls
from qwen_agent_cli.types import ToolCall, ToolResult

PYTEST = """============================= test session starts ==============================
platform linux -- Python 3.11.4, pytest-7.4.0, pluggy-1.2.0
rootdir: {tmp}/project
collected 2 items

test_calc.py F.                                                          [100%]

=================================== FAILURES ===================================
_________________________________ test_average _________________________________

    def test_average():
>       assert average([1, 2, 3, 4]) == 2.5, f"scratch {{mkdtemp()}}"
E       AssertionError: scratch {scratch}
E       assert 2 == 2.5
E        +  where 2 = average([1, 2, 3, 4])

test_calc.py:5: AssertionError
=========================== short test summary info ============================
FAILED test_calc.py::{test} - assert 2 == 2.5
{rule} 1 failed, 1 passed in {secs} {rule}
"""
UNITTEST = """F
======================================================================
FAIL: test_average (test_calc.CalcTest.test_average)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "{tmp}/project/test_calc.py", line 8, in test_average
    self.assertEqual(average([1, 2, 3, 4]), 2.5)
AssertionError: 2 != 2.5

----------------------------------------------------------------------
Ran 1 test in {secs}

FAILED (failures=1)
"""
GO_TEST = """--- FAIL: TestAdd ({secs})
    calc_test.go:9: Add(2, 2) = 5, want 4
panic: handler at {addr} [recovered]
FAIL
exit status 1
FAIL\texample.com/calc\t{secs}
ok  \texample.com/calc/internal\t{cached}
"""
NPM_TEST = """
> calc@1.0.0 test
> jest

 FAIL  ./calc.test.js ({secs})
  \u25cf add \u203a adds two numbers

    expect(received).toBe(expected) // Object.is equality

    Expected: 4
    Received: 5

      at Object.toBe (calc.test.js:4:21)

Tests:       1 failed, 1 total
Time:        {secs}, estimated {secs}
Ran all test suites.
npm ERR! Test failed.  See above for more details.
npm ERR! A complete log of this run can be found in:
npm ERR!     /home/dev/.npm/_logs/{stamp}-debug-0.log
"""


def pytest_run(secs: str, tmp: str, scratch: str, test: str = "test_average") -> str:
    line = f" 1 failed, 1 passed in {secs} "
    rule = "=" * ((80 - len(line)) // 2)
    return PYTEST.format(secs=secs, tmp=tmp, scratch=scratch, test=test, rule=rule)


RUNS = {
    "pytest": (
        pytest_run("0.65s", "/tmp/pytest-of-dev/pytest-12/test_loop0", "/tmp/tmpk2j3h4l5"),
        pytest_run(
            "12.31s (0:00:12)", "/tmp/pytest-of-dev/pytest-13/test_loop0", "/tmp/tmpz_9q0w1e"
        ),
    ),
    "unittest": (
        UNITTEST.format(tmp="/var/folders/xy/b7k2_3nq/T/tmp.Xk29aQ01", secs="0.001s"),
        UNITTEST.format(tmp="/var/folders/xy/b7k2_3nq/T/tmp.pQ83mZ7c", secs="0.120s"),
    ),
    "go test": (
        GO_TEST.format(secs="0.004s", addr="0x7f3a2b1c0d", cached="(cached)"),
        GO_TEST.format(secs="1.2s", addr="0xc000012345", cached="0.011s"),
    ),
    "npm test": (
        NPM_TEST.format(secs="1.234 s", stamp="2026-01-02T10_11_12_345Z"),
        NPM_TEST.format(secs="987 ms", stamp="2026-01-02T10_14_59_002Z"),
    ),
}


@pytest.mark.parametrize("runner", RUNS)
def test_runs_that_differ_only_in_volatile_parts_mask_the_same(runner: str):
    first, second = RUNS[runner]
    assert first != second
    assert mask_volatile(first) == mask_volatile(second)


@pytest.mark.parametrize(
    ("runner", "changed"),
    [
        ("pytest", pytest_run("0.65s", "/tmp/x", "/tmp/tmpk2j3h4l5", test="test_median")),
        ("unittest", UNITTEST.format(tmp="/t", secs="0.1s").replace("!= 2.5", "!= None")),
        ("go test", GO_TEST.format(secs="1s", addr="0x1", cached="1s").replace("want", "got")),
        ("npm test", NPM_TEST.format(secs="1 s", stamp="x").replace("adds two", "adds three")),
    ],
)
def test_a_different_failure_masks_differently(runner: str, changed: str):
    assert mask_volatile(RUNS[runner][0]) != mask_volatile(changed)


def test_ids_and_temp_names_are_masked_but_file_names_kept():
    text = (
        "commit 3f2a9c1d8e7b at 2026-01-02 10:11:12,345 pid 4242 on 127.0.0.1:54321 "
        "id 550e8400-e29b-41d4-a716-446655440000 in /tmp/tmpab12cd_x/calc.py"
    )
    assert mask_volatile(text) == (
        "commit <hex> at N-N-N <t> pid N on N:N id <id> in /tmp/<tmp>/calc.py"
    )
    assert mask_volatile("/tmp/w/calc.py:3") != mask_volatile("/tmp/w/test_calc.py:3")


def test_counts_are_masked_by_choice():
    """Documented in fingerprints.py: only numbers changing is not treated as progress."""
    assert mask_volatile("1 failed, 2 passed") == mask_volatile("3 failed, 0 passed")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"command": "pytest -q"}, {"command": "  pytest   -q "}),
        ({"command": "python ./check.py"}, {"command": "python check.py"}),
        ({"path": "./a.txt"}, {"path": "a.txt "}),
        ({"path": "src//a.py"}, {"path": "src/a.py"}),
        ({"path": "src/"}, {"path": "src"}),
        ({"path": "a.txt", "offset": None}, {"path": "a.txt"}),
        ({"b": 1, "a": "x"}, {"a": "x", "b": 1}),
    ],
)
def test_near_repeat_arguments_normalise_the_same(first: dict[str, object], second: object):
    assert normal_arguments(json.dumps(first)) == normal_arguments(json.dumps(second))


def test_different_arguments_stay_different():
    assert normal_arguments('{"command": "pytest a"}') != normal_arguments(
        '{"command": "pytest b"}'
    )
    assert normal_arguments("not json ") == "not json"


@pytest.mark.parametrize(
    ("name", "arguments", "target"),
    [
        ("read_file", {"path": "./calc.py"}, "file:calc.py"),
        ("read_file", {"path": "calc.py", "offset": 1, "limit": 2000}, "file:calc.py"),
        ("shell", {"command": "cat calc.py"}, "file:calc.py"),
        ("shell", {"command": "cat -n ./calc.py "}, "file:calc.py"),
        ("read_file", {"path": "calc.py", "limit": 10}, "file:calc.py:1+10"),
        ("shell", {"command": "head calc.py"}, "file:calc.py:1+10"),
        ("shell", {"command": "head -n 10 calc.py"}, "file:calc.py:1+10"),
        ("shell", {"command": "sed -n '1,10p' calc.py"}, "file:calc.py:1+10"),
        ("shell", {"command": "sed -n 5,9p calc.py"}, "file:calc.py:5+5"),
        ("read_file", {"path": "calc.py", "offset": 5, "limit": 5}, "file:calc.py:5+5"),
        ("shell", {"command": "tail -20 calc.py"}, "file:calc.py:last20"),
        ("shell", {"command": "cat calc.py | grep x"}, None),
        ("shell", {"command": "cat *.py"}, None),
        ("shell", {"command": "head -c 10 calc.py"}, None),
        ("shell", {"command": "python3 calc.py"}, None),
        ("edit_file", {"path": "calc.py", "old": "a", "new": "b"}, None),
    ],
)
def test_reads_of_one_file_share_a_target(name: str, arguments: object, target: str | None):
    assert read_target(name, json.dumps(arguments)) == target


def test_outcome_class_keeps_the_exit_code_and_error_flag():
    call = ToolCall("1", "shell", '{"command": "x"}')
    code_1 = fingerprint(call, ToolResult("1", "shell", "exit code 1\nboom", is_error=True))
    code_2 = fingerprint(call, ToolResult("1", "shell", "exit code 2\nboom", is_error=True))
    assert code_1.outcome != code_2.outcome
    assert code_1.call == code_2.call


def shell(command: str, output: str, failed: bool = True) -> tuple[ToolCall, ToolResult]:
    code = 1 if failed else 0
    return (
        ToolCall("c", "shell", json.dumps({"command": command})),
        ToolResult("c", "shell", f"exit code {code}\n{output}", is_error=failed),
    )


def run_tests(output: str) -> tuple[ToolCall, ToolResult]:
    report = f"tests FAILED (1 failed, 1 passed) running `python -m pytest`\nexit code 1\n{output}"
    return ToolCall("c", "run_tests", "{}"), ToolResult("c", "run_tests", report, is_error=True)


def play(stalls: Stalls, calls: list[tuple[ToolCall, ToolResult]]) -> list[str]:
    """Feed calls until stalls stops the run, as agent.py does; the outputs sent back."""
    sent = []
    for call, result in calls:
        sent.append(stalls.record(call, result))
        if stalls.stuck_on is not None:
            break
    return sent


def warned(sent: list[str]) -> list[bool]:
    return ["Stop repeating" in output for output in sent]


def test_run_tests_with_changing_timings_is_told_at_3_and_stopped_at_6():
    timings = ["0.65s", "0.71s", "1.02s", "0.66s", "0.70s", "0.69s", "0.68s"]
    stalls = Stalls(3, 6)
    sent = play(
        stalls, [run_tests(pytest_run(t, "/tmp/w", f"/tmp/tmp{t[2:4]}aaaaaa")) for t in timings]
    )
    assert warned(sent) == [False, False, True, True, True, True]
    assert "You have made this same call 3 times and it failed the same way" in sent[2]
    assert stalls.stuck_on is not None
    assert stalls.stuck_on.startswith("run_tests({}) -> tests FAILED")


@pytest.mark.parametrize("runner", RUNS)
def test_every_runner_loop_is_stopped(runner: str):
    outputs = [RUNS[runner][i % 2] for i in range(6)]
    stalls = Stalls(3, 6)
    play(stalls, [shell("make test", output) for output in outputs])
    assert stalls.stuck_on is not None


def test_two_failing_commands_alternating_are_stopped_after_six_calls():
    a = shell("python3 build.py", "Traceback: build.py not found")
    b = shell("ls ./dist/ ", "ls: cannot access 'dist': No such file or directory")
    b_again = shell("ls  dist/", "ls: cannot access 'dist': No such file or directory")
    stalls = Stalls(3, 6)
    sent = play(stalls, [a, b, a, b_again, a, b, a, b])
    assert warned(sent) == [False, False, False, True, True, True]
    assert "You have gone round the same 2 calls 2 times (4 calls)" in sent[3]
    assert stalls.stuck_on == (
        'the cycle shell({"command": "python3 build.py"}) then shell({"command": "ls ./dist/ "})'
    )


def test_a_cycle_of_three_is_told_after_two_rounds_and_stopped_after_three():
    edit = (
        ToolCall("c", "edit_file", '{"path": "a.py", "old": "x = 1", "new": "x = 2"}'),
        ToolResult("c", "edit_file", "edited a.py"),
    )
    read = (ToolCall("c", "read_file", '{"path": "a.py"}'), ToolResult("c", "read_file", "x"))
    test = run_tests(pytest_run("0.5s", "/tmp/w", "/tmp/tmpaaaaaaaa"))
    stalls = Stalls(3, 6)
    sent = play(stalls, [edit, test, read] * 4)
    assert warned(sent) == [False] * 5 + [True] * 4
    assert "You have gone round the same 3 calls 2 times (6 calls)" in sent[5]
    assert stalls.stuck_on is not None


def test_re_reading_one_file_with_cat_and_read_file_is_stopped():
    cat = shell("cat ./notes.txt", "hello", failed=False)
    read = (ToolCall("c", "read_file", '{"path": "notes.txt"}'), ToolResult("c", "x", "hello"))
    stalls = Stalls(3, 6)
    sent = play(stalls, [cat, read, cat, cat, read, cat, read])
    assert warned(sent) == [False, False, True, True, True, True]
    assert "nothing changed in between" in sent[2]
    assert stalls.stuck_on is not None


def test_progress_resets_the_count():
    """Each failure is new in its words, or the call succeeds: never told, never stopped."""
    names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    stalls = Stalls(3, 6)
    sent = play(stalls, [run_tests(pytest_run("1s", "/tmp/w", "/t", test=n)) for n in names])
    sent += play(
        stalls, [shell("make", "error: missing x")] * 2 + [shell("make", "", failed=False)]
    )
    sent += play(stalls, [shell("make", "error: missing x")] * 2)
    assert not any(warned(sent))
    assert stalls.stuck_on is None


def test_a_cycle_of_successes_is_not_a_stall():
    touch = shell("echo x >> notes.txt", "", failed=False)
    status = shell("git status --short", " M notes.txt", failed=False)
    stalls = Stalls(3, 6)
    assert not any(warned(play(stalls, [touch, status] * 6)))
    assert stalls.stuck_on is None
