"""The exception tree; each user-facing error carries its exit code (DESIGN §3).

QacError (1)
├── ConfigError (2)              usage, flags, config files, missing key
├── ProviderError (3)            the model API failed after retries, or refused (4xx)
│   └── DeadlineError (3)        the run's --timeout passed during a request
├── SandboxUnavailableError (4)  the sandbox is required but cannot run
└── StoreError (2)               the session store cannot be opened, read or written

ToolError                        a failure the model can fix; goes back to it as a tool result
"""

from __future__ import annotations


class QacError(Exception):
    """Base of every error shown to a user as one line with an exit code."""

    exit_code = 1


class ConfigError(QacError):
    exit_code = 2


class StoreError(QacError):
    exit_code = 2


class ProviderError(QacError):
    exit_code = 3


class DeadlineError(ProviderError):
    """The run's wall-clock budget ran out while waiting on the model."""


class SandboxUnavailableError(QacError):
    exit_code = 4


class ToolError(Exception):
    """Raised by a tool for a problem the model can correct; never reaches the user as a crash."""
