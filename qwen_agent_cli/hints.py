"""What to do about each way the model API fails: the second half of the one stderr line every
non-zero exit prints (DESIGN §3). Plain text from the profile and the exception; the provider's
error mapping is the only caller, so each message is written once for both wire formats.
"""

from __future__ import annotations

import errno
import socket
import ssl

from qwen_agent_cli.profiles import Profile

UNREACHABLE = "check --base-url, that the server is running, or run `qac doctor`"
SILENT = (
    "the server may be overloaded or still loading the model: try again, raise "
    "stream_idle_timeout, or run `qac doctor`"
)
TOO_SLOW = "raise request_timeout for long responses, or try again"
OVERLOADED = "the server is busy or failing: try again later, or raise retries"
RATE_LIMITED = "the server is rate-limiting requests: try again later, or raise retry_max_delay"
CUT_OFF = "the server keeps ending its responses early: check its logs, or run `qac doctor`"
DROPPED = "the connection keeps dropping: check the network and the server, or run `qac doctor`"

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def connect_reason(exc: BaseException) -> str:
    """`connection refused`, `host not found`, ...: the root cause of a failed connection,
    found down the exception's chain (the SDK wraps httpx, which wraps the socket error)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    root = exc.__cause__ or exc
    return str(root) or type(root).__name__


def endpoint(profile: Profile) -> str:
    """What a response that is not the API's says to check: the endpoint of the profile's format."""
    if profile.format == "anthropic":
        return (
            "check that --base-url is an Anthropic Messages endpoint (the server's root, "
            "without /v1), or run `qac doctor`"
        )
    return (
        "check that --base-url is an OpenAI-compatible endpoint (usually ending in /v1), "
        "or run `qac doctor`"
    )


def refused(status: int, profile: Profile) -> str:
    """What to do about a 4xx other than 429, which is not retried."""
    if status in (401, 403):
        if profile.key_env:
            return (
                f"check the API key in ${profile.key_env}, or pass --api-key-env VAR "
                "naming the variable that holds yours"
            )
        return (
            "check the API key: this profile sends none, so pass --api-key-env VAR naming "
            "the variable that holds it"
        )
    if status == 404:
        return (
            f"check --model (is {profile.model!r} served there?) and --base-url; "
            "`qac doctor` lists the models the server offers"
        )
    if status == 413:
        return "the request is too large for the server: lower compact_at, or start a new session"
    return "check --model and the server's limits, or run `qac doctor`"
