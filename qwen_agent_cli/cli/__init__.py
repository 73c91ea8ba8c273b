"""The command line (typer): the composition root. Reads the environment, builds settings and
the agent, maps every QacError to one stderr line and its exit code (DESIGN §3). The commands
live in the modules beside this one; importing them registers them on `app`.
"""

from __future__ import annotations

import sys

import typer

from qwen_agent_cli import __version__, signals
from qwen_agent_cli.cli import config, doctor, init, mcp, run, sessions
from qwen_agent_cli.cli import eval as eval_command
from qwen_agent_cli.cli.app import SUBCOMMANDS, VALUE_OPTIONS, app, error, warned_untrusted
from qwen_agent_cli.errors import QacError

COMMAND_MODULES = (config, doctor, eval_command, init, mcp, run, sessions)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn every failure into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"qac {__version__}")
        sys.exit(0)
    sys.exit(invoke(args))


def route(args: list[str]) -> list[str]:
    """`qac [PROMPT] [options]` is the REPL: anything that is not a subcommand goes to it."""
    if args and (args[0] in SUBCOMMANDS or args[0] in ("--help", "-h", "--version")):
        return args
    leading, index = [], 0
    while index < len(args) and args[index].startswith("-"):
        takes_value = args[index] in VALUE_OPTIONS and "=" not in args[index]
        leading += args[index : index + 1 + takes_value]
        index += 1 + takes_value
    if index < len(args) and args[index] in SUBCOMMANDS:
        # `qac -C dir run x`: options written before the subcommand belong to it.
        return [args[index], *leading, *args[index + 1 :]]
    return ["repl", *args]


def invoke(args: list[str]) -> int:
    """Run the command line; returns the exit code (tests call this in-process)."""
    command = typer.main.get_command(app)
    warned_untrusted.clear()
    signals.received = None
    try:
        code = command.main(args=route(args), prog_name="qac", standalone_mode=False)
    except QacError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        error(signals.describe(exc))
        return signals.exit_code(exc)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        code = _framework_exit(exc)
        if code is None:
            raise
        return code
    return code if isinstance(code, int) else 0


def _framework_exit(exc: Exception) -> int | None:
    """Typer's (click's) own exits and usage errors, recognised without importing click."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    context = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in names and context is not None:
        print(context.get_help())
        return 0
    if "Exit" in names:
        return int(getattr(exc, "exit_code", 0))
    if "Abort" in names:
        error("interrupted")
        return 130
    if "UsageError" in names or "BadParameter" in names:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        path = context.command_path if context is not None else "qac"
        error(f"{message.rstrip('.')} (see `{path} --help`)")
        return 2
    if "ClickException" in names:
        error(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        return int(getattr(exc, "exit_code", 1))
    return None


if __name__ == "__main__":
    main()
