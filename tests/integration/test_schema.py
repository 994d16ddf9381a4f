"""The schema: Alembic builds it on an empty database, and it matches the models."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.database import Database, alembic_config, upgrade_schema
from storage.tables import metadata


async def test_upgrade_builds_every_table_on_an_empty_database(database: Database) -> None:
    async with database.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert set(metadata.tables) <= names
    assert "alembic_version" in names


async def test_models_and_migrations_do_not_drift(database: Database) -> None:
    def diff(conn: sa.Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with database.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models differ from migrations; run `alembic revision --autogenerate`: {changes}"


async def test_upgrade_twice_is_harmless(database_url: str) -> None:
    await asyncio.to_thread(upgrade_schema, database_url)
    await asyncio.to_thread(upgrade_schema, database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert version == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    finally:
        await db.dispose()
