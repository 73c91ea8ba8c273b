"""Entry point for `python -m qwen_agent_cli`."""

from qwen_agent_cli.launch import main

main()
