"""Layered configuration and the shipped provider profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_agent_cli.config import load_settings
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.profiles import load_profiles


def settings_from(
    tmp_path: Path, user: str = "", project: str = "", env=None, flags=None, trusted=True
):
    user_file = tmp_path / "user.toml"
    user_file.write_text(user)
    (tmp_path / ".qac").mkdir(exist_ok=True)
    (tmp_path / ".qac" / "config.toml").write_text(project)
    return load_settings(
        env=env or {},
        user_file=user_file,
        project_dir=tmp_path,
        flags=flags or {},
        trusted_project=trusted,
    )


def test_layers_apply_in_order(tmp_path: Path):
    base = settings_from(tmp_path)
    assert (base.max_turns, base.sandbox, base.provider) == (50, "workspace-write", "dashscope")
    user = settings_from(tmp_path, user="max_turns = 10\nprovider = 'vllm'\n")
    assert (user.max_turns, user.provider) == (10, "vllm")
    project = settings_from(tmp_path, user="max_turns = 10", project="max_turns = 20")
    assert project.max_turns == 20
    env = settings_from(tmp_path, project="max_turns = 20", env={"QAC_MAX_TURNS": "30"})
    assert env.max_turns == 30
    flags = settings_from(tmp_path, env={"QAC_MAX_TURNS": "30"}, flags={"max_turns": 40})
    assert flags.max_turns == 40


def test_tables_flatten_into_settings(tmp_path: Path):
    settings = settings_from(
        tmp_path,
        project=(
            "[sandbox]\nmode = 'read-only'\nnetwork = true\nenv = ['CARGO_HOME']\n"
            "[approval]\nmode = 'ask'\nallow = ['pytest*']\ndeny = ['curl *']\n"
        ),
    )
    assert settings.sandbox == "read-only"
    assert settings.sandbox_network is True
    assert settings.sandbox_env == ("CARGO_HOME",)
    assert (settings.approval, settings.allow, settings.deny) == ("ask", ("pytest*",), ("curl *",))


def test_a_user_profile_extends_the_packaged_ones(tmp_path: Path):
    settings = settings_from(
        tmp_path,
        user=(
            "provider = 'gpu-box'\n[providers.gpu-box]\nbase_url = 'http://gpu:8000/v1'\n"
            "model = 'Qwen/Qwen3.6-27B'\nthinking_switch = 'chat_template_kwargs'\n"
            "preserve_switch = 'chat_template_kwargs'\nreasoning_fields = ['reasoning']\n"
        ),
    )
    assert settings.profile.base_url == "http://gpu:8000/v1"
    assert settings.profile.reasoning_fields == ("reasoning",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user": "max_turns = "}, "not valid TOML"),
        ({"user": "max_turns = 'many'"}, "must be an integer"),
        ({"user": "colour = 'blue'"}, "not a known setting"),
        ({"project": "sandbox = 'sometimes'"}, "sandbox must be one of"),
        ({"env": {"QAC_THINKING": "perhaps"}}, "QAC_THINKING has a bad value"),
        ({"flags": {"provider": "nowhere"}}, "unknown provider 'nowhere'"),
        (
            {"user": "[providers.x]\nbase_url = 'u'\nmodel = 'm'\nthinking_switch = 'loud'"},
            "thinking_switch must be one of",
        ),
        ({"flags": {"max_cost": -1.0}}, "max_cost must be a number greater than 0"),
    ],
)
def test_bad_config_names_its_source(tmp_path: Path, kwargs, message: str):
    with pytest.raises(ConfigError, match=message):
        settings_from(tmp_path, **kwargs)


def test_every_provider_in_the_design_has_a_profile():
    profiles = load_profiles()
    for name in (
        "dashscope",
        "dashscope-cn",
        "openrouter",
        "vllm",
        "sglang",
        "llamacpp",
        "ollama",
        "lmstudio",
        "openai",
    ):
        assert profiles[name].base_url.startswith("http")
    assert profiles["dashscope"].base_url != profiles["dashscope-cn"].base_url
    assert profiles["vllm"].reasoning_fields == ("reasoning", "reasoning_content")
    assert profiles["dashscope"].honours_preserve("qwen3.6-max-preview")
    assert not profiles["dashscope"].honours_preserve("qwen-turbo")
    assert not profiles["ollama"].honours_preserve("qwen3.6:35b-a3b")


def test_config_commands(qac, tmp_path: Path):
    shown = qac("config", "show", "-C", str(tmp_path))
    assert shown.code == 0
    assert 'provider = "dashscope"' in shown.stdout
    path = qac("config", "path", "-C", str(tmp_path))
    assert "(not present)" in path.stdout
    assert qac("config", "init").code == 0
    again = qac("config", "init")
    assert again.code == 2
    assert "already exists" in again.stderr
    assert qac("config", "init", "--project", "-C", str(tmp_path)).code == 0
    assert (tmp_path / ".qac" / "config.toml").read_text().startswith("# qac configuration")
    assert "(not present)" not in qac("config", "path", "-C", str(tmp_path)).stdout


def test_an_untrusted_project_can_add_deny_patterns_but_never_remove_any(tmp_path: Path):
    settings = settings_from(
        tmp_path,
        user="[approval]\ndeny = ['curl *']\n[sandbox]\nsecret_env = ['MY_DB']\n",
        project="[approval]\ndeny = []\n[sandbox]\nsecret_env = []\n",
        trusted=False,
    )
    assert settings.deny == ("curl *",)
    assert settings.sandbox_secret_env == ("MY_DB",)
    added = settings_from(tmp_path, project="[approval]\ndeny = ['make *']\n", trusted=False)
    assert "git push*" in added.deny
    assert "make *" in added.deny
