"""Images in the prompt: read a file the user named, tell its type from its bytes (never from
its name), cap its size, and write it in each wire format's image content."""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from typing import Any

from qwen_agent_cli.errors import ConfigError
from qwen_agent_cli.types import Image

MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""The smallest of the providers' per-image limits (Anthropic's 5 MB), so an image qac accepts
is one every server accepts."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def sniff(data: bytes) -> str | None:
    """The image type of `data` by its signature: PNG, JPEG, GIF or WebP; None for anything
    else (a file named .png that is not one is refused, not sent)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_from_bytes(data: bytes, mime: str | None = None) -> Image:
    return Image(sha256=hashlib.sha256(data).hexdigest(), mime=mime or sniff(data) or "", data=data)


def load_image(path: Path) -> Image:
    """The image at `path` (a path the user gave); a clear ConfigError for anything else."""
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ConfigError(
                f"image {path} is {size:,} bytes; the limit is {MAX_IMAGE_BYTES:,} "
                "(scale it down or crop it)"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(f"image {path} is over the {MAX_IMAGE_BYTES:,}-byte limit")
    mime = sniff(data)
    if mime is None:
        raise ConfigError(f"{path} is not a PNG, JPEG, GIF or WebP image")
    return image_from_bytes(data, mime)


@functools.lru_cache(maxsize=64)
def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def openai_part(image: Image) -> dict[str, Any]:
    """Chat completions: an `image_url` part with a data URL."""
    url = f"data:{image.mime};base64,{_base64(image.data)}"
    return {"type": "image_url", "image_url": {"url": url}}


def anthropic_block(image: Image) -> dict[str, Any]:
    """Anthropic Messages: an `image` block with a base64 source."""
    source = {"type": "base64", "media_type": image.mime, "data": _base64(image.data)}
    return {"type": "image", "source": source}


def describe(image: Image) -> str:
    """One line naming an image, for `sessions show` and the REPL."""
    size = len(image.data)
    shown = f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"
    return f"[image {image.sha256[:12]} {image.mime}, {shown}]"
