"""The options the commands share, as typer parameter types: one definition each, with its
metavar, choices and default written where `--help` shows them."""

from __future__ import annotations

from typing import Annotated

import typer

ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        metavar="NAME",
        help="Provider profile (configs/providers.toml or your own).  [default: dashscope]",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", metavar="NAME", help="Model name (default: the profile's)."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="Endpoint URL (default: the profile's)."),
]
KeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        metavar="VAR",
        help="Variable holding the API key (default: the profile's).",
    ),
]
ThinkingOpt = Annotated[
    bool | None,
    typer.Option(
        "--thinking/--no-thinking",
        help="Ask the model to think.  [default: on]",
    ),
]
PreserveOpt = Annotated[
    bool | None,
    typer.Option(
        "--preserve-thinking/--no-preserve-thinking",
        help="Send earlier reasoning back with every request.  [default: on]",
    ),
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        "-r",
        metavar="[ID]",
        help="Continue a stored session (id or unique prefix); no ID: pick one of this "
        "repository's sessions.",
    ),
]
ContinueOpt = Annotated[
    bool,
    typer.Option("--continue", "-c", help="Continue the latest session for this directory."),
]
SandboxOpt = Annotated[
    str | None,
    typer.Option(
        "--sandbox",
        metavar="[read-only|workspace-write|off]",
        help="Where commands may write.  [default: workspace-write]",
    ),
]
ApprovalOpt = Annotated[
    str | None,
    typer.Option(
        "--approval",
        metavar="[ask|auto-edit|auto]",
        help="What needs your yes.  [default: ask in the REPL, auto in run and ci]",
    ),
]
MaxTurnsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-turns",
        metavar="N",
        help="Model responses budget.  [default: 50]",
    ),
]
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="USD",
        help="Spending budget.  [default: none]",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Wall-clock budget.  [default: none]",
    ),
]
TestCmdOpt = Annotated[
    str | None, typer.Option("--test-cmd", metavar="CMD", help="The command run_tests runs.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--output-format",
        metavar="[text|json|stream-json]",
        help="What stdout gets.  [default: text]",
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="PATH",
        help="Session store file.  [default: sessions.db in the data dir, or $QAC_HOME]",
    ),
]
DirOpt = Annotated[
    str | None, typer.Option("-C", metavar="DIR", help="Work in DIR instead of here.")
]
MapTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--map-tokens",
        metavar="N",
        help="Token budget of the repository map.  [default: 2000]",
    ),
]
ThinkingBudgetOpt = Annotated[
    int | None,
    typer.Option(
        "--thinking-budget",
        metavar="N",
        help="Tokens the model may think per response on the Anthropic format "
        "(budget_tokens).  [default: the profile's, 16384]",
    ),
]
CompactAtOpt = Annotated[
    float | None,
    typer.Option(
        "--compact-at",
        metavar="SHARE",
        help="Share of the context window that triggers compaction.  [default: 0.8]",
    ),
]
