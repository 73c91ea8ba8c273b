"""Instruction files: which are read (root to working directory, the user's own, imports), how
links, copies, cycles, escapes and huge files are handled, and where the user is told (the
session event, a resume, the REPL's banner and /context, `qac init`)."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest

from qwen_agent_cli import instructions
from qwen_agent_cli.instructions import Instructions, LoadedFile
from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer, turn
from qwen_agent_cli.tokens import estimate_tokens
from tests.conftest import server_args
from tests.test_repl_pty import PROMPT, spawn, submit


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def loaded(*pairs: tuple[str, str]) -> tuple[LoadedFile, ...]:
    return tuple(LoadedFile(path, estimate_tokens(text)) for path, text in pairs)


def test_files_are_read_from_the_root_down_to_the_working_directory(tmp_path: Path):
    root = tmp_path / "repo"
    write(root / "AGENTS.md", "root agents")
    write(root / "QWEN.md", "root qwen")
    write(root / "pkg" / "CLAUDE.md", "pkg claude")
    write(root / "pkg" / "sub" / "AGENTS.md", "sub agents")
    write(root / "other" / "AGENTS.md", "not on the way")

    found = instructions.load(root, root / "pkg" / "sub")

    assert found == Instructions(
        files=loaded(
            ("AGENTS.md", "root agents"),
            ("QWEN.md", "root qwen"),
            ("pkg/CLAUDE.md", "pkg claude"),
            ("pkg/sub/AGENTS.md", "sub agents"),
        ),
        text="AGENTS.md:\nroot agents\n\nQWEN.md:\nroot qwen\n\npkg/CLAUDE.md:\npkg claude\n\n"
        "pkg/sub/AGENTS.md:\nsub agents",
    )


def test_a_link_or_a_copy_of_a_file_is_read_once(tmp_path: Path):
    write(tmp_path / "AGENTS.md", "the rules\n")
    (tmp_path / "CLAUDE.md").symlink_to("AGENTS.md")
    write(tmp_path / "QWEN.md", "the rules\n")

    found = instructions.load(tmp_path, tmp_path)

    assert found == Instructions(loaded(("AGENTS.md", "the rules")), "AGENTS.md:\nthe rules")


def test_the_user_file_comes_first_and_may_import_files_beside_it(tmp_path: Path):
    user = tmp_path / "config"
    write(user / "AGENTS.md", "Answer in English.\n@style.md\n")
    write(user / "style.md", "Short sentences.")
    write(tmp_path / "repo" / "AGENTS.md", "repo rules")

    found = instructions.load(tmp_path / "repo", tmp_path / "repo", user)

    assert [f.path for f in found.files] == [
        "~user config/AGENTS.md",
        "~user config/style.md",
        "AGENTS.md",
    ]
    assert found.text == (
        "~user config/AGENTS.md:\nAnswer in English.\n@style.md\n\n"
        "~user config/style.md (imported by ~user config/AGENTS.md):\nShort sentences.\n\n"
        "AGENTS.md:\nrepo rules"
    )


def test_the_user_file_may_be_a_link_and_secrets_are_never_imported(tmp_path: Path):
    dotfiles, user, root = tmp_path / "dotfiles", tmp_path / "config", tmp_path / "home"
    write(dotfiles / "AGENTS.md", "From my dotfiles.")
    user.mkdir()
    (user / "AGENTS.md").symlink_to(dotfiles / "AGENTS.md")
    write(root / ".ssh" / "id_rsa", "PRIVATE KEY")
    write(root / "AGENTS.md", "@.ssh/id_rsa")

    found = instructions.load(root, root, user, secrets=[root / ".ssh"])

    assert [f.path for f in found.files] == ["~user config/AGENTS.md", "AGENTS.md"]
    assert "PRIVATE KEY" not in found.text
    assert found.notes == (".ssh/id_rsa refused: it holds credentials or qac's own files",)


def test_an_import_chain_is_followed_relative_to_each_importer(tmp_path: Path):
    write(tmp_path / "AGENTS.md", "See @docs/build.md for building. Mail me@example.com.\n")
    write(tmp_path / "docs" / "build.md", "Build with make.\n@../tests/how.md\n")
    write(tmp_path / "tests" / "how.md", "Test with `make test`. `@not/an/import.md`\n")

    found = instructions.load(tmp_path, tmp_path)

    assert [f.path for f in found.files] == ["AGENTS.md", "docs/build.md", "tests/how.md"]
    assert "tests/how.md (imported by docs/build.md):\nTest with `make test`." in found.text
    assert found.notes == ()


def test_imports_nest_at_most_five_deep(tmp_path: Path):
    write(tmp_path / "AGENTS.md", "@d1.md")
    for depth in range(1, 8):
        write(tmp_path / f"d{depth}.md", f"level {depth} @d{depth + 1}.md")

    found = instructions.load(tmp_path, tmp_path)

    assert [f.path for f in found.files] == ["AGENTS.md", *(f"d{n}.md" for n in range(1, 6))]
    assert found.notes == ("imports in d5.md not followed: they nest deeper than 5",)


def test_an_import_cycle_is_a_note_not_a_hang(tmp_path: Path):
    write(tmp_path / "AGENTS.md", "top @a.md")
    write(tmp_path / "a.md", "a @b.md")
    write(tmp_path / "b.md", "b @a.md")

    found = instructions.load(tmp_path, tmp_path)

    assert [f.path for f in found.files] == ["AGENTS.md", "a.md", "b.md"]
    assert found.notes == ("b.md imports a.md, which imports it back: cycle not followed",)
    assert found.text.endswith(
        "[qac: b.md imports a.md, which imports it back: cycle not followed]"
    )


def test_nothing_outside_the_workspace_is_read(tmp_path: Path):
    root = tmp_path / "repo"
    write(tmp_path / "secret.md", "TOP SECRET")
    write(root / "AGENTS.md", "@../secret.md and @/etc/passwd and @linked.md")
    (root / "linked.md").symlink_to(tmp_path / "secret.md")
    (root / "CLAUDE.md").symlink_to(tmp_path / "secret.md")

    found = instructions.load(root, root)

    assert "TOP SECRET" not in found.text
    assert "root:" not in found.text
    assert [f.path for f in found.files] == ["AGENTS.md"]
    assert found.notes == (
        "AGENTS.md imports @../secret.md: refused, it leads outside the workspace",
        "AGENTS.md imports @/etc/passwd: refused, it leads outside the workspace",
        "AGENTS.md imports @linked.md: refused, it leads outside the workspace",
        "CLAUDE.md skipped: refused, it leads outside the workspace",
    )


def test_a_huge_file_is_cut_with_a_note(tmp_path: Path):
    write(tmp_path / "AGENTS.md", "x" * 300_000)
    write(tmp_path / "QWEN.md", "never reached")

    found = instructions.load(tmp_path, tmp_path)

    assert found.files == loaded(("AGENTS.md", "x" * instructions.TOTAL_LIMIT))
    assert found.notes == (
        "AGENTS.md cut here: instructions are limited to 100000 bytes",
        "QWEN.md not loaded: instructions are limited to 100000 bytes",
    )
    assert len(found.text) < instructions.TOTAL_LIMIT + 300


@pytest.fixture
def nested(repo: Path, clean_environ: Path) -> Path:
    """The `repo` fixture with a package's own AGENTS.md, a CLAUDE.md link and a user file."""
    write(repo / "pkg" / "AGENTS.md", "Package rules. @notes.md\n")
    write(repo / "pkg" / "notes.md", "Notes on the package.\n")
    (repo / "CLAUDE.md").symlink_to("AGENTS.md")
    write(clean_environ / "AGENTS.md", "The user's own rules.\n")
    init_repository(repo, "nested instructions")
    return repo / "pkg"


LISTED = [
    {"path": "~user config/AGENTS.md", "tokens": estimate_tokens("The user's own rules.")},
    {"path": "AGENTS.md", "tokens": estimate_tokens("Run tests with python3 -m unittest.")},
    {"path": "pkg/AGENTS.md", "tokens": estimate_tokens("Package rules. @notes.md")},
    {"path": "pkg/notes.md", "tokens": estimate_tokens("Notes on the package.")},
]


def test_the_session_event_lists_the_files_and_a_resume_the_same(
    qac, model_server: ScriptedServer, nested: Path
):
    model_server.script(turn(text="one"))
    args = [*server_args(model_server), "-C", str(nested), "--output-format", "stream-json"]
    first = qac("run", "hi", *args)
    assert first.code == 0, first.stderr
    session = first.lines()[0]
    assert session["instructions"] == LISTED
    system = str(model_server.requests[0]["messages"][0]["content"])
    assert "pkg/notes.md (imported by pkg/AGENTS.md):\nNotes on the package." in system
    assert system.count("Run tests with python3 -m unittest.") == 1

    (nested / "AGENTS.md").write_text("Changed after the session started.\n")
    model_server.script(turn(text="two"))
    again = qac("run", "more", "--resume", str(session["session_id"]), *args)
    assert again.code == 0, again.stderr
    stamp = {"timestamp": again.lines()[0]["timestamp"]}
    assert again.lines()[0] == {**session, "resumed": True, **stamp}
    assert "Changed after" not in str(model_server.requests[1]["messages"][0]["content"])


def test_init_yes_has_the_model_write_agents_md_and_nothing_else(
    qac, model_server: ScriptedServer, tmp_path: Path
):
    project = tmp_path / "fresh"
    write(project / "Makefile", "test:\n\tpython3 -m unittest\n")
    init_repository(project, "fresh")
    written = "# AGENTS.md\n\n## Tests\n\n`make test`\n"
    model_server.script(
        turn(tool_call=("read_file", {"path": "Makefile"})),
        turn(tool_call=("write_file", {"path": "notes.txt", "content": "stray"})),
        turn(tool_call=("write_file", {"path": "AGENTS.md", "content": written})),
        turn(text="AGENTS.md covers the test command."),
    )

    out = qac("init", "--yes", *server_args(model_server), "-C", str(project))

    assert out.code == 0, out.stderr
    assert (project / "AGENTS.md").read_text() == written
    assert not (project / "notes.txt").exists()
    first = model_server.requests[0]["messages"]
    assert 'call write_file once, with path "AGENTS.md"' in first[-1]["content"]
    refused = model_server.requests[2]["messages"][-1]
    assert refused["content"].startswith("refused: this run may only write AGENTS.md")
    assert "AGENTS.md covers the test command." in out.stdout

    again = qac("init", "--yes", *server_args(model_server), "-C", str(project))
    assert (again.code, again.stderr) == (
        2,
        f"qac: {project / 'AGENTS.md'} exists already; pass --force to have it rewritten\n",
    )


def test_init_without_a_terminal_needs_yes(qac, model_server: ScriptedServer, repo: Path):
    (repo / "AGENTS.md").unlink()
    out = qac("init", *server_args(model_server), "-C", str(repo))
    assert out.code == 2
    assert "pass --yes to write it without asking" in out.stderr


def test_the_repl_banner_init_and_context_name_the_files(model_server: ScriptedServer, repo: Path):
    (repo / "AGENTS.md").unlink()
    model_server.script(
        turn(tool_call=("write_file", {"path": "AGENTS.md", "content": "Use make.\n"})),
        turn(text="WROTE-IT"),
    )
    child = spawn(model_server, repo)
    child.expect_exact("no instruction files (AGENTS.md, QWEN.md, CLAUDE.md)")
    child.expect_exact(PROMPT)

    submit(child, "/init")
    child.expect_exact("write_file wants to edit AGENTS.md")
    child.expect_exact("+Use make.")
    child.expect("allow\\?")
    child.sendline("y")
    child.expect_exact("WROTE-IT")
    child.expect_exact("sessions started from now on read AGENTS.md")
    child.expect_exact(PROMPT)

    submit(child, "/new")
    child.expect_exact(PROMPT)
    submit(child, "/context")
    child.expect_exact("repository context")
    child.expect_exact(f"instructions: AGENTS.md ({estimate_tokens('Use make.')} tokens)")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    assert (repo / "AGENTS.md").read_text() == "Use make.\n"
