"""The operation table. Each feature module registers small functions with ``@operation``.

An operation receives the request's ``Context`` and the validated input (plain values) and
returns a plain dict shaped like the model's output. ``write=False`` marks read-only
operations, which run in a read transaction concurrently with others.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecr_emulator.core.context import Context

OpFn = Callable[[Context, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    fn: OpFn
    write: bool


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *, write: bool = True) -> Callable[[OpFn], OpFn]:
    def register(fn: OpFn) -> OpFn:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = Operation(name, fn, write)
        return fn

    return register


def load_all() -> dict[str, Operation]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return OPERATIONS
