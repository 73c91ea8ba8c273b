"""The evaluation's output folder: `results.jsonl`, append-only and fsynced line by line (the
commit point of a job, so a re-run skips exactly what is in it; a line torn by a kill is cut
off and its job runs again), the SWE-bench predictions rebuilt from it, the job folders and
`eval.json` (the arms, for the report and `merge`).

Imports nothing above `errors`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from qwen_agent_cli import jsonl
from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.evaluation.tasks import ARM_NAME

RESULTS = "results.jsonl"
META = "eval.json"
LOCK = ".lock"
JOBS = "jobs"
SAFE = re.compile(r"[^A-Za-z0-9._-]")
Key = tuple[str, str]
Record = dict[str, Any]


def job_dir_name(task_id: str) -> str:
    """A folder name for a task id: the id where it is safe, else a cleaned id and a hash."""
    clean = SAFE.sub("_", task_id)[:80].lstrip(".") or "task"
    if clean == task_id:
        return clean
    return f"{clean}-{hashlib.sha256(task_id.encode()).hexdigest()[:8]}"


def job_path(task_id: str, arm: str) -> str:
    """The job's folder, relative to the evaluation's folder."""
    return f"{JOBS}/{arm}/{job_dir_name(task_id)}"


def key_of(record: Record) -> Key:
    return (str(record["task"]), str(record["arm"]))


class ResultLog:
    """The results of one output folder; one writer at a time (a lock file says so)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / RESULTS
        self.records: dict[Key, Record] = {}
        self._lock: IO[bytes] | None = None

    def open(self) -> ResultLog:
        """Take the folder's lock and read what is done; a torn last line is cut off."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = (self.out / LOCK).open("ab")
        except OSError as exc:
            raise ConfigError(f"cannot write to {self.out}: {exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise ConfigError(
                f"another qac eval is writing to {self.out}; wait for it or use another --out"
            ) from None
        self.records = read_results(self.path, repair=True)
        return self

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def append(self, record: Record) -> None:
        """Write one finished job, durably, before anyone is told it is done."""
        line = (jsonl.dumps(record) + "\n").encode("utf-8")
        with self.path.open("ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records[key_of(record)] = record


def read_results(path: Path, *, repair: bool = False) -> dict[Key, Record]:
    """The records by (task, arm); the first of a repeated key wins. With `repair`, a torn last
    line (no newline: the writer was killed mid-line) is cut from the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as handle:
            handle.truncate(len(complete))
            os.fsync(handle.fileno())
    records: dict[Key, Record] = {}
    for number, raw in enumerate(complete.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            key = key_of(record)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path}:{number}: not a result line; fix or remove it") from None
        records.setdefault(key, record)
    return records


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    (out / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_meta(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {out / META}: {exc}") from None
    return data if isinstance(data, dict) else {}


def predictions_path(out: Path, arm: str) -> Path:
    return out / f"predictions-{arm}.jsonl"


def prediction(out: Path, record: Record) -> dict[str, str]:
    """The SWE-bench prediction of one job: its patch, as git wrote it."""
    patch = ""
    path = within(out, record.get("patch"))
    if path is not None:
        with contextlib.suppress(OSError):
            patch = path.read_text(encoding="utf-8", errors="surrogateescape")
    return {
        "instance_id": str(record["task"]),
        "model_name_or_path": f"qac:{record['arm']}",
        "model_patch": patch,
    }


def append_prediction(out: Path, record: Record) -> None:
    with predictions_path(out, str(record["arm"])).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(prediction(out, record)) + "\n")


def rebuild_predictions(out: Path, records: Iterable[Record], arms: Iterable[str]) -> None:
    """One predictions file per arm, exactly the recorded jobs (no line a kill left twice)."""
    by_arm: dict[str, list[Record]] = {arm: [] for arm in arms}
    for record in records:
        by_arm.setdefault(str(record["arm"]), []).append(record)
    for arm, chosen in by_arm.items():
        lines = [json.dumps(prediction(out, r)) + "\n" for r in chosen]
        predictions_path(out, arm).write_text("".join(lines), encoding="utf-8")


def merge_dirs(sources: list[Path], out: Path) -> tuple[list[Record], dict[str, Any]]:
    """Every shard's results in one folder (their job folders copied in); arms must agree."""
    merged: dict[Key, Record] = {}
    meta: dict[str, Any] = {}
    for source in sources:
        if not (source / RESULTS).exists():
            raise ConfigError(f"{source} holds no {RESULTS}; is it a qac eval --out folder?")
        source_meta = read_meta(source)
        if meta and source_meta.get("arms") != meta.get("arms"):
            raise ConfigError(f"{source} ran other arms than {sources[0]}; merge runs of one eval")
        meta = meta or source_meta
        for key, record in read_results(source / RESULTS).items():
            if key in merged:
                continue  # two shards ran the same pair: keep the first
            if not ARM_NAME.match(str(record.get("arm"))):
                raise ConfigError(f"{source / RESULTS} names an arm qac never writes; not merged")
            merged[key] = record
            for name in ("patch", "session", "report"):
                _copy_into(source, out, record.get(name))
    return list(merged.values()), {k: v for k, v in meta.items() if k != "shard"}


def within(root: Path, relative: Any) -> Path | None:
    """`root/relative` when it is a plain relative path that stays inside root, links
    resolved; None otherwise. A results file may come from another machine (a CI shard), so
    the paths it names are checked before anything is read or written there."""
    if not isinstance(relative, str) or not relative:
        return None
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        return None
    path = root / relative
    return path if path.resolve().is_relative_to(root.resolve()) else None


def _copy_into(source: Path, out: Path, relative: Any) -> None:
    origin, target = within(source, relative), within(out, relative)
    if origin is None or target is None:
        return
    if source.resolve() == out.resolve() or target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        shutil.copyfile(origin, target)


def ordered(records: Iterable[Record], arms: list[str]) -> Iterator[Record]:
    """Records by task id, then in the arms' order: the same for a run and a merge of shards."""
    rank = {arm: i for i, arm in enumerate(arms)}
    yield from sorted(
        records, key=lambda r: (str(r["task"]), rank.get(str(r["arm"]), len(rank)), r["arm"])
    )
