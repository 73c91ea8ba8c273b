"""Repository context and compaction, seen from the wire: the snapshot and map in the first
request, the map cache across sessions, compaction into a new segment, resume after changes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from qwen_agent_cli import context
from qwen_agent_cli.repomap import RepoMap
from qwen_agent_cli.repository import Repository, init_repository
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.store import SessionStore
from qwen_agent_cli.tokens import count_tokens
from tests.conftest import server_args

MONEY = """class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


def to_cents(amount: float) -> int:
    return round(amount * 100)
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A repository in three languages where shop/money.py is used by everything else."""
    root = tmp_path / "shop-repo"
    (root / "shop").mkdir(parents=True)
    (root / "web").mkdir()
    (root / "svc").mkdir()
    (root / "shop" / "money.py").write_text(MONEY)
    for name in ("cart", "invoice", "tax", "refund"):
        (root / "shop" / f"{name}.py").write_text(
            "from shop.money import Money, to_cents\n\n\n"
            f"def {name}_total(items: list[float]) -> Money:\n"
            "    return Money(sum(to_cents(i) for i in items))\n"
        )
    (root / "web" / "app.ts").write_text(
        "export function renderPrice(cents: number): string {\n  return `$${cents / 100}`;\n}\n"
    )
    (root / "svc" / "main.go").write_text(
        "package main\n\nfunc Serve(port int) error {\n\treturn nil\n}\n"
    )
    (root / "AGENTS.md").write_text("Money is always in cents. Run `make test`.\n")
    init_repository(root, "shop")
    return root


def system_text(server: ScriptedServer, number: int = 0) -> str:
    return str(server.requests[number]["messages"][0]["content"])


def test_the_first_request_carries_agents_md_the_tree_and_the_map(
    qac, model_server: ScriptedServer, shop: Path
):
    model_server.script(turn(text="ok"))
    out = qac("run", "hi", *server_args(model_server), "-C", str(shop), "--map-tokens", "120")
    assert out.code == 0, out.stderr
    system = system_text(model_server)
    assert "Repository: shop-repo (git, branch main)" in system
    assert "AGENTS.md:\nMoney is always in cents. Run `make test`." in system
    assert "Files (8):\nAGENTS.md\nshop/cart.py" in system
    repo_map = system.split("Repository map (most referenced definitions first):\n", 1)[1]
    assert repo_map.startswith("shop/money.py\n    class Money:")
    assert "def to_cents(amount: float) -> int:" in repo_map
    assert count_tokens(repo_map) <= 120


def test_a_second_session_takes_the_map_from_the_cache(
    qac, model_server: ScriptedServer, shop: Path
):
    model_server.script(turn(text="one"), turn(text="two", reset_prefix=True))
    first = qac("run", "a", *server_args(model_server), "-C", str(shop), "--output-format", "json")
    second = qac("run", "b", *server_args(model_server), "-C", str(shop), "--output-format", "json")
    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    maps = [
        store.get(str(o.json()["session_id"])).settings["repository_map"] for o in (first, second)
    ]
    store.close()
    assert maps[0]["files_parsed"] == 7
    assert maps[1] == {**maps[0], "files_parsed": 0, "files_cached": 7}
    assert system_text(model_server, 0) == system_text(model_server, 1)


def warm_map(shop: Path, cache: Path) -> RepoMap:
    taken = context.snapshot(shop, Repository.find(shop), map_tokens=2000, map_cache=cache)
    assert taken.map is not None
    return taken.map


def test_the_warm_map_follows_edits_deletions_and_untracked_files(shop: Path, tmp_path: Path):
    def take() -> RepoMap:
        return warm_map(shop, tmp_path / "map-cache")

    first = take()
    assert take() == dataclasses.replace(first, files_parsed=0, files_cached=7, reused=True)
    money = shop / "shop" / "money.py"
    money.write_text(MONEY.replace("to_cents", "to_pennies"))
    later = money.stat().st_mtime_ns + 1_000_000_000
    os.utime(money, ns=(later, later))
    (shop / "shop" / "tax.py").unlink()
    (shop / "shop" / "discount.py").write_text(  # untracked: git lists it, so it is mapped
        "from shop.money import Money\n\n\ndef discount_rate(total: Money) -> float:\n"
        "    return 0.1\n"
    )

    changed = take()

    assert (changed.files_parsed, changed.files_cached, changed.reused) == (2, 5, False)
    assert "def to_pennies(amount: float) -> int:" in changed.text
    assert "def discount_rate(total: Money) -> float:" in changed.text
    assert "tax_total" not in changed.text
    assert "to_cents" not in changed.text


def test_files_git_vouches_for_are_known_by_content(shop: Path, tmp_path: Path):
    """A branch switched away from and back rewrites files (new mtimes, same blobs): the map
    is still reused. A file marked assume-unchanged is not vouched for, so its edit is seen."""
    cache = tmp_path / "map-cache"
    first = warm_map(shop, cache)
    repository = Repository.find(shop)
    assert repository is not None
    repository.git("checkout", "-q", "-b", "elsewhere")
    (shop / "shop" / "money.py").write_text(MONEY + "\n\ndef elsewhere_only() -> None:\n    pass\n")
    repository.git("commit", "-q", "-am", "elsewhere")
    repository.git("checkout", "-q", "main")

    assert warm_map(shop, cache) == dataclasses.replace(
        first, files_parsed=0, files_cached=7, reused=True
    )

    repository.git("update-index", "--assume-unchanged", "shop/money.py")
    (shop / "shop" / "money.py").write_text(MONEY.replace("to_cents", "in_cents"))
    edited = warm_map(shop, cache)
    assert (edited.files_parsed, edited.files_cached) == (1, 6)
    assert "def in_cents(amount: float) -> int:" in edited.text


def test_a_long_session_compacts_into_a_new_segment(qac, model_server: ScriptedServer, shop: Path):
    (shop / "big.txt").write_text(
        "".join(f"line {n}: lorem ipsum dolor sit amet\n" for n in range(300))
    )
    (shop / ".qac").mkdir()
    (shop / ".qac" / "config.toml").write_text(
        "context_window = 20000\ncompact_at = 0.5\ncompact_keep = 0.1\n"
    )
    model_server.script(
        turn(
            thinking="THINK-1 read the big file",
            tool_call=("read_file", {"path": "big.txt"}),
            usage={"prompt_tokens": 2000, "completion_tokens": 20},
        ),
        turn(
            thinking="THINK-2\n  keep this  ",
            tool_call=("read_file", {"path": "AGENTS.md"}),
            usage={"prompt_tokens": 6100, "completion_tokens": 20},
        ),
        turn(
            thinking="THINK-3 money",
            tool_call=("read_file", {"path": "shop/money.py"}),
            usage={"prompt_tokens": 9950, "completion_tokens": 20},
        ),
        turn(
            text="SUMMARY: task is to fix rounding; decided to use to_cents.",
            usage={"prompt_tokens": 10100, "completion_tokens": 30},
        ),
        turn(
            thinking="THINK-5 after compaction",
            text="Done.",
            reset_prefix=True,
            usage={"prompt_tokens": 900, "completion_tokens": 5},
        ),
    )
    out = qac(
        "run",
        "fix the rounding everywhere",
        *server_args(model_server),
        "-C",
        str(shop),
        "--output-format",
        "stream-json",
    )
    assert out.code == 0, out.stderr
    assert {e["type"] for e in out.lines()} <= {
        "session",
        "thinking",
        "text",
        "tool_call",
        "tool_result",
        "usage",
        "error",
        "result",
    }

    summary_request, after = model_server.requests[3], model_server.requests[4]
    assert summary_request["messages"][-1]["content"].startswith("The conversation is about to")
    assert summary_request["tools"] == model_server.requests[2]["tools"]
    messages = after["messages"]
    assert messages[0] == model_server.requests[0]["messages"][0]
    assert messages[1]["role"] == "user"
    assert "Original task:\nfix the rounding everywhere" in messages[1]["content"]
    assert "SUMMARY: task is to fix rounding" in messages[1]["content"]
    kept = [m.get("reasoning") for m in messages[2:] if m["role"] == "assistant"]
    assert kept == ["THINK-2\n  keep this  ", "THINK-3 money"]
    assert "THINK-1" not in json.dumps(messages)
    assert "line 299" not in json.dumps(messages)

    store = SessionStore(Path(os.environ["QAC_HOME"]) / "sessions.db")
    session_id = str(out.lines()[-1]["session_id"])
    exported = [json.loads(line) for line in store.export_jsonl(session_id)][1:]
    store.close()
    roles = [r["message"]["role"] for r in exported]
    assert roles.count("compaction") == 1
    assert [r["message"]["reasoning"] for r in exported if r["message"]["role"] == "assistant"][
        :3
    ] == ["THINK-1 read the big file", "THINK-2\n  keep this  ", "THINK-3 money"]
    shown = qac("sessions", "show", session_id)
    assert "compacted here: segment 1 starts" in shown.stdout
    by_part = qac("sessions", "show", session_id, "--context")
    assert by_part.code == 0
    assert [line.split()[0] for line in by_part.stdout.splitlines()[1:]] == [
        "system",
        "repository",
        "messages",
        "reasoning",
        "tool",
        "total",
    ]


def test_a_resumed_session_sends_the_stored_snapshot_after_the_repo_changed(
    qac, model_server: ScriptedServer, shop: Path
):
    model_server.script(turn(text="one"))
    first = qac("run", "a", *server_args(model_server), "-C", str(shop), "--output-format", "json")
    (shop / "NEWS.md").write_text("new file\n")
    (shop / "AGENTS.md").write_text("Changed instructions.\n")
    model_server.script(turn(text="two", reset_prefix=True))
    qac(
        "run",
        "b",
        "--resume",
        str(first.json()["session_id"]),
        *server_args(model_server),
        "-C",
        str(shop),
    )
    assert system_text(model_server, 1) == system_text(model_server, 0)
    assert "NEWS.md" not in system_text(model_server, 1)
