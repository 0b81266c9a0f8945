"""Reading request bodies: streamed in pieces, with a malformed or broken-off body told apart
from a failure of ours."""

from __future__ import annotations

from collections.abc import Iterator

from ecr_emulator.registry.current import request


class BodyUnreadable(Exception):
    """The request body broke off or was malformed (a bad chunk size, a client that left)."""


def body_chunks(size: int) -> Iterator[bytes]:
    stream = request.stream
    while True:
        try:
            chunk = stream.read(size)
        except Exception as exc:  # whatever the server's HTTP parser raises for a malformed body
            raise BodyUnreadable(str(exc) or type(exc).__name__) from exc
        if not chunk:
            return
        yield chunk


def content_length() -> int | None:
    """The request's Content-Length as a number (None when absent or not plain ASCII digits)."""
    raw = request.headers.get("Content-Length")
    if raw is None or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)
