"""The command line (typer): the composition root. Reads the environment, builds settings and
the agent, maps every QacError to one stderr line and its exit code (DESIGN §3). The commands
live in the modules beside this one; importing them registers them on `app`.
"""

from __future__ import annotations

import os
import sys
import time

import typer

from qwen_agent_cli import __version__, signals
from qwen_agent_cli.argv import last_option
from qwen_agent_cli.cli import config, doctor, init, mcp, run, sessions, undo
from qwen_agent_cli.cli import eval as eval_command
from qwen_agent_cli.cli.app import (
    PICK,
    SUBCOMMANDS,
    VALUE_OPTIONS,
    app,
    error,
    warned_untrusted,
)
from qwen_agent_cli.cli.group import CarriedInterrupt
from qwen_agent_cli.errors import QacError
from qwen_agent_cli.events import ErrorEvent

COMMAND_MODULES = (config, doctor, eval_command, init, mcp, run, sessions, undo)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn every failure into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"qac {__version__}")
        sys.exit(0)
    sys.exit(invoke(args))


def route(args: list[str]) -> list[str]:
    """`qac [PROMPT] [options]` is the REPL: anything that is not a subcommand goes to it.
    The short forms are rewritten here: `-p PROMPT` is `run`, `qac resume` is the REPL's
    picker, and `-r`/`--resume` with no id (nothing or an option after it) asks the picker."""
    if args and args[0] in ("--help", "-h", "--version"):
        return args
    if args and args[0] == "resume":
        return ["repl", "--resume", *_resume_value(args[1:])]
    if args and args[0] in SUBCOMMANDS:
        return [args[0], *_with_picker(args[1:])] if args[0] in RESUMABLE else args
    # `-r` first: whether the word after it is an id decides what `-p` stands beside.
    args = _with_picker([part for arg in args for part in _split_print(arg)])
    printed = _print_flag(args)
    if printed is not None:
        return ["run", *args[:printed], *args[printed + 1 :]]
    leading, index = [], 0
    while index < len(args) and args[index].startswith("-"):
        takes_value = args[index] in VALUE_OPTIONS and "=" not in args[index]
        leading += args[index : index + 1 + takes_value]
        index += 1 + takes_value
    if index < len(args) and args[index] in SUBCOMMANDS:
        # `qac -C dir run x`: options written before the subcommand belong to it.
        return route([args[index], *leading, *args[index + 1 :]])
    return ["repl", *args]


def _split_print(arg: str) -> list[str]:
    return ["--print", arg.partition("=")[2]] if arg.startswith("--print=") else [arg]


RESUMABLE = frozenset({"run", "exec", "repl"})


def _print_flag(args: list[str]) -> int | None:
    """Where `-p`/`--print` stands among the options, if it does (a value of another option,
    or anything after `--`, is not it)."""
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            return None
        if token in ("-p", "--print"):
            return index
        index += 2 if token in VALUE_OPTIONS else 1
    return None


def _with_picker(args: list[str]) -> list[str]:
    """`-r`/`--resume` followed by nothing, an option, or a prompt with spaces gets PICK."""
    out: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        out.append(token)
        index += 1
        if token == "--":
            out += args[index:]
            break
        if token in ("-r", "--resume"):
            following = args[index : index + 1]
            if not following or following[0].startswith("-") or " " in following[0].strip():
                out.append(PICK)
            else:
                out.append(following[0])
                index += 1
        elif token in VALUE_OPTIONS and index < len(args):
            out.append(args[index])
            index += 1
    return out


def _resume_value(args: list[str]) -> list[str]:
    """`qac resume [ID] [options]`: the id when one is given first, else the picker."""
    if args and not args[0].startswith("-"):
        return [args[0], *args[1:]]
    return [PICK, *args]


def invoke(args: list[str]) -> int:
    """Run the command line; returns the exit code (tests call this in-process). With
    `--output-format json` or `stream-json`, every exit ends with a result object on stdout,
    a failure before the run began included."""
    from qwen_agent_cli.ui.output import ResultLedger

    command = typer.main.get_command(app)
    warned_untrusted.clear()
    signals.received = None
    ResultLedger.written, ResultLedger.output_format = False, None
    routed = route(args)
    started = time.monotonic()
    try:
        code = command.main(args=routed, prog_name="qac", standalone_mode=False)
    except QacError as exc:
        error(str(exc))
        _failure_result(routed, str(exc), "error", started)
        return exc.exit_code
    except (KeyboardInterrupt, CarriedInterrupt) as caught:
        interrupt = caught.interrupt if isinstance(caught, CarriedInterrupt) else caught
        error(signals.describe(interrupt))
        _failure_result(routed, signals.describe(interrupt), "interrupted", started)
        return signals.exit_code(interrupt)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        failure = _framework_exit(exc)
        if failure is None:
            raise
        code, message = failure
        if code:
            _failure_result(routed, message, "interrupted" if code == 130 else "error", started)
        return code
    return code if isinstance(code, int) else 0


HEADLESS = frozenset({"run", "exec", "ci"})


def _failure_result(routed: list[str], message: str, status: str, started: float) -> None:
    """The JSON result a headless run owes its caller when it failed before writing one."""
    from qwen_agent_cli.ui import output

    if output.ResultLedger.written or not routed or routed[0] not in HEADLESS:
        return
    wanted = output.ResultLedger.output_format or _format_flag(routed)
    if wanted not in ("json", "stream-json"):
        return
    result = output.failure_result(message, status, started)
    if wanted == "json":
        output.JsonWriter(sys.stdout).write(result)
        return
    stream = output.StreamJsonWriter(sys.stdout)
    stream.write(ErrorEvent(message=message))
    stream.write(result)


def _format_flag(routed: list[str]) -> str | None:
    """`--output-format X` as written, else the environment."""
    written = last_option(routed, "--output-format")
    return os.environ.get("QAC_OUTPUT_FORMAT") if written is None else written


def _framework_exit(exc: Exception) -> tuple[int, str] | None:
    """Typer's (click's) own exits and usage errors, recognised without importing click: the
    exit code and the line said on stderr."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    context = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in names and context is not None:
        print(context.get_help())
        return 0, ""
    if "Exit" in names:
        code = int(getattr(exc, "exit_code", 0))
        return code, signals.describe() if code == 130 else f"exited with code {code}"
    if "Abort" in names:
        error("interrupted")
        return 130, "interrupted"
    if "UsageError" in names or "BadParameter" in names:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        path = context.command_path if context is not None else "qac"
        line = f"{message.rstrip('.')} (see `{path} --help`)"
        error(line)
        return 2, line
    if "ClickException" in names:
        line = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        error(line)
        return int(getattr(exc, "exit_code", 1)), line
    return None


if __name__ == "__main__":
    main()
