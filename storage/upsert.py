"""INSERT … ON CONFLICT DO NOTHING on PostgreSQL and SQLite alike."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["insert_ignore"]


async def insert_ignore(
    session: AsyncSession,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    returning: sa.Column[Any] | None = None,
) -> list[Any]:
    """Insert rows, skipping those that collide on ``conflict``; returns ``returning`` of the new ones.

    The statement is built once per table, conflict target and dialect and the rows are its
    parameters (SQLAlchemy's "insertmanyvalues" sends them as multi-row VALUES in as few round
    trips as the driver allows), so the compiled form is reused on every call.  Rows that name
    different columns are inserted in groups of the same columns."""
    if not rows:
        return []
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    found: list[Any] = []
    for group in _by_columns(rows):
        stmt = _statement(dialect, table, tuple(conflict), returning)
        params = [dict(r) for r in group]
        result = await session.execute(stmt, params if len(params) > 1 else params[0])
        if returning is not None:
            found.extend(result.scalars().all())
    return found


def _by_columns(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The rows in groups naming the same columns (an executemany takes one set of columns)."""
    groups: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


@functools.lru_cache(maxsize=256)
def _statement(
    dialect: str,
    table: sa.Table,
    conflict: tuple[str, ...],
    returning: sa.Column[Any] | None,
) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is not None:
        # Without sorting the returned rows by parameter order: the callers want the new ones' ids.
        stmt = stmt.returning(returning)
    return stmt
