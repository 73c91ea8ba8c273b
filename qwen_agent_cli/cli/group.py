"""The top-level command group: `qac --help` shows what `qac [PROMPT]` (the REPL) takes and the
short forms routed before typer sees them, since the REPL is a hidden command of its own."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

ROUTED_OPTIONS = (
    ("-p, --print PROMPT", "Run PROMPT without a person and exit (same as `qac run`)."),
)
ROUTED_COMMANDS = (
    ("resume", "Pick one of this repository's sessions and continue it (same as `qac -r`)."),
)


def _options(command: Any, ctx: Any) -> list[tuple[str, tuple[str, str]]]:
    """A command's options (not its arguments) with their help rows, help itself left out."""
    if command is None:
        return []
    found = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None and param.param_type_name == "option" and param.name != "help":
            found.append((str(param.name), record))
    return found


class CarriedInterrupt(Exception):
    """A KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP as qac raises them) carried past typer,
    which would turn it into a silent exit 130: the caller says it and writes the result."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class QacGroup(TyperGroup):
    """Usage `qac [OPTIONS] [PROMPT] | COMMAND`, the REPL's options, then the commands."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise CarriedInterrupt(exc) from exc

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return ["[OPTIONS]", "[PROMPT] | COMMAND [ARGS]..."]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        repl_params = _options(self.commands.get("repl"), ctx)
        rows = [*ROUTED_OPTIONS, *(record for _, record in repl_params)]
        rows += [record for _, record in _options(self, ctx)]
        with formatter.section("Options (the REPL; run and ci take them too)"):
            formatter.write_dl(rows)
        known = {name for name, _ in repl_params}
        headless = [
            record
            for (name, record) in _options(self.commands.get("run"), ctx)
            if name not in known and name != "help"
        ]
        if headless:
            with formatter.section("With -p (as for run)"):
                formatter.write_dl(headless)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name, command in self.commands.items():
            if not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 16)))
        rows += ROUTED_COMMANDS
        with formatter.section("Commands"):
            formatter.write_dl(rows)
