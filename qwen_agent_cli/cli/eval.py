"""`qac eval TASKS.jsonl` and `qac eval merge DIR...`: bug-fix tasks under several arms, each
job a `qac ci` process, verified by hidden tests, reported with its uncertainty (DESIGN §12).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from qwen_agent_cli import jsonl, signals
from qwen_agent_cli.cli.app import (
    app,
    error,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    ApprovalOpt,
    BaseUrlOpt,
    CompactAtOpt,
    KeyEnvOpt,
    MapTokensOpt,
    MaxTurnsOpt,
    ModelOpt,
    PreserveOpt,
    ProviderOpt,
    SandboxOpt,
    StoreOpt,
    ThinkingBudgetOpt,
    ThinkingOpt,
    TimeoutOpt,
)
from qwen_agent_cli.errors import ConfigError

WORK_NOTE = ".work"
"""In the output folder: the scratch folder of the run that wrote it, removed by the next."""
HELP = """Run bug-fix tasks under several arms (default: preserved thinking on and off), each
like `qac ci` in a fresh worktree, verify with hidden tests, and report the difference.

`qac eval TASKS.jsonl [--arm NAME=FLAGS]... [--workers N] [--shard I/N] [--out DIR]`;
`qac eval merge DIR... [--out DIR]` combines shards; `qac eval --demo` runs the bundled set
offline. Re-running the same command skips what is done."""


def _flag_words(values: dict[str, Any]) -> list[str]:
    """The shared run settings given to this command, as `qac ci` flags for every job."""
    words: list[str] = []
    for name, flag in (
        ("provider", "--provider"),
        ("model", "--model"),
        ("base_url", "--base-url"),
        ("api_key_env", "--api-key-env"),
        ("thinking_budget", "--thinking-budget"),
        ("sandbox", "--sandbox"),
        ("approval", "--approval"),
        ("max_turns", "--max-turns"),
        ("timeout", "--timeout"),
        ("test_timeout", "--test-timeout"),
        ("map_tokens", "--map-tokens"),
        ("compact_at", "--compact-at"),
        ("store", "--store"),
    ):
        if values.get(name) is not None:
            words += [flag, str(values[name])]
    if values.get("thinking") is not None:
        words.append("--thinking" if values["thinking"] else "--no-thinking")
    if values.get("preserve_thinking") is not None:
        words.append(
            "--preserve-thinking" if values["preserve_thinking"] else "--no-preserve-thinking"
        )
    return words


@app.command("eval", help=HELP)
def eval_(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TASKS.jsonl | merge DIR...",
            help="The task file, or `merge` and shard folders.",
        ),
    ] = None,
    arm: Annotated[
        list[str] | None,
        typer.Option(
            "--arm",
            metavar="NAME=FLAGS",
            help='An arm (repeatable), e.g. "flash=--model qwen3.6-flash".',
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Jobs run at once.")] = 1,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard", metavar="I/N", help="Run shard I of N (auto/N: I from JOB_COMPLETION_INDEX)."
        ),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="Output folder (qac-eval).")] = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="USD budget of the whole evaluation.")
    ] = None,
    repos_dir: Annotated[
        str | None, typer.Option("--repos-dir", help="SWE-bench: the folder of local checkouts.")
    ] = None,
    test_cmd_template: Annotated[
        str | None,
        typer.Option("--test-cmd-template", help="SWE-bench: the test command, with {tests}."),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", metavar="ID,...", help="Run only these task ids.")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="The bundled tasks with a scripted model, offline.")
    ] = False,
    test_timeout: Annotated[
        float | None, typer.Option("--test-timeout", help="Seconds a test command may run.")
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    thinking: ThinkingOpt = None,
    preserve_thinking: PreserveOpt = None,
    thinking_budget: ThinkingBudgetOpt = None,
    sandbox: SandboxOpt = None,
    approval: ApprovalOpt = None,
    max_turns: MaxTurnsOpt = None,
    timeout: TimeoutOpt = None,
    map_tokens: MapTokensOpt = None,
    compact_at: CompactAtOpt = None,
    store: StoreOpt = None,
) -> None:
    from qwen_agent_cli.evaluation.shard import parse_shard
    from qwen_agent_cli.evaluation.tasks import SweOptions, arms_from, load_tasks

    given = dict(locals())
    words = list(paths or [])
    if words[:1] == ["merge"]:
        _merge([Path(p) for p in words[1:]], Path(out or "qac-eval-merged"))
        return
    if demo == bool(words) or len(words) > 1:
        raise ConfigError("give one task file (qac eval TASKS.jsonl), or --demo, or merge DIR...")
    arms = arms_from(arm or [])
    plan_shard = parse_shard(shard, os.environ)
    out_dir = Path(out or ("qac-eval-demo" if demo else "qac-eval")).expanduser().resolve()
    chosen = frozenset(t.strip() for t in only.split(",") if t.strip()) if only else None
    settings = settings_for(None, sandbox=sandbox, provider=provider)
    env = dict(os.environ)
    # Inside the output folder, so a killed demo's repositories go with the next run.
    scratch = out_dir / ".demo" if demo else None
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    try:
        if scratch is not None:
            from qwen_agent_cli.evaluation.demo import prepare

            tasks_file = prepare(scratch)
            env["QAC_HOME"] = str(scratch / "home")
            given["store"] = None  # the demo's store is its own, thrown away
            error("demo: a scripted model plays every turn; it says nothing about a real model")
        else:
            tasks_file = Path(words[0]).expanduser()
        swe = SweOptions(Path(repos_dir).expanduser() if repos_dir else None, test_cmd_template)
        tasks = load_tasks(tasks_file, swe)
        if chosen is not None and not chosen & {t.id for t in tasks}:
            raise ConfigError(f"--only {only}: no task in {tasks_file} has those ids")
        meta = {
            "schema": 1,
            "arms": [{"name": a.name, "flags": list(a.flags)} for a in arms],
            "tasks_file": str(tasks_file),
            "demo": demo,
            "shard": f"{plan_shard.index}/{plan_shard.count}",
        }
        code = _run(
            out_dir, tasks, arms, meta, settings, env, given, workers, plan_shard, max_cost, chosen
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    raise typer.Exit(code)


def _run(
    out_dir: Path,
    tasks: list[Any],
    arms: list[Any],
    meta: dict[str, Any],
    settings: Any,
    env: dict[str, str],
    given: dict[str, Any],
    workers: int,
    plan_shard: Any,
    max_cost: float | None,
    only: frozenset[str] | None,
) -> int:
    from qwen_agent_cli.evaluation import results
    from qwen_agent_cli.evaluation.report import write_reports
    from qwen_agent_cli.evaluation.runner import JobAbort, Plan, run_pool
    from qwen_agent_cli.ui.eval_progress import progress_for

    model = None
    if meta["demo"]:
        from qwen_agent_cli.evaluation.demo import demo_model

        model = demo_model
    plan = Plan(
        out=out_dir,
        tasks=tasks,
        arms=arms,
        settings=settings,
        env=env,
        shared_flags=tuple(_flag_words(given)),
        workers=workers,
        max_cost=max_cost,
        shard=plan_shard,
        only=only,
        model=model,
    )
    log = results.ResultLog(out_dir).open()
    interrupted = False
    workroot = Path(tempfile.mkdtemp(prefix="qac-eval-"))
    progress = progress_for(sys.stderr, workers, terminal=sys.stderr.isatty())
    try:
        _forget_old_work(out_dir, workroot)
        results.write_meta(out_dir, meta)
        results.rebuild_predictions(out_dir, log.records.values(), [a.name for a in arms])
        try:
            outcome = run_pool(plan, log, workroot, progress)
        except JobAbort as exc:
            error(f"stopped: {exc} (finished runs are kept in {out_dir})")
            return exc.exit_code
        except KeyboardInterrupt:
            interrupted = True
            _stop(progress)
            _write(out_dir, log, meta, arms, write_reports)
            error(
                f"{signals.describe()}; {len(log.records)} finished runs are kept "
                "(re-run the same command to go on)"
            )
            return signals.exit_code()
        _write(out_dir, log, meta, arms, write_reports)
        _say_summary(out_dir, log, meta, write_reports)
        if outcome == "max_cost":
            error(
                f"stopped at the --max-cost budget (${max_cost}); re-run with a higher one to go on"
            )
            return 1
        return 0
    finally:
        _stop(progress)
        log.close()
        shutil.rmtree(workroot, ignore_errors=True)
        if not interrupted:  # jobs still stopping may write there: the next run removes it
            (out_dir / WORK_NOTE).unlink(missing_ok=True)


def _stop(progress: Any) -> None:
    stop = getattr(progress, "stop", None)
    if stop is not None:
        stop()


def _forget_old_work(out_dir: Path, workroot: Path) -> None:
    """Remove the scratch folder a killed run of this output folder left, and note ours."""
    note = out_dir / WORK_NOTE
    try:
        old = Path(note.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        old = None
    if old is not None and old.name.startswith("qac-eval-") and old.parent == workroot.parent:
        shutil.rmtree(old, ignore_errors=True)
    note.write_text(str(workroot) + "\n", encoding="utf-8")


def _write(
    out_dir: Path, log: Any, meta: dict[str, Any], arms: list[Any], write_reports: Any
) -> None:
    from qwen_agent_cli.evaluation import results

    records = list(results.ordered(log.records.values(), [a.name for a in arms]))
    results.rebuild_predictions(out_dir, records, [a.name for a in arms])
    write_reports(out_dir, records, meta)


def _say_summary(out_dir: Path, log: Any, meta: dict[str, Any], write_reports: Any) -> None:
    from qwen_agent_cli.evaluation.report import build

    report = build(list(log.records.values()), meta)
    for arm in report.summary.arms:
        low, high = arm.interval
        show(
            f"{arm.arm}: {arm.verified}/{arm.tasks} fixed ({100 * arm.rate:.1f} %, "
            f"95 % interval {100 * low:.1f} to {100 * high:.1f} %), ${arm.cost_usd:.4f}"
        )
    for pair in report.summary.pairs:
        show(
            f"{pair.a} vs {pair.b}: {pair.only_a} fixed by {pair.a} only, {pair.only_b} by "
            f"{pair.b} only, exact McNemar p = {pair.p_value:.3g}"
        )
    show(f"report: {out_dir / 'report.md'} and {out_dir / 'report.html'}")


def _merge(sources: list[Path], out_dir: Path) -> None:
    from qwen_agent_cli.evaluation import results
    from qwen_agent_cli.evaluation.report import write_reports

    if not sources:
        raise ConfigError(
            "qac eval merge needs the folders to merge: qac eval merge DIR... [--out DIR]"
        )
    out_dir = out_dir.expanduser().resolve()
    records, meta = results.merge_dirs([s.expanduser().resolve() for s in sources], out_dir)
    arms = [str(a["name"]) for a in meta.get("arms", [])]
    records = list(results.ordered(records, arms))
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(jsonl.dumps(r) + "\n" for r in records)
    (out_dir / results.RESULTS).write_text(lines, encoding="utf-8")
    results.write_meta(out_dir, meta)
    results.rebuild_predictions(out_dir, records, arms)
    report = write_reports(out_dir, records, meta)
    show(
        f"merged {len(records)} runs of {len(report.summary.tasks)} tasks "
        f"from {len(sources)} folders"
    )
    show(f"report: {out_dir / 'report.md'} and {out_dir / 'report.html'}")
