"""Column types shared by the tables: times are aware UTC on the way in and on the way out.

PostgreSQL's ``timestamptz`` keeps the instant and asyncpg hands back aware datetimes; SQLite
has no time zones and hands back naive ones.  :class:`UtcDateTime` hides the difference: it
stores any aware value as UTC (a naive one is taken to be UTC already) and always returns an
aware UTC datetime, so no repository needs to repair what it reads.  :func:`as_utc` is the one
repair left for values that do not come through a typed column (raw ``text()`` queries,
aggregates whose type SQLAlchemy cannot infer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["UtcDateTime", "as_utc"]


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that stores and returns aware UTC on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)

    @property
    def python_type(self) -> type[datetime]:
        return datetime
