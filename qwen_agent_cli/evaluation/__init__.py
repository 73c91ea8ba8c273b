"""`qac eval` (DESIGN §12): bug-fix tasks run like `qac ci` under several arms, verified by
tests the model never saw, compared with their uncertainty.

tasks (the task file), shard (who runs what), checkout (git around a job), runner (one job and
the pool), results (the append-only log), stats, summary, report, demo. Nothing here imports
rich or typer: the progress display lives in `ui/`, the command in `cli/eval.py`.
"""
