"""`qac doctor`: everything a run needs, checked, with the fix for each failure."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from qwen_agent_cli.cli.app import (
    app,
    error,
    setting_flags,
    settings_for,
    show,
)
from qwen_agent_cli.cli.options import (
    BaseUrlOpt,
    DirOpt,
    KeyEnvOpt,
    ModelOpt,
    ProviderOpt,
    SandboxOpt,
    StoreOpt,
    TestCmdOpt,
)


@app.command()
def doctor(
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    test_cmd: TestCmdOpt = None,
    directory: DirOpt = None,
    probe: Annotated[
        bool,
        typer.Option("--thinking", help="Probe whether the server really preserves thinking."),
    ] = False,
) -> None:
    """Check the key, the endpoint, the model, the sandbox, the test command, git and the store."""
    from qwen_agent_cli.assemble import workdir_of
    from qwen_agent_cli.doctor import run_checks

    workdir = workdir_of(directory)
    settings = settings_for(workdir, **setting_flags(locals()))
    failures = 0
    for check in run_checks(settings, env=os.environ, workdir=workdir, probe=probe):
        failures += not check.ok
        mark = "ok  " if check.ok else "FAIL"
        show(f"{mark} {check.name}: {check.detail}")
    if failures:
        error(f"{failures} check(s) failed; see the FAIL lines above for the fix")
    raise typer.Exit(1 if failures else 0)
