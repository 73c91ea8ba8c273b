"""The tools the model can call, registered in one explicit tuple; nothing registers itself."""

from qwen_agent_cli.tools.base import Output, Tool, ToolContext, ToolRegistry, tool
from qwen_agent_cli.tools.files import edit_file, list_files, read_file, write_file
from qwen_agent_cli.tools.plan import update_plan
from qwen_agent_cli.tools.search import glob, grep
from qwen_agent_cli.tools.shell import run_tests, shell
from qwen_agent_cli.tools.web import web_fetch

BUILTIN_TOOLS: tuple[Tool, ...] = (
    read_file,
    write_file,
    edit_file,
    list_files,
    glob,
    grep,
    shell,
    run_tests,
    update_plan,
    web_fetch,
)

__all__ = ["BUILTIN_TOOLS", "Output", "Tool", "ToolContext", "ToolRegistry", "tool"]
