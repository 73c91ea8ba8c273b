"""The only way qac runs git (DESIGN §11): on a repository found before the run started, with
its git directory and work tree given explicitly, and every configuration key that can run a
program neutralised for qac's own calls, whatever `.git/config`, the global config or the
tree says. A model that plants `core.fsmonitor`, a hook, a filter or a whole `.git` gets nothing
run by qac.

Owns GitPython; imports nothing above `config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qwen_agent_cli.errors import QacError

NEUTRAL_CONFIG = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", ":"),
    ("sequence.editor", ":"),
    ("core.askPass", ""),
    ("core.sshCommand", ""),
    ("core.gitProxy", ""),
    ("core.alternateRefsCommand", ""),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("gpg.program", ""),
    ("gpg.ssh.defaultKeyCommand", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("uploadpack.packObjectsHook", ""),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)
"""Keys that name a program (or make git start one), set to run nothing."""
DRIVER_KEY = re.compile(
    r"(filter\..+\.(clean|smudge|process|required)"
    r"|diff\..+\.(textconv|command)"
    r"|merge\..+\.driver"
    r"|credential\..+\.helper"
    r"|gpg\..+\.program"
    r"|pager\..+"
    r"|alias\..+)",
    re.IGNORECASE,
)
"""Per-name program keys (`filter.<driver>.clean`, …): found in the config, then emptied."""
NEUTRAL_ENV = {
    "GIT_PAGER": "cat",
    "GIT_EDITOR": ":",
    "GIT_SEQUENCE_EDITOR": ":",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_NO_LAZY_FETCH": "1",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_COUNT": "0",
}


class GitError(QacError):
    """A git command qac ran failed; carries git's own message."""

    exit_code = 2


@dataclass(frozen=True)
class Repository:
    """A work tree and its git directory, pinned when found; `git()` is the only runner."""

    root: Path
    git_dir: Path

    @property
    def name(self) -> str:
        return self.root.name

    @classmethod
    def find(cls, workdir: Path) -> Repository | None:
        """The repository around workdir, found by looking for `.git` (never by running git)."""
        workdir = workdir.resolve()
        for candidate in (workdir, *workdir.parents):
            dot_git = candidate / ".git"
            if dot_git.is_dir():
                return cls(candidate, dot_git)
            if dot_git.is_file():
                git_dir = _gitdir_from_file(dot_git)
                if git_dir is not None:
                    return cls(candidate, git_dir)
        return None

    def branch(self) -> str:
        """The checked-out branch, a short commit when detached, "" when it cannot tell."""
        try:
            text = (self.git_dir / "HEAD").read_text("utf-8", "replace").strip()
        except OSError:
            return ""
        return text.removeprefix("ref: refs/heads/") if text.startswith("ref:") else text[:12]

    def git(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run `git ARGS` here and return its output as text; see `_run`."""
        output = self._run(args, env, binary=False)
        assert isinstance(output, str)
        return output

    def git_bytes(self, *args: str, env: Mapping[str, str] | None = None) -> bytes:
        """Run `git ARGS` here and return its output as git's own bytes (patches, -z lists)."""
        output = self._run(args, env, binary=True)
        assert isinstance(output, bytes)
        return output

    def _run(
        self, args: tuple[str, ...], env: Mapping[str, str] | None, *, binary: bool
    ) -> str | bytes:
        """Run `git ARGS` on this repository with program-running config neutralised; raises
        GitError with git's message when it fails."""
        import git

        overrides = self._driver_overrides()
        full_env = {
            **NEUTRAL_ENV,
            **(env or {}),
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.root),
            "GIT_CONFIG_COUNT": str(len(overrides)),
        }
        for number, (key, value) in enumerate(overrides.items()):
            full_env[f"GIT_CONFIG_KEY_{number}"] = key
            full_env[f"GIT_CONFIG_VALUE_{number}"] = value
        command = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"]
        for key, value in NEUTRAL_CONFIG:
            command += ["-c", f"{key}={value}"]
        try:
            output = git.Git(str(self.root)).execute(
                [*command, *args],
                env=full_env,
                stdout_as_string=not binary,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as exc:
            message = exc.stderr.strip() if isinstance(exc.stderr, str) else str(exc)
            raise GitError(message.removeprefix("stderr: ").strip(" '")) from exc
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from exc
        assert isinstance(output, str | bytes)
        return output

    def _driver_overrides(self) -> dict[str, str]:
        """`filter.X.clean`-style keys from every config file git reads, each emptied. Given
        through GIT_CONFIG_KEY_n, since a `-c` value cannot hold a driver name with `=`. Read
        afresh for every call: an included file may have changed since the last one."""
        listing = self._list_config()
        found = {"core.fsmonitor": "false"}
        for entry in listing.split("\0"):
            key = entry.split("\n", 1)[0]
            if DRIVER_KEY.fullmatch(key):
                found[key] = "false" if key.lower().endswith(".required") else ""
        return found

    def _list_config(self) -> str:
        import git

        command = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "config", "--null", "--list"]
        try:
            output = git.Git(str(self.root)).execute(
                command,
                env={**NEUTRAL_ENV, "GIT_DIR": str(self.git_dir)},
                with_exceptions=False,
                strip_newline_in_stdout=False,
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from exc
        return output if isinstance(output, str) else ""


def _gitdir_from_file(dot_git: Path) -> Path | None:
    """A `.git` file (worktrees, submodules) names the real git directory."""
    try:
        text = dot_git.read_text("utf-8", "replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text.removeprefix("gitdir:").strip())
    target = target if target.is_absolute() else dot_git.parent / target
    return target.resolve() if target.is_dir() else None


def init_repository(path: Path, message: str) -> Repository:
    """A fresh repository at path with everything in it committed (demo and fixtures)."""
    import git

    repo = git.Repo.init(path, initial_branch="main")
    try:
        with repo.config_writer() as config:
            config.set_value("user", "name", "qac")
            config.set_value("user", "email", "qac@localhost")
    finally:
        repo.close()
    repository = Repository(path.resolve(), (path / ".git").resolve())
    repository.git("add", "-A")
    repository.git("commit", "-q", "-m", message)
    return repository
