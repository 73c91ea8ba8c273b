"""The tool machinery: `@tool` turns a typed, documented function into a model-facing schema;
`ToolRegistry` parses the model's calls, validates them and turns ToolError into error results.

Imports config, sandbox and types only; the tools themselves live in sibling modules.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, overload

from qwen_agent_cli.config import Settings
from qwen_agent_cli.errors import ToolError
from qwen_agent_cli.sandbox import Executor
from qwen_agent_cli.text import strip_ansi
from qwen_agent_cli.types import Image, ToolCall, ToolResult
from qwen_agent_cli.workspace import Workspace


@dataclass(frozen=True, slots=True)
class ToolContext:
    workspace: Workspace
    executor: Executor
    settings: Settings


@dataclass(frozen=True, slots=True)
class Output:
    """A tool's text for the model plus the workspace files it changed."""

    text: str
    changed: tuple[str, ...] = ()
    failed: bool = False
    diff: str = ""
    images: tuple[Image, ...] = ()


ToolFunction = Callable[..., str | Output]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFunction
    read_only: bool
    external: bool = False
    """Another program's tool (MCP): its schema is its own, so only the object shape and the
    required names are checked here; the server checks the rest."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@overload
def tool(fn: ToolFunction, /) -> Tool: ...
@overload
def tool(*, read_only: bool = False) -> Callable[[ToolFunction], Tool]: ...


def tool(
    fn: ToolFunction | None = None, *, read_only: bool = False
) -> Tool | Callable[[ToolFunction], Tool]:
    """Decorator: build a Tool from the function's signature and docstring."""

    def build(function: ToolFunction) -> Tool:
        return Tool(
            name=function.__name__,
            description=_summary(function),
            parameters=_parameters(function),
            fn=function,
            read_only=read_only,
        )

    return build(fn) if fn is not None else build


def _summary(function: ToolFunction) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("\nArgs:")[0].strip()


def _arg_docs(function: ToolFunction) -> dict[str, str]:
    doc = inspect.getdoc(function) or ""
    if "\nArgs:" not in doc:
        return {}
    block = doc.split("\nArgs:", 1)[1]
    found: dict[str, str] = {}
    for match in re.finditer(r"^\s+(\w+):\s*(.+)$", block, re.MULTILINE):
        found[match.group(1)] = match.group(2).strip()
    return found


def _parameters(function: ToolFunction) -> dict[str, Any]:
    hints = typing.get_type_hints(function)
    docs = _arg_docs(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(function).parameters.items():
        if name == "ctx":
            continue
        schema = _schema_for(hints[name], f"{function.__name__}.{name}")
        if name in docs:
            schema["description"] = docs[name]
        properties[name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _schema_for(hint: Any, where: str) -> dict[str, Any]:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _schema_for(options[0], where)
    if origin is Literal:
        return {"type": "string", "enum": list(get_args(hint))}
    if origin is list and get_args(hint) == (str,):
        return {"type": "array", "items": {"type": "string"}}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"{where}: unsupported parameter type {hint!r}")


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}


class ToolRegistry:
    """The tools offered to the model, and the one place their calls are checked and run."""

    def __init__(self, tools: Iterable[Tool], ctx: ToolContext) -> None:
        self.tools = {t.name: t for t in tools}
        self.ctx = ctx

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def preview(self, name: str, args: dict[str, Any]) -> str:
        """The diff an edit would make, for a person deciding whether to allow it."""
        from qwen_agent_cli.tools.files import preview

        return preview(self.ctx, name, args) if name in ("write_file", "edit_file") else ""

    def parse(self, call: ToolCall) -> tuple[Tool, dict[str, Any]]:
        """The tool and its checked arguments, or a ToolError the model can act on."""
        found = self.tools.get(call.name)
        if found is None:
            names = ", ".join(self.tools)
            raise ToolError(f"unknown tool {call.name!r}; the tools are: {names}")
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolError(
                f"the arguments for {call.name} are not valid JSON ({exc.msg} at position "
                f"{exc.pos}); send one JSON object with the parameters"
            ) from None
        if not isinstance(args, dict):
            raise ToolError(f"the arguments for {call.name} must be a JSON object")
        _check(found, args)
        return found, args

    def invoke(self, found: Tool, call: ToolCall, args: dict[str, Any]) -> ToolResult:
        try:
            output = found.fn(self.ctx, **args)
        except ToolError as exc:
            return ToolResult(call.id, call.name, strip_ansi(str(exc)), is_error=True)
        except (OSError, ValueError, UnicodeError, RecursionError) as exc:
            # A bad path or bad text from the model is the model's to fix, not a crash.
            message = strip_ansi(f"{call.name} failed: {exc}")
            return ToolResult(call.id, call.name, message, is_error=True)
        if not isinstance(output, Output):
            output = Output(output)
        return ToolResult(
            call.id,
            call.name,
            truncate(strip_ansi(output.text), self.ctx.settings.tool_output_limit),
            is_error=output.failed,
            files_changed=output.changed,
            diff=output.diff,
            images=output.images,
        )


def _check(found: Tool, args: dict[str, Any]) -> None:
    properties = found.parameters.get("properties") or {}
    if found.external:
        missing = [n for n in found.parameters.get("required") or () if n not in args]
        if missing:
            raise ToolError(f"{found.name} needs {', '.join(missing)}")
        return
    unknown = set(args) - set(properties)
    if unknown:
        raise ToolError(
            f"{found.name} has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters are: {', '.join(properties)}"
        )
    missing = [n for n in found.parameters["required"] if n not in args]
    if missing:
        raise ToolError(f"{found.name} needs {', '.join(missing)}")
    for name, value in args.items():
        if value is None and name not in found.parameters["required"]:
            continue
        expected = properties[name]["type"]
        ok = isinstance(value, _PY_TYPES[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            raise ToolError(f"{found.name}: {name} must be a {expected}, got {value!r}")
        allowed = properties[name].get("enum")
        if allowed and value not in allowed:
            raise ToolError(f"{found.name}: {name} must be one of {', '.join(allowed)}")


def truncate(text: str, limit: int) -> str:
    """Keep the head and the tail within `limit` characters, saying what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return (
        f"{text[:half]}\n[... {cut} characters cut to fit the tool output budget; "
        f"narrow the request to see them ...]\n{text[-half:]}"
    )
