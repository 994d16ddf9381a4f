"""Retention: rows purged per second by one pass of the retention job, against the raw ceiling.

``python -m bench --only retention`` seeds, on the run's throwaway PostgreSQL database and on a
SQLite file, ``2 × N`` closed conversations all past their campaign's
``closed_conversations_days`` — each with two inbound messages (text, payload, a raw body) and a
disposition with a note — in two campaigns of one workspace, plus ``N`` open conversations of
the same shape that must stay untouched (so the tables are not only what is purged).

- **ceiling**: the driver alone (asyncpg / aiosqlite) purges the first campaign's rows knowing
  their ids already: per batch one ``UPDATE message SET text = NULL, payload = '{}',
  raw_delivery_id = NULL WHERE id = ANY(…)``, one ``DELETE FROM raw_delivery WHERE id = ANY(…)``
  and one ``UPDATE conversation SET disposition = …`` per conversation, one transaction per
  batch;
- **ours**: ``centralita.retention.run_retention`` purges the second campaign's rows: it has to
  find them (the joins on the campaign, the closed time, the content still there, FOR UPDATE
  SKIP LOCKED on PostgreSQL) and runs each kind in its own batches.

The schema indexes ``message.raw_delivery_id`` (migration ``0005_retention_indexes``): without
it, the foreign key check of each raw delivery deleted read the whole ``message`` table, and both
figures fell as the table grew.

Rows purged = raw deliveries deleted + messages emptied + disposition notes dropped, the same
count for both.  The batch is ``CENTRALITA_RETENTION_BATCH``'s default (1000).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import sqlalchemy as sa

from bench.harness import Context

__all__ = ["run"]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BATCH = 1000
SIZES = {True: 1_000, False: 3_000}  # N conversations per campaign (quick, full): see docs/benchmarks.md


def _rows(
    workspace_id: uuid.UUID,
    campaign_id: uuid.UUID,
    customer_id: uuid.UUID,
    count: int,
    *,
    closed: bool,
    tag: str,
) -> dict[str, list[dict[str, Any]]]:
    conversations, raws, messages = [], [], []
    at = NOW - timedelta(days=400)
    for n in range(count):
        conversation_id = uuid.uuid4()
        conversations.append(
            {
                "id": conversation_id,
                "workspace_id": workspace_id,
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "channel": "whatsapp",
                "status": "closed" if closed else "assigned",
                "priority": 5,
                "opened_at": at,
                "closed_at": at if closed else None,
                "disposition": {"code": "venta", "note": "nota libre del asesor"},
                "triage_attempts": 0,
            }
        )
        for k in range(2):
            raw_id = uuid.uuid4()
            body = json.dumps(
                {"entry": f"{tag}-{n}-{k}", "text": "Hola, mi correo es ana@example.com"}
            ).encode()
            raws.append(
                {
                    "id": raw_id,
                    "workspace_id": workspace_id,
                    "channel": "whatsapp",
                    "received_at": at,
                    "headers": {},
                    "body": body,
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "status": "processed",
                }
            )
            messages.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": workspace_id,
                    "conversation_id": conversation_id,
                    "customer_id": customer_id,
                    "direction": "in",
                    "kind": "message",
                    "channel": "whatsapp",
                    "text": "Hola, mi correo es ana@example.com",
                    "payload": {"attachments": [{"type": "image", "media_id": "m"}]},
                    "created_at": at,
                    "stored_at": at,
                    "raw_delivery_id": raw_id,
                    "attempts": 0,
                }
            )
    return {"conversation": conversations, "raw_delivery": raws, "message": messages}


async def _seed(url: str, count: int, workspace: str) -> tuple[uuid.UUID, dict[str, list[dict[str, Any]]]]:
    """Two campaigns of ``count`` due conversations, and ``count`` open ones; returns the second
    campaign's id (ours purges it) and the first's rows (the ceiling purges them)."""
    from storage.database import Database, upgrade_schema
    from storage.tables import CampaignRow, CustomerRow, WorkspaceRow, metadata

    await asyncio.to_thread(upgrade_schema, url)
    database = Database(url)
    workspace_id, customer_id = uuid.uuid4(), uuid.uuid4()
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    retention = {"retention": {"closed_conversations_days": 90}}
    tables = metadata.tables
    try:
        async with database.transaction() as session:
            session.add(WorkspaceRow(id=workspace_id, slug=workspace, name=workspace))
            await session.flush()
            for campaign_id, name, manifest in (
                (first, "raw", {}),
                (second, "ours", retention),
                (third, "open", retention),
            ):
                session.add(
                    CampaignRow(
                        id=campaign_id,
                        workspace_id=workspace_id,
                        name=name,
                        display_name=name,
                        manifest=manifest,
                    )
                )
            session.add(CustomerRow(id=customer_id, workspace_id=workspace_id))
        sets = [
            _rows(workspace_id, first, customer_id, count, closed=True, tag=f"{workspace}-a"),
            _rows(workspace_id, second, customer_id, count, closed=True, tag=f"{workspace}-b"),
            _rows(workspace_id, third, customer_id, count, closed=False, tag=f"{workspace}-c"),
        ]
        for name in ("conversation", "raw_delivery", "message"):
            for rows in sets:
                for start in range(0, len(rows[name]), 1000):
                    async with database.transaction() as session:
                        await session.execute(sa.insert(tables[name]), rows[name][start : start + 1000])
        if not database.is_sqlite:
            async with database.engine.begin() as conn:
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await database.dispose()
    return second, sets[0]


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _ceiling_pg(url: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, float]:
    conn = await asyncpg.connect(_pg_dsn(url), timeout=10)
    purged = 0
    try:
        started = time.perf_counter()
        messages = rows["message"]
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            conversations = sorted({m["conversation_id"] for m in batch})
            async with conn.transaction():
                await conn.execute(
                    "UPDATE message SET text = NULL, payload = '{}', raw_delivery_id = NULL"
                    " WHERE id = ANY($1)",
                    [m["id"] for m in batch],
                )
                deleted = await conn.execute(
                    "DELETE FROM raw_delivery WHERE id = ANY($1)", sorted(m["raw_delivery_id"] for m in batch)
                )
                await conn.executemany(
                    "UPDATE conversation SET disposition = $2::jsonb WHERE id = $1",
                    [(c, json.dumps({"code": "venta"})) for c in conversations],
                )
            purged += len(batch) + int(deleted.split()[-1]) + len(conversations)
        return purged, time.perf_counter() - started
    finally:
        await conn.close()


async def _ceiling_sqlite(path: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, float]:
    conn = await aiosqlite.connect(path, timeout=30)
    purged = 0
    try:
        await conn.execute("PRAGMA foreign_keys=ON")
        started = time.perf_counter()
        messages = rows["message"]
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            conversations = sorted({m["conversation_id"] for m in batch})
            ids = [m["id"].hex for m in batch]
            raws = sorted(m["raw_delivery_id"].hex for m in batch)
            marks = ",".join("?" * len(batch))
            await conn.execute("BEGIN")
            await conn.execute(
                "UPDATE message SET text = NULL, payload = '{}', raw_delivery_id = NULL"
                f" WHERE id IN ({marks})",
                ids,
            )
            cursor = await conn.execute(f"DELETE FROM raw_delivery WHERE id IN ({marks})", raws)
            await conn.executemany(
                "UPDATE conversation SET disposition = ? WHERE id = ?",
                [(json.dumps({"code": "venta"}), c.hex) for c in conversations],
            )
            await conn.commit()
            purged += len(batch) + cursor.rowcount + len(conversations)
        return purged, time.perf_counter() - started
    finally:
        await conn.close()


async def _ours(url: str, workspace: str) -> tuple[int, float, dict[str, int]]:
    from centralita.retention import run_retention
    from storage.database import Database

    database = Database(url)
    try:
        started = time.perf_counter()
        result = await run_retention(database, NOW, batch=BATCH, workspace=workspace)
        elapsed = time.perf_counter() - started
    finally:
        await database.dispose()
    [ours] = [c for c in result.campaigns if c.campaign == "ours"]
    [still_open] = [c for c in result.campaigns if c.campaign == "open"]
    if still_open.total:
        raise RuntimeError(f"retention touched {still_open.total} rows of open conversations")
    counts = {
        "raw_deliveries": ours.raw_deliveries,
        "message_contents": ours.message_contents,
        "disposition_notes": ours.disposition_notes,
    }
    return ours.total, elapsed, counts


async def _one(ctx: Context, backend: str, url: str, count: int) -> None:
    ctx.progress(
        f"retention ({backend}): seeding {3 * count} conversations, {6 * count} messages and raw bodies"
    )
    workspace = f"bench-{backend}"
    _, first = await _seed(url, count, workspace)
    if backend.startswith("postgres"):
        raw_rows, raw_s = await _ceiling_pg(url, first)
    else:
        raw_rows, raw_s = await _ceiling_sqlite(sa.engine.make_url(url).database or "", first)
    ours_rows, ours_s, counts = await _ours(url, workspace)
    expected = 5 * count
    if (raw_rows, ours_rows) != (expected, expected):
        raise RuntimeError(
            f"retention ({backend}): purged {ours_rows} and {raw_rows} rows, expected {expected}"
        )
    ceiling_key = f"retention.{backend}.raw"
    ctx.results.add(
        "retention",
        ceiling_key,
        f"{backend}: raw UPDATE/DELETE … WHERE id = ANY(ids known), batches of {BATCH}",
        raw_rows / raw_s,
        "rows/s",
        details={"rows": raw_rows, "seconds": round(raw_s, 3)},
    )
    ctx.results.add(
        "retention",
        f"retention.{backend}.pass",
        f"{backend}: one retention pass (find + purge), batches of {BATCH}",
        ours_rows / ours_s,
        "rows/s",
        ceiling=ceiling_key,
        details={"rows": ours_rows, "seconds": round(ours_s, 3), **counts, "conversations": count},
    )


async def run(ctx: Context) -> None:
    count = SIZES[ctx.quick]
    await _one(ctx, "sqlite", f"sqlite+aiosqlite:///{Path(ctx.workdir) / 'retention.db'}", count)
    await _one(ctx, "postgres", ctx.database_url, count)
