"""Trust in a project's own configuration (DESIGN §11): granted by the user, outside the
repository, never by the model. A record holds the project's path and the hash of its
trust-relevant files, so a changed file needs trust again.

Imports `config` (for the file names) and the guard; never reads the process environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_agent_cli.config import COMMANDS_DIR, MCP_PROJECT_FILE, PROJECT_CONFIG
from qwen_agent_cli.errors import ConfigError, ToolError
from qwen_agent_cli.guard import inside, read_capped

TRUST_FILE = "trusted-projects.json"
TRUSTED_FILES = (PROJECT_CONFIG, MCP_PROJECT_FILE)
"""The project files whose loosening keys take effect only once the project is trusted."""
READ_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class TrustRecord:
    path: str
    digest: str
    trusted_at: float


def has_project_config(project: Path) -> bool:
    """Whether the project has any of the files trust is about (so trust is worth looking up)."""
    return (
        any((project / name).is_file() for name in TRUSTED_FILES)
        or (project / COMMANDS_DIR).is_dir()
    )


def project_digest(project: Path) -> str:
    """One hash over the trust-relevant files as they are now (absent, refused, or their bytes),
    read through the guard: a link out of the project counts as refused, never followed."""
    digest = hashlib.sha256()
    for name in TRUSTED_FILES:
        digest.update(str(name).encode() + b"\0")
        path = project / name
        if not path.exists() and not path.is_symlink():
            digest.update(b"absent\0")
            continue
        try:
            data = read_capped(project, name, READ_LIMIT)
        except ToolError:
            digest.update(b"refused\0")
            continue
        digest.update(hashlib.sha256(data).digest())
    for listed in command_files(project):  # none: the digest stays what it was before commands
        try:
            data = read_capped(project, listed, READ_LIMIT)
        except ToolError:
            data = b"refused"
        digest.update(f"{listed}\0".encode() + hashlib.sha256(data).digest())
    return "sha256:" + digest.hexdigest()


def command_files(project: Path) -> list[str]:
    """The project's command files (their shell lines run once it is trusted), so a changed
    command needs trust again; links to folders are not followed."""
    base = project / COMMANDS_DIR
    if not base.is_dir() or not inside(project, base):
        return []
    return sorted(
        str(Path(folder, name).relative_to(project))
        for folder, _, names in os.walk(base)
        for name in names
        if name.endswith(".md")
    )


class TrustStore:
    """The user's trust records, a JSON file beside the user config (0600)."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / TRUST_FILE

    def records(self) -> dict[str, TrustRecord]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the trust records {self.path}: {exc}; fix or remove the file"
            ) from exc
        projects = data.get("projects", {}) if isinstance(data, dict) else {}
        return {
            path: TrustRecord(path, str(entry.get("digest", "")), float(entry.get("at", 0)))
            for path, entry in projects.items()
            if isinstance(entry, dict)
        }

    def is_trusted(self, project: Path) -> bool:
        """Whether the user trusted this project with its trust-relevant files as they are now."""
        record = self.records().get(str(project.resolve()))
        return record is not None and record.digest == project_digest(project)

    def trust(self, project: Path) -> TrustRecord:
        record = TrustRecord(str(project.resolve()), project_digest(project), time.time())
        records = self.records()
        records[record.path] = record
        self._save(records)
        return record

    def revoke(self, project: Path) -> bool:
        records = self.records()
        removed = records.pop(str(project.resolve()), None)
        if removed is not None:
            self._save(records)
        return removed is not None

    def _save(self, records: dict[str, TrustRecord]) -> None:
        data: dict[str, Any] = {
            "projects": {
                path: {"digest": r.digest, "at": r.trusted_at} for path, r in records.items()
            }
        }
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        temporary = self.path.with_name(f".{TRUST_FILE}.{secrets.token_hex(6)}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with os.fdopen(os.open(temporary, flags, 0o600), "w", encoding="utf-8") as out:
                out.write(text)
            temporary.replace(self.path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigError(f"cannot write the trust records {self.path}: {exc}") from exc
