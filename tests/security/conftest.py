"""Fixtures of the security suite: a fake home with a private key and secrets in the
environment, and the real sandbox, which the suite needs (it fails, never skips, without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_agent_cli.sandbox import find_bwrap, preflight

SECRETS = {
    "DASHSCOPE_API_KEY": "sk-dashscope-secret-value-1",
    "GITHUB_TOKEN": "ghp-secret-token-value-2",
    "AWS_SECRET": "aws-secret-value-3",
    "MY_SERVICE_API_KEY": "service-secret-value-4",
    "DB_PASSWORD": "db-password-value-5",
}
PRIVATE_KEY = "-----BEGIN FAKE OPENSSH PRIVATE KEY----- do-not-leak"


@pytest.fixture(autouse=True)
def bubblewrap_works() -> None:
    problem = preflight(find_bwrap())
    assert problem is None, problem


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(PRIVATE_KEY)
    monkeypatch.setenv("HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return home
