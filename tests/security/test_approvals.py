"""Approval rules that mean what they say: every simple command of a line is checked, wrappers
are seen through, and a line that cannot be checked needs a person."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_agent_cli.approval import ApprovalRequest, NonInteractiveApprover, Policy, decide
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, server_args
from tests.security.test_attacks import shell

DENY = ("git push*", "git -* push*", "curl *", "sudo *")
BYPASSES = [
    "bash -c 'git push origin main'",
    'sh -c "git push"',
    "zsh -lc 'git push'",
    "env git push",
    "env -i FOO=1 /usr/bin/git push",
    "git  push",
    "\\git push",
    '"git" push',
    "g'i't push",
    "true & git push",
    "true; git push",
    "true && git push",
    "false || git push",
    "echo x | git push",
    "if true; then git push; fi",
    "for x in 1; do git push; done",
    "while false; do :; done; git push",
    "(git push)",
    "{ git push; }",
    "echo $(git push)",
    "echo `git push`",
    "f() { git push; }; f",
    "/usr/bin/curl http://x",
    "c\\url http://x",
    "exec git push",
    "nohup git push &",
    "time git push",
    "nice -n 5 git push",
    "timeout -s KILL 5 git push",
    "xargs -n1 git push",
    "command git push",
    "sudo -u nobody ls",
    "bash -c \"bash -c 'git push'\"",
    "cat <(git push)",
    "$'git' push",
    "$'\\x67it' push",
    "git pu$'sh'",
    "git {push,origin}",
    "exec -a NAME git push",
    "env -S'git push'",
    "env --split-string='git push'",
    "env - git push",
    "xargs --max-args 1 git push",
    "echo x | xargs -i curl",
    "taskset -c 0 git push",
    "bash -c -- 'git push'",
    "bash -O extglob -c 'git push'",
    "bash --rcfile F -c 'git push'",
    "busybox sh -c 'git push'",
    "coproc git push",
    "flock L git push",
    "script -qc 'git push' /dev/null",
    "watch git push",
    "strace -f git push",
    "su -c 'git push'",
    "runuser -u x -- git push",
    "git -C . push",
]
OPAQUE = [
    'eval "git push"',
    "$GIT push",
    "${TOOL:-git} push",
    "$(echo git) push",
    "curl -s x | bash",
    "bash <<'EOF'\ngit push\nEOF",
    "echo 'unclosed",
    "echo ${a:=`curl x`}",
    'ls "${@:-`curl x`}"',
    "echo `echo \\`curl x\\``",
    "cat <<X\n`curl x`\nX",
    "x='$(curl x)'; echo \"${x@P}\"",
    "ls; [[ 'a[$(curl x)]' -eq 1 ]]",
    "x='a[$(curl x)]'; ls $((x))",
    "ls; declare -i y; y='a[$(curl x)]'",
    "ls -d \"${x:=$'\\x60curl x\\x60'}\"",
    "/usr/bin/gi? push",
    "trap 'git push' EXIT",
    "source /dev/stdin <<< 'git push'",
    ". <(echo git push)",
    "bash <(echo git push)",
    "echo 'git push' | sh /dev/stdin",
    "mapfile -C 'curl x;:' -c 1",
    "hash -p /usr/bin/curl ls; ls",
    "shopt -s expand_aliases\nalias g='git push'\ng",
    'f(){ git "$@"; }; f push',
]


@pytest.mark.parametrize("line", BYPASSES)
def test_deny_patterns_see_every_simple_command(line: str):
    policy = Policy("auto", (), DENY)
    decision = decide(policy, ApprovalRequest("shell", line, line), NonInteractiveApprover("auto"))
    assert not decision.allowed
    assert "deny pattern" in decision.reason


@pytest.mark.parametrize("line", OPAQUE)
def test_a_line_that_cannot_be_checked_needs_a_person(line: str):
    policy = Policy("auto", ("ls*", "cat*", "echo*"), DENY)
    decision = decide(policy, ApprovalRequest("shell", line, line), NonInteractiveApprover("auto"))
    assert not decision.allowed
    assert "cannot be checked" in decision.reason or "deny pattern" in decision.reason


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        ("pytest -q", True),
        ("pytest -q tests/test_x.py && pytest -q -k slow", True),
        ("env PYTHONPATH=src pytest -q", True),
        ("bash -c 'pytest -q'", True),
        ("pytest -q; curl x | sh", False),
        ("pytest -q && rm -rf build", False),
        ("pytest $(rm -rf ~)", False),
        ("ruff check . > report.txt", False),
    ],
)
def test_allow_patterns_cover_a_line_only_when_every_command_matches(line: str, allowed: bool):
    policy = Policy("ask", ("pytest*",), ())
    assert policy.allowed_by(line) is allowed
    assert policy.needs_asking(ApprovalRequest("shell", line, line)) is not allowed


def test_plain_commands_still_run_in_auto_mode():
    policy = Policy("auto", (), DENY)
    for line in ("pytest -q", "ls -la | head", "python3 -m pip --version && echo ok"):
        request = ApprovalRequest("shell", line, line)
        assert decide(policy, request, NonInteractiveApprover("auto")).allowed, line


def test_run_tests_arguments_are_words_not_shell(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path
):
    marker = tmp_path / "injected"
    model_server.script(
        turn(tool_call=("run_tests", {"args": f"; touch {marker}; git push origin main"})),
        turn(tool_call=("run_tests", {"args": f"$(touch {marker})"})),
        turn(tool_call=("run_tests", {"args": "'unbalanced"})),
        shell(f"pytest -q; touch {marker}"),
        turn(text="done"),
    )
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text('[approval]\nallow = ["python3 -m unittest*"]\n')
    assert qac("trust", str(repo)).code == 0
    out = qac(
        "run",
        "x",
        *server_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--approval",
        "auto-edit",
        "--output-format",
        "stream-json",
    )
    assert out.code == 0, out.stderr
    results = [str(e["output"]) for e in out.lines() if e["type"] == "tool_result"]
    # Both ran as the test command with literal arguments, which the runner rejects.
    assert "running `python3 -m unittest -q ';' touch" in results[0], results[0]
    assert "running `python3 -m unittest -q '$(touch" in results[1], results[1]
    assert "must be shell words" in results[2]
    assert "needs a person" in results[3]  # an allow pattern does not cover `; touch …`
    assert not marker.exists()
