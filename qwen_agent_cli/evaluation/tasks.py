"""The task file and the arms: JSON Lines of bug-fix tasks (ours, or SWE-bench instances with
local checkouts and a test-command template), and `NAME=FLAGS` arms. Every problem is a
ConfigError naming the line, found before anything runs.

Imports nothing above `errors`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_agent_cli.errors import ConfigError

URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TASK_BUDGETS = {
    "max_turns": "--max-turns",
    "max_cost": "--max-cost",
    "timeout": "--timeout",
    "test_timeout": "--test-timeout",
}
ARM_OPTIONS = frozenset(
    {
        "--provider",
        "--model",
        "--base-url",
        "--api-key-env",
        "--thinking-budget",
        "--sandbox",
        "--approval",
        "--max-turns",
        "--max-cost",
        "--timeout",
        "--test-timeout",
        "--map-tokens",
        "--compact-at",
    }
)
"""Options an arm may set, each with a value; the rest of `qac ci`'s options are the eval's."""
ARM_SWITCHES = frozenset(
    {"--thinking", "--no-thinking", "--preserve-thinking", "--no-preserve-thinking"}
)
DEFAULT_ARMS = ("preserve=--preserve-thinking", "no-preserve=--no-preserve-thinking")
SWE_FIELDS = ("instance_id", "repo", "base_commit", "problem_statement")


@dataclass(frozen=True, slots=True)
class Task:
    """One bug-fix task, as the runner needs it."""

    id: str
    repo: str
    """An absolute local path, or a git URL."""
    base_commit: str
    prompt: str
    test_cmd: str
    hidden_test_cmd: str = ""
    """The verdict, run after the job on a clean checkout with the patch; "" reruns test_cmd."""
    test_patch: str = ""
    """Applied before the verdict (SWE-bench's test_patch): files the model never sees."""
    tests_visible: bool = False
    """SWE-bench instances: test_patch is committed before the run so test_cmd can fail."""
    setup_cmd: str = ""
    budgets: tuple[str, ...] = ()
    """Per-task `qac ci` budget flags."""
    line: int = 0

    @property
    def is_url(self) -> bool:
        return bool(URL.match(self.repo))


@dataclass(frozen=True, slots=True)
class Arm:
    """A named set of `qac ci` flags."""

    name: str
    flags: tuple[str, ...]


def parse_arm(text: str) -> Arm:
    """`NAME=FLAGS`, FLAGS split like a shell; only settings of a run are accepted."""
    name, sep, flags = text.partition("=")
    if not sep or not ARM_NAME.match(name.strip()):
        raise ConfigError(
            f"--arm {text!r}: write NAME=FLAGS, NAME of letters, digits, '.', '_' or '-' "
            '(e.g. --arm "flash=--model qwen3.6-flash")'
        )
    try:
        words = shlex.split(flags)
    except ValueError as exc:
        raise ConfigError(f"--arm {name}: cannot split its flags: {exc}") from None
    check_flags(words, f"--arm {name}")
    return Arm(name.strip(), tuple(words))


def check_flags(words: Sequence[str], where: str) -> None:
    """Refuse options that are not a run's settings (the eval owns --out, -C, --test-cmd...)."""
    index = 0
    while index < len(words):
        word = words[index]
        option = word.split("=", 1)[0]
        if option in ARM_SWITCHES and "=" not in word:
            index += 1
        elif option in ARM_OPTIONS:
            if "=" not in word and index + 1 >= len(words):
                raise ConfigError(f"{where}: {word} needs a value")
            index += 1 if "=" in word else 2
        else:
            allowed = ", ".join(sorted(ARM_OPTIONS | ARM_SWITCHES))
            raise ConfigError(f"{where}: {word!r} is not a run setting an arm may set ({allowed})")


def arms_from(texts: Sequence[str]) -> list[Arm]:
    """The arms given, or the default pair; names must differ."""
    arms = [parse_arm(text) for text in (texts or DEFAULT_ARMS)]
    names = [arm.name for arm in arms]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"--arm {name} is given twice; each arm needs its own name")
    return arms


@dataclass(frozen=True, slots=True)
class SweOptions:
    """How SWE-bench instances become tasks: where the checkouts are, how tests are run."""

    repos_dir: Path | None = None
    test_cmd_template: str | None = None


def load_tasks(path: Path, swe: SweOptions = SweOptions()) -> list[Task]:
    """Every task in the file, in order; a bad line is a ConfigError that names it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no task file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the task file {path}: {exc}") from None
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a task is a JSON object")
        if "instance_id" in data:
            task = _swe_task(data, where, number, swe)
        else:
            task = _our_task(data, where, number, path.parent)
        if task.id in seen:
            raise ConfigError(
                f"{where}: task id {task.id!r} is already used on line {seen[task.id]}"
            )
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"{path} holds no tasks")
    return tasks


def _text(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"{where}: {key!r} must be a non-empty string")
    return value


def _budgets(data: dict[str, Any], where: str) -> tuple[str, ...]:
    flags: list[str] = []
    for key, flag in TASK_BUDGETS.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: {key!r} must be a positive number")
        flags += [flag, str(int(value) if key == "max_turns" else value)]
    return tuple(flags)


def _repo(value: str, where: str, base: Path) -> str:
    if URL.match(value):
        return value
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not (path / ".git").exists():
        raise ConfigError(f"{where}: repo {value!r} is not a git repository ({path})")
    return str(path)


def _our_task(data: dict[str, Any], where: str, number: int, base: Path) -> Task:
    task_id = _text(data, "id", where)
    return Task(
        id=task_id,
        repo=_repo(_text(data, "repo", where), where, base),
        base_commit=_text(data, "base_commit", where),
        prompt=_text(data, "prompt", where),
        test_cmd=_text(data, "test_cmd", where),
        hidden_test_cmd=_text(data, "hidden_test_cmd", where, required=False),
        test_patch=_text(data, "test_patch", where, required=False),
        setup_cmd=_text(data, "setup_cmd", where, required=False),
        budgets=_budgets(data, where),
        line=number,
    )


def _swe_task(data: dict[str, Any], where: str, number: int, swe: SweOptions) -> Task:
    """A SWE-bench instance: the checkout from --repos-dir, the test patch committed before the
    run (qac ci needs a failing command), FAIL_TO_PASS visible, both lists as the verdict."""
    fields = {key: _text(data, key, where) for key in SWE_FIELDS}
    if swe.repos_dir is None or swe.test_cmd_template is None:
        raise ConfigError(
            f"{where}: a SWE-bench instance needs --repos-dir (local checkouts) and "
            "--test-cmd-template (e.g. 'python -m pytest -q {tests}')"
        )
    name = fields["repo"]
    candidates = [swe.repos_dir / name.replace("/", "__"), swe.repos_dir / name]
    candidates.append(swe.repos_dir / name.rsplit("/", 1)[-1])
    checkout = next((c for c in candidates if (c / ".git").exists()), None)
    if checkout is None:
        raise ConfigError(
            f"{where}: no checkout of {name} in {swe.repos_dir} "
            f"(looked for {', '.join(c.name for c in candidates)})"
        )
    fail = _test_list(data, "FAIL_TO_PASS", where)
    keep = _test_list(data, "PASS_TO_PASS", where)

    def command(tests: list[str]) -> str:
        assert swe.test_cmd_template is not None
        quoted = {
            "tests": " ".join(shlex.quote(t) for t in tests),
            "FAIL_TO_PASS": " ".join(shlex.quote(t) for t in fail),
            "PASS_TO_PASS": " ".join(shlex.quote(t) for t in keep),
            "instance_id": shlex.quote(fields["instance_id"]),
            "repo": shlex.quote(name),
        }
        try:
            return swe.test_cmd_template.format(**quoted)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"--test-cmd-template: unknown or bad placeholder {exc} (use {{tests}}, "
                "{FAIL_TO_PASS}, {PASS_TO_PASS}, {instance_id}, {repo})"
            ) from None

    return Task(
        id=fields["instance_id"],
        repo=str(checkout.resolve()),
        base_commit=fields["base_commit"],
        prompt=fields["problem_statement"],
        test_cmd=command(fail),
        hidden_test_cmd=command(fail + keep),
        test_patch=_text(data, "test_patch", where, required=False),
        tests_visible=True,
        setup_cmd=_text(data, "setup_cmd", where, required=False),
        budgets=_budgets(data, where),
        line=number,
    )


def _test_list(data: dict[str, Any], key: str, where: str) -> list[str]:
    """SWE-bench writes these lists as JSON text inside the JSON line; both shapes are read."""
    value = data.get(key, [])
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise ConfigError(f"{where}: {key!r} is not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ConfigError(f"{where}: {key!r} must be a list of test names")
    return value
