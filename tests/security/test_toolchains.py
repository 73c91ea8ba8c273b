"""Toolchains installed under the user's home work in the sandbox (rustup's cargo, pyenv's
shims, nvm, Go's module cache...): bound back read-only with the variables that name them,
while their credential files stay covered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwen_agent_cli.repository import init_repository
from qwen_agent_cli.scripted import ScriptedServer, turn
from tests.conftest import server_args

REAL_HOME = Path.home()
CARGO_SECRET = "cargo-registry-token-do-not-leak"


def tool_outputs(server: ScriptedServer) -> list[str]:
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


@pytest.mark.skipif(
    not (REAL_HOME / ".rustup").is_dir(), reason="needs rustup's cargo under the home"
)
def test_a_passing_crate_with_rustups_cargo_is_already_passing_in_the_sandbox(
    qac: Any, tmp_path: Path
):
    crate = tmp_path / "crate"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "adder"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (crate / "src" / "lib.rs").write_text(
        "pub fn add(a: u32, b: u32) -> u32 { a + b }\n\n"
        "#[cfg(test)]\nmod tests {\n    #[test]\n"
        "    fn adds() { assert_eq!(super::add(2, 2), 4); }\n}\n"
    )
    (crate / ".gitignore").write_text("target/\n")
    init_repository(crate, "crate")
    with ScriptedServer([]) as server:
        out = qac(
            "ci",
            "--test-cmd",
            "cargo test --offline",
            *server_args(server),
            "-C",
            str(crate),
            "--output-format",
            "json",
        )
        requests = len(server.requests)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "already_passing", out.stdout
    assert requests == 0


@pytest.mark.skipif(not (REAL_HOME / ".pyenv").is_dir(), reason="needs pyenv under the home")
def test_pyenv_shims_run_in_the_sandbox(qac: Any, model_server: ScriptedServer, repo: Path):
    model_server.script(
        turn(tool_call=("shell", {"command": f"{REAL_HOME}/.pyenv/shims/python3 --version"})),
        turn(text="done"),
    )
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    (shown,) = tool_outputs(model_server)
    assert "exit code 0" in shown
    assert "Python 3." in shown


def test_toolchain_folders_come_back_read_only_without_their_credentials(
    qac: Any, model_server: ScriptedServer, repo: Path, fake_home: Path
):
    for folder in (".cargo/bin", ".cargo/registry/cache", ".rustup/toolchains", ".nvm", "go/pkg"):
        (fake_home / folder).mkdir(parents=True)
    (fake_home / ".cargo" / "credentials.toml").write_text(f'token = "{CARGO_SECRET}"\n')
    (fake_home / ".nvm" / "nvm.sh").write_text("# nvm\n")
    command = (
        'echo "CARGO_HOME=$CARGO_HOME RUSTUP_HOME=$RUSTUP_HOME NVM_DIR=$NVM_DIR GOPATH=$GOPATH"; '
        'cat "$CARGO_HOME/credentials.toml"; ls "$NVM_DIR"; touch "$CARGO_HOME/planted" || true'
    )
    model_server.script(turn(tool_call=("shell", {"command": command})), turn(text="done"))
    out = qac("run", "x", *server_args(model_server), "-C", str(repo))
    assert out.code == 0, out.stderr
    (shown,) = tool_outputs(model_server)
    assert (
        f"CARGO_HOME={fake_home}/.cargo RUSTUP_HOME={fake_home}/.rustup "
        f"NVM_DIR={fake_home}/.nvm GOPATH={fake_home}/go"
    ) in shown
    assert "nvm.sh" in shown
    assert CARGO_SECRET not in shown
    assert not (fake_home / ".cargo" / "planted").exists()
