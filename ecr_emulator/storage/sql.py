"""Statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type, values: dict[str, Any]) -> bool:
    """INSERT a row unless one with the same key exists; True if this call inserted it.

    Concurrent writers on PostgreSQL may race to create the same row (a blob both pushes
    upload, a schedule both job threads start); the loser must not fail its transaction.
    """
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(model).values(**values).on_conflict_do_nothing()
    return session.execute(stmt).rowcount > 0
