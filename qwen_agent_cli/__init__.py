"""qwen-agent-cli: an agentic coding CLI for Qwen models with preserved thinking."""

__version__ = "0.1.0"
