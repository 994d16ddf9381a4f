"""INSERT … ON CONFLICT DO NOTHING on PostgreSQL and SQLite alike."""

from __future__ import annotations

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
    """Insert rows, skipping those that collide on ``conflict``; returns ``returning`` of the new ones."""
    if not rows:
        return []
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(list(rows)).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is not None:
        result = await session.execute(stmt.returning(returning))
        return list(result.scalars().all())
    await session.execute(stmt)
    return []
