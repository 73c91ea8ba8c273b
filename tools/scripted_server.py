"""Command line over the packaged scripted model server, for demos, manual runs and benchmarks.

    python tools/scripted_server.py script.json [--port 8765] [--record requests.jsonl]

Prints the OpenAI base URL (first line, which scripts read), then `anthropic: URL`: the same server
answers Anthropic Messages at `/v1/messages`, and Anthropic clients append that path themselves.
Serves until every turn is played (or Ctrl-C). Point qac at it with
`qac run --provider vllm --base-url URL "..."`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qwen_agent_cli.scripted import ScriptedServer, load_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("script", type=Path, help="JSON list of turns, or {'turns': [...]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, help="write every request body here as JSONL")
    parser.add_argument(
        "--linger",
        type=float,
        default=1.0,
        help="seconds to keep serving after the last turn is played",
    )
    args = parser.parse_args(argv)
    try:
        turns, options = load_script(json.loads(args.script.read_text()))
    except (OSError, ValueError) as exc:
        print(f"scripted_server: cannot load {args.script}: {exc}", file=sys.stderr)
        return 2
    server = ScriptedServer(turns, host=args.host, port=args.port, **options).start()
    print(server.url, flush=True)
    print(f"anthropic: {server.anthropic_url}", flush=True)
    try:
        while server.remaining > 0:
            time.sleep(0.05)
        time.sleep(args.linger)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if args.record:
            args.record.write_text("".join(json.dumps(r) + "\n" for r in server.requests))
    for violation in server.violations:
        print(f"scripted_server: {violation}", file=sys.stderr)
    return 1 if server.violations else 0


if __name__ == "__main__":
    sys.exit(main())
