"""Preserved thinking on the wire: every earlier assistant message goes back with its reasoning,
byte for byte, in the profile's field(s), with the profile's switch, append-only."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import TEST_CMD, run_process, server_args

THOUGHTS = [
    "  The test fails in calc.\nRead calc.py before editing.\n\n",
    "average uses // — floor division.\n\tThe fix is `/`.  ",
    "\nEdited. Now run the tests again, as planned in step one.\n",
    "All green; summarise.\n",
]


def four_step_script() -> list[dict[str, object]]:
    return [
        turn(thinking=THOUGHTS[0], tool_call=("read_file", {"path": "calc.py"})),
        turn(
            thinking=THOUGHTS[1],
            tool_call=(
                "edit_file",
                {"path": "calc.py", "old": "sum(values) // len", "new": "sum(values) / len"},
            ),
        ),
        turn(thinking=THOUGHTS[2], tool_call=("run_tests", {})),
        turn(thinking=THOUGHTS[3], text="Fixed average: it used floor division."),
    ]


def assistant_messages(request: dict[str, object]) -> list[dict[str, object]]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [m for m in messages if m["role"] == "assistant"]


@pytest.mark.parametrize(
    ("provider", "server_field", "sent_fields"),
    [
        ("dashscope", "reasoning_content", ["reasoning_content"]),
        ("vllm", "reasoning", ["reasoning", "reasoning_content"]),
    ],
)
def test_four_step_loop_replays_every_reasoning_block(
    qac,
    model_server: ScriptedServer,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    server_field: str,
    sent_fields: list[str],
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    model_server.reasoning_field = server_field
    model_server.script(*four_step_script())

    out = qac(
        "run",
        "fix the failing test",
        *server_args(model_server, provider),
        "--model",
        "qwen3.6-plus",
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )

    assert out.code == 0, out.stderr
    assert out.json()["status"] == "done"
    assert "/ len(values)" in (repo / "calc.py").read_text()
    assert len(model_server.requests) == 4
    for number, request in enumerate(model_server.requests):
        sent = assistant_messages(request)
        assert len(sent) == number
        for index, message in enumerate(sent):
            for field in sent_fields:
                assert message[field] == THOUGHTS[index]
            assert message["tool_calls"]
        if provider == "dashscope":
            assert request["enable_thinking"] is True
            assert request["preserve_thinking"] is True
            assert "chat_template_kwargs" not in request
        else:
            assert request["chat_template_kwargs"] == {
                "enable_thinking": True,
                "preserve_thinking": True,
            }
            assert "preserve_thinking" not in request
    roles = [m["role"] for m in model_server.requests[-1]["messages"]]
    assert roles == ["system", "user"] + ["assistant", "tool"] * 3
    assert "developer" not in roles


def test_each_request_extends_the_previous_and_tools_stay_the_same(
    qac, model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(*four_step_script())

    out = qac(
        "run",
        "fix it",
        *server_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )

    assert out.code == 0, out.stderr
    requests = model_server.requests
    for before, after in itertools.pairwise(requests):
        assert after["messages"][: len(before["messages"])] == before["messages"]
        assert after["tools"] == before["tools"]


def test_resume_in_a_new_process_sends_the_stored_session_unchanged(
    model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(*four_step_script())
    first = run_process(
        "run",
        "fix it",
        *server_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )
    assert first.code == 0, first.stderr
    session_id = first.json()["session_id"]
    stored_request = model_server.requests[-1]
    (repo / "NEW_FILE.txt").write_text("the repository changed after the first run\n")

    with ScriptedServer([turn(thinking="Still remember step one.", text="yes")]) as second_server:
        second = run_process(
            "run",
            "did you verify?",
            "--resume",
            str(session_id),
            *server_args(second_server),
            "-C",
            str(repo),
            "--output-format",
            "json",
        )
        assert second.code == 0, second.stderr
        (resumed,) = second_server.requests

    final_reply = {
        "role": "assistant",
        "content": "Fixed average: it used floor division.",
        "reasoning": THOUGHTS[3],
        "reasoning_content": THOUGHTS[3],
    }
    expected = [
        *stored_request["messages"],
        final_reply,
        {"role": "user", "content": "did you verify?"},
    ]
    assert resumed["messages"] == expected
    assert resumed["tools"] == stored_request["tools"]
    assert resumed["chat_template_kwargs"]["preserve_thinking"] is True


def test_no_preserve_thinking_drops_earlier_reasoning_and_the_switch(
    model_server: ScriptedServer, repo: Path
) -> None:
    model_server.script(*four_step_script())
    first = run_process(
        "run",
        "fix it",
        *server_args(model_server),
        "-C",
        str(repo),
        "--test-cmd",
        TEST_CMD,
        "--output-format",
        "json",
    )
    assert first.code == 0, first.stderr
    session_id = str(first.json()["session_id"])

    with ScriptedServer(
        [
            turn(thinking="a", tool_call=("read_file", {"path": "calc.py"})),
            turn(thinking="b", text="done"),
        ]
    ) as server:
        out = run_process(
            "run",
            "again",
            "--resume",
            session_id,
            "--no-preserve-thinking",
            *server_args(server),
            "-C",
            str(repo),
            "--output-format",
            "json",
        )
        assert out.code == 0, out.stderr
        first_request, second_request = server.requests

    for message in assistant_messages(first_request):
        assert "reasoning" not in message
        assert "reasoning_content" not in message
    assert first_request["chat_template_kwargs"] == {"enable_thinking": True}
    # After the new user message, this turn's own reasoning still goes back (template default).
    latest = assistant_messages(second_request)[-1]
    assert latest["reasoning"] == "a"
    assert all("reasoning" not in m for m in assistant_messages(second_request)[:-1])
