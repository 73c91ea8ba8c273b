"""The model catalogue at work: the window compaction uses (the server's report, the catalogue,
the user's setting), the price cost is counted with, and the notice a model without one gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args


def test_doctor_shows_the_window_the_server_reports_and_the_catalogue_price(
    qac, repo: Path
) -> None:
    with ScriptedServer(model="Qwen/Qwen3.6-27B", max_model_len=32768) as server:
        out = qac("doctor", *server_args(server), "--model", "Qwen/Qwen3.6-27B", "-C", str(repo))
    assert out.code == 0, out.stdout
    assert "catalogue: model Qwen/Qwen3.6-27B: in the catalogue (as qwen3.6-27b)" in out.stdout
    assert "window: window 32,768 tokens (server)" in out.stdout
    assert "up to 1,010,000 tokens when the server enables YaRN" in out.stdout


def test_doctor_gives_the_max_preview_facts_and_fails_a_hosted_model_without_a_price(
    qac, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    with ScriptedServer(model="qwen3.6-max-preview") as server:
        priced = qac("doctor", "--provider", "dashscope", "--base-url", server.url, "-C", str(repo))
        unpriced = qac(
            "doctor",
            "--provider",
            "dashscope",
            "--base-url",
            server.url,
            "--model",
            "qwen3.6-plus",
            "-C",
            str(repo),
        )
    assert "ok   window: window 262,144 tokens (catalogue)" in priced.stdout
    assert "ok   price: price $1.30 / $7.80 per M" in priced.stdout
    assert "ok   window: window 1,000,000 tokens (catalogue)" in unpriced.stdout
    assert "FAIL price: no price known for qwen3.6-plus" in unpriced.stdout


def test_a_run_on_an_unpriced_hosted_model_says_so_once(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    model_server.script(
        turn(thinking="Look.", tool_call=("read_file", {"path": "calc.py"})),
        turn(text="Read."),
    )
    out = qac(
        "run",
        "look",
        "--provider",
        "dashscope",
        "--base-url",
        model_server.url,
        "--model",
        "qwen3.6-plus",
        "--max-cost",
        "1",
        "-C",
        str(repo),
    )
    assert out.code == 0, out.stderr
    assert out.stderr.count("no price known for qwen3.6-plus") == 1
    assert "--max-cost cannot stop a run" in out.stderr


def test_a_priced_model_counts_cost_and_a_local_one_stays_quiet(
    qac, model_server: ScriptedServer, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    model_server.script(
        turn(text="Hi.", usage={"prompt_tokens": 1_000_000, "completion_tokens": 0})
    )
    out = qac(
        "run",
        "hi",
        "--provider",
        "dashscope",
        "--base-url",
        model_server.url,
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    assert out.json()["cost_usd"] == pytest.approx(1.30)
    assert "no price known" not in out.stderr
    model_server.script(turn(text="Hi."))
    local = qac("run", "hi", *server_args(model_server), "--model", "my-finetune", "-C", str(repo))
    assert local.code == 0, local.stderr
    assert "no price known" not in local.stderr


def test_the_users_price_applies_and_an_untrusted_project_cannot_set_one(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
) -> None:
    clean_environ.mkdir(parents=True, exist_ok=True)
    (clean_environ / "config.toml").write_text(
        '[models."my-finetune"]\ninput = 2.0\noutput = 4.0\n'
    )
    (repo / ".qac").mkdir()
    (repo / ".qac" / "config.toml").write_text(
        '[models."my-finetune"]\ninput = 0.0\noutput = 0.0\n'
    )
    model_server.script(
        turn(text="Hi.", usage={"prompt_tokens": 500_000, "completion_tokens": 250_000})
    )
    out = qac(
        "run",
        "hi",
        *server_args(model_server),
        "--model",
        "my-finetune",
        "-C",
        str(repo),
        "--output-format",
        "json",
    )
    assert out.code == 0, out.stderr
    assert out.json()["cost_usd"] == pytest.approx(2.0)
    assert "ignoring models" in out.stderr


def test_compaction_uses_the_window_the_server_reports(
    qac, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same turns compact under a server that reports a 20,000-token window, and not under
    one that reports nothing (the catalogue's 262,144 tokens apply)."""
    monkeypatch.setenv("QAC_COMPACT_KEEP", "0.1")
    (repo / "big.txt").write_text("".join(f"line {n}: lorem ipsum dolor\n" for n in range(300)))
    reads = [
        turn(thinking=f"Read {n}.", tool_call=("read_file", {"path": path}), usage=usage)
        for n, (path, usage) in enumerate(
            [
                ("big.txt", {"prompt_tokens": 2000, "completion_tokens": 20}),
                ("AGENTS.md", {"prompt_tokens": 6100, "completion_tokens": 20}),
                ("calc.py", {"prompt_tokens": 10500, "completion_tokens": 20}),
            ]
        )
    ]
    for reported, expected in ((20000, 5), (None, 4)):
        turns = [*reads, turn(text="SUMMARY: read them.")]
        if reported:
            turns.append(turn(text="Done.", reset_prefix=True))
        with ScriptedServer(turns, model="Qwen/Qwen3.6-27B", max_model_len=reported) as server:
            out = qac(
                "run",
                "read them",
                *server_args(server),
                "--model",
                "Qwen/Qwen3.6-27B",
                "--compact-at",
                "0.5",
                "-C",
                str(repo),
            )
            requests = server.requests
            assert server.violations == []
        assert out.code == 0, out.stderr
        assert len(requests) == expected, out.stderr
        summary = requests[3]["messages"][-1]["content"]
        assert summary.startswith("The conversation is about to") == bool(reported)
