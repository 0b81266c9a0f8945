"""Checks on the raw HTTP request that both listeners make before any routing.

Some requests break the web framework itself rather than our handlers: a ``Host`` whose label
is longer than DNS allows makes werkzeug's IDNA encoding raise while it binds the URL map, and
control characters in a path reach log lines and routing tables. They are answered here, in
the plane's own error shape, before anything else reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

# host[:port]: DNS names (labels of 1-63 characters, 253 in all) or IP literals.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# (status, message) -> a WSGI app answering that error in the plane's shape
Reject = Callable[[int, str], Callable[..., Iterable[bytes]]]


def problem(environ: dict[str, Any]) -> str | None:
    """Why this request cannot be routed, or None."""
    host = environ.get("HTTP_HOST")
    if host is not None and (len(host) > 260 or not _HOST.fullmatch(host)):
        return "The Host header is not a valid host name"
    path = environ.get("PATH_INFO", "")
    if _CONTROL.search(path) or _CONTROL.search(unquote(environ.get("QUERY_STRING", ""))):
        return "The request path contains control characters"
    return None


def guarded(app, reject: Reject):  # type: ignore[no-untyped-def]
    """``app`` behind the checks above; a refused request gets ``reject(400, why)``."""

    def middleware(environ, start_response):  # type: ignore[no-untyped-def]
        why = problem(environ)
        if why is not None:
            return reject(400, why)(environ, start_response)
        return app(environ, start_response)

    return middleware
