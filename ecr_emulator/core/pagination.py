"""Opaque, stable pagination tokens (keyset: the token names the last key returned).

A keyset token stays valid when items are added or removed between pages, unlike an offset.
Tokens are bound to the operation that issued them, so one from ListImages is refused by
DescribeImages with ECR's InvalidParameterException.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Select, tuple_

from ecr_emulator.core import errors
from ecr_emulator.core.context import Context

DEFAULT_PAGE = 100


def encode(op: str, key: list[Any]) -> str:
    raw = json.dumps({"o": op, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode(op: str, token: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["o"] != op or not isinstance(data["k"], list):
            raise ValueError
        return data["k"]
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise errors.InvalidParameterException.constraint("nextToken", "Invalid pagination token") from exc


def page_size(max_results: int | None) -> int:
    return DEFAULT_PAGE if max_results is None else max_results


def page_by_id(
    ctx: Context, stmt: Select, id_col: Any, token: str | None, max_results: int | None, op: str
) -> tuple[list[Any], str | None]:
    """Rows of ``stmt`` ordered by ``id_col``, one page after the token's key."""
    return page_by_keys(ctx, stmt, [id_col], token, max_results, op, lambda row: [row.id])


def page_by_keys(
    ctx: Context,
    stmt: Select,
    cols: list[Any],
    token: str | None,
    max_results: int | None,
    op: str,
    key_of: Any,
    scalars: bool = True,
) -> tuple[list[Any], str | None]:
    size = page_size(max_results)
    if token is not None:
        after = decode(op, token)
        if len(after) != len(cols):
            raise errors.InvalidParameterException.constraint("nextToken", "Invalid pagination token")
        stmt = stmt.where(tuple_(*cols) > tuple_(*after)) if len(cols) > 1 else stmt.where(cols[0] > after[0])
    stmt = stmt.order_by(*cols).limit(size + 1)
    rows = list(ctx.session.scalars(stmt) if scalars else ctx.session.execute(stmt))
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode(op, key_of(rows[-1]))
    return rows, None


def page_after(ctx: Context, stmt: Select, column: Any, n: int, last: str | None) -> tuple[list[Any], bool]:
    """The registry's ``n``/``last`` listings (tags, catalog): up to ``n`` values of ``column``, which
    ``stmt`` selects, after ``last`` in order, and whether more follow."""
    if not n:
        return [], False
    stmt = stmt.order_by(column).limit(n + 1)
    if last:
        stmt = stmt.where(column > last)
    found = list(ctx.session.scalars(stmt))
    return found[:n], len(found) > n


def page_list(items: list[Any], token: str | None, max_results: int | None, op: str) -> tuple[list[Any], str | None]:
    """Pagination over an already-computed list (offset based, for small derived lists)."""
    start = 0
    if token is not None:
        key = decode(op, token)
        if len(key) != 1 or not isinstance(key[0], int) or key[0] < 0:
            raise errors.InvalidParameterException.constraint("nextToken", "Invalid pagination token")
        start = key[0]
    size = page_size(max_results)
    chunk = items[start : start + size]
    nxt = encode(op, [start + size]) if start + size < len(items) else None
    return chunk, nxt
