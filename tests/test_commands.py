"""Custom slash commands: found in the project's `.qac/commands/` and the user's `commands/`,
expanded (arguments, `@file`, shell lines in the sandbox) and run by `qac run` and the REPL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pexpect

from qwen_agent_cli import commands
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args
from tests.test_repl_pty import PROMPT, spawn, submit


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_message(request: dict[str, object]) -> str:
    messages = request["messages"]
    assert isinstance(messages, list)
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    assert isinstance(content, str)
    return content


def test_project_user_and_folder_commands_are_found_user_first(repo: Path, clean_environ: Path):
    project = repo / ".qac" / "commands"
    write(project / "review.md", "project review")
    write(project / "git" / "commit.md", "---\ndescription: Commit it\n---\ncommit now")
    write(project / "help.md", "a built-in's name")
    write(project / "not a name.md", "skipped: it cannot be typed")
    write(project / "notes.txt", "not markdown")
    write(clean_environ / "commands" / "review.md", "user review")

    found, notices = commands.discover(repo, clean_environ / "commands", ["/help"])

    assert sorted(found) == ["/git:commit", "/review"]
    assert (found["/review"].body, found["/review"].project) == ("user review", False)
    commit = found["/git:commit"]
    assert (commit.body, commit.description, commit.project) == ("commit now", "Commit it", True)
    assert notices == [
        f"{project / 'help.md'}: /help is a built-in command, so this file is not used"
    ]


def test_front_matter_and_arguments(repo: Path):
    text = (
        "---\n"
        'description: "Fix an issue"\n'
        "argument-hint: [issue] [priority]\n"
        "model: qwen3.6-plus  # this turn only\n"
        "allowed-tools: [read_file, 'grep'] # no others\n"
        "---\n"
        "Fix issue $1 at priority $2 ($ARGUMENTS); $3 is empty, $10 is not ours.\n"
    )
    command = commands.parse(text, "/fix", repo / "fix.md", project=False)
    assert (command.description, command.argument_hint, command.model) == (
        "Fix an issue",
        "[issue] [priority]",
        "qwen3.6-plus",
    )
    assert command.allowed_tools == ("read_file", "grep")
    listed = commands.parse(
        "---\nallowed-tools:\n  - shell\n  - edit_file\n---\nx", "/l", repo / "l.md", project=True
    )
    assert listed.allowed_tools == ("shell", "edit_file")
    assert commands.substitute(command.body, '"issue 7" high') == (
        'Fix issue issue 7 at priority high ("issue 7" high);  is empty, $10 is not ours.'
    )
    assert commands.substitute("Say $1", "$2 literally") == "Say $2"
    assert commands.substitute("No placeholders.", "extra words") == (
        "No placeholders.\n\nARGUMENTS: extra words"
    )


def test_run_expands_a_user_command_with_its_file_and_shell_line(
    qac, model_server: ScriptedServer, repo: Path, clean_environ: Path
):
    (repo / "calc.py").write_text("changed\n")
    write(
        clean_environ / "commands" / "review.md",
        "---\ndescription: Review a file\n---\n"
        "Review @$1 for $2.\n"
        "!`git status --short`\n"
        "!`echo in-sandbox; ls ~/.ssh 2>&1 | head -1; exit 3`\n"
        "Be brief.",
    )
    model_server.script(turn(text="Reviewed."))

    out = qac("run", "/review calc.py bugs", *server_args(model_server), "-C", str(repo))

    assert (out.code, out.stdout.strip()) == (0, "Reviewed."), out.stderr
    sent = user_message(model_server.requests[0])
    head, _, attached = sent.partition("\n\n<file")
    assert head.splitlines()[:2] == ["Review @calc.py for bugs.", " M calc.py"]
    assert head.splitlines()[2] == "in-sandbox"
    assert head.splitlines()[-2:] == ["[exit code 3]", "Be brief."]
    assert attached == ' path="calc.py">\nchanged\n\n</file>'


def test_an_untrusted_projects_shell_lines_are_refused_until_trusted(
    qac, model_server: ScriptedServer, repo: Path
):
    write(repo / ".qac" / "commands" / "status.md", "Status:\n!`echo RAN-IT`\nSummarize.")
    model_server.script(turn(text="one"), turn(text="two", reset_prefix=True))

    out = qac("run", "/status", *server_args(model_server), "-C", str(repo))

    assert out.code == 0, out.stderr
    assert out.stderr.count("\n") == 1
    assert "the project is not trusted" in out.stderr
    assert "`qac trust`" in out.stderr
    assert user_message(model_server.requests[0]) == (
        "Status:\n[not run: `echo RAN-IT`; the project is not trusted]\nSummarize."
    )

    assert qac("trust", str(repo)).code == 0
    out = qac("run", "/status", *server_args(model_server), "-C", str(repo))
    assert (out.code, out.stderr) == (0, "")
    assert user_message(model_server.requests[1]) == "Status:\nRAN-IT\nSummarize."


def test_a_changed_command_needs_trust_again(qac, repo: Path, clean_environ: Path):
    from qwen_agent_cli.trust import TrustStore

    write(repo / ".qac" / "commands" / "status.md", "!`echo one`")
    assert qac("trust", str(repo)).code == 0
    store = TrustStore(clean_environ)
    assert store.is_trusted(repo)
    write(repo / ".qac" / "commands" / "status.md", "!`curl evil`")
    assert not store.is_trusted(repo)


def test_model_and_allowed_tools_hold_for_the_command(
    qac, model_server: ScriptedServer, repo: Path
):
    write(
        repo / ".qac" / "commands" / "look.md",
        "---\nmodel: qwen3.6-special\nallowed-tools: read_file\n---\nLook at calc.py.",
    )
    model_server.script(
        turn(tool_call=("shell", {"command": "echo hi"})),
        turn(text="Only reading."),
    )

    out = qac("run", "/look", *server_args(model_server), "-C", str(repo))

    assert out.code == 0, out.stderr
    assert model_server.requests[0]["model"] == "qwen3.6-special"
    result = model_server.requests[1]["messages"][-1]
    assert result["role"] == "tool"
    assert result["content"] == "refused: this command allows only these tools: read_file"


def test_bad_front_matter_is_one_clear_error(qac, model_server: ScriptedServer, repo: Path):
    path = write(repo / ".qac" / "commands" / "bad.md", "---\ndescription: ok\ncolor: red\n---\nx")

    out = qac("run", "/bad now", *server_args(model_server), "-C", str(repo))

    assert out.code == 2
    assert out.stderr == (
        f"qac: {path}: line 3 of the front matter: unknown key 'color' "
        "(known: description, argument-hint, model, allowed-tools)\n"
    )
    assert model_server.requests == []


def test_an_unknown_slash_prompt_is_sent_as_text(qac, model_server: ScriptedServer, repo: Path):
    model_server.script(turn(text="ok"))
    out = qac("run", "/nothing here", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    assert user_message(model_server.requests[0]) == "/nothing here"


def test_the_repl_lists_completes_and_runs_custom_commands(
    model_server: ScriptedServer, repo: Path, clean_environ: Path
):
    write(
        clean_environ / "commands" / "greet.md",
        "---\ndescription: Say hello\nargument-hint: NAME\nmodel: qwen3.6-greeter\n---\n"
        "Greet $1 warmly.",
    )
    write(clean_environ / "commands" / "broken.md", "---\ncolor: red\n---\nx")
    write(repo / ".qac" / "commands" / "probe.md", "Probe:\n!`echo PROBED-$((6*7))`")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    model_server.script(turn(text="HELLO-DONE"), turn(text="PROBE-ONE"), turn(text="PROBE-TWO"))
    child = spawn(model_server, repo, "--approval", "auto")
    child.expect_exact(PROMPT)

    submit(child, "/help")
    child.expect_exact("/greet")
    child.expect_exact("NAME Say hello (user)")
    child.expect_exact(PROMPT)
    child.send("/gre")
    child.send("\t")
    child.expect_exact("Say hello")
    submit(child, " Ada")
    child.expect_exact("HELLO-DONE")
    child.expect_exact(PROMPT)
    assert user_message(model_server.requests[0]) == "Greet Ada warmly."

    submit(child, "/probe")
    child.expect_exact("shell lines? y/n")
    assert "echo PROBED-$((6*7))" in child.before
    child.sendline("y")
    child.expect_exact("PROBE-ONE")
    child.expect_exact(PROMPT)
    assert user_message(model_server.requests[1]) == "Probe:\nPROBED-42"
    models = [r["model"] for r in model_server.requests]
    assert models[0] == "qwen3.6-greeter"
    assert models[1] != "qwen3.6-greeter"  # the command's model held for its turn only
    submit(child, "/broken")  # one red line; the REPL goes on
    child.expect_exact("'color'")
    child.expect_exact(PROMPT)
    submit(child, "/probe")  # asked once per command: the answer holds
    child.expect_exact("PROBE-TWO")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
