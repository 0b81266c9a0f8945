"""The request being served, for the registry's handlers (``from ecr_emulator.registry.current
import request``): werkzeug's Request, set for the length of each request by ``RegistryApp``.

The registry routes requests itself (``registry/app.py`` ROUTES) and answers with werkzeug
responses, so a web framework's application and request contexts, dispatch and response
conversion were pure overhead: about a third of a manifest GET's time in the application, by
py-spy under 16 connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from werkzeug.local import LocalProxy
from werkzeug.wrappers import Request

_current: ContextVar[Request] = ContextVar("ecr_emulator.registry.request")

request: Request = LocalProxy(_current)  # type: ignore[assignment]


@contextmanager
def serving(environ: dict[str, Any]) -> Iterator[Request]:
    """``environ``'s request is ``request`` until the block ends."""
    req = Request(environ)
    token = _current.set(req)
    try:
        yield req
    finally:
        _current.reset(token)
