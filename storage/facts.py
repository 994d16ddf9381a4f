"""Appending facts: the audit trail, the reports' rollup and the traffic counters, in the
caller's transaction.

``FactLog(session).append(facts)`` writes each ``core.facts.Fact`` as one ``audit_log`` row —
once: a fact whose ``dedupe`` key is already there is dropped — and folds the new ones into
their conversations' ``conversation_report`` rows (a ``conversation.opened`` fact inserts the
row; the others change it as ``core.facts.report_changes`` says), and writes the events
they emit (``core.webhooks.events_of``) to the outbox of the workspace's webhook
subscriptions (``storage.webhooks.fan_out``: one SELECT of the subscriptions when a fact
emits an event).  Whatever the number of facts,
that is one INSERT for the audit rows, one for new report rows, and one UPDATE per shape of
change.  ``count_traffic`` adds messages to the hourly volume counters.

LOCK ORDER (see ``storage.routing``): report rows and traffic counters are locked last in any
transaction, report rows by conversation id and counters by bucket, so these writes add no
cycle to the locks the rest of the transaction takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.facts import Change, ChangeOp, Fact, WorkAction, opened_row, report_changes
from core.ids import new_id
from core.webhooks import EventDraft, events_of
from storage.tables import AuditRow, ConversationReportRow, TrafficHourRow
from storage.upsert import insert_ignore
from storage.webhooks import fan_out

__all__ = ["FactLog", "TrafficCount", "count_traffic", "traffic"]

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]
TRAFFIC = TrafficHourRow.__table__  # type: ignore[attr-defined]


def _audit_row(fact: Fact, row_id: uuid.UUID) -> dict[str, Any]:
    subject = fact.subject_id or (str(fact.conversation_id) if fact.conversation_id else "")
    return {
        "id": row_id,
        "workspace_id": fact.workspace_id,
        "at": fact.at,
        "actor": fact.actor,
        "action": str(fact.action),
        "subject_type": fact.subject_type,
        "subject_id": subject,
        "details": _jsonable(fact.details),
        "conversation_id": fact.conversation_id,
        "customer_id": fact.customer_id,
        "agent_id": fact.agent_id,
        "campaign_id": fact.campaign_id,
        "queue_id": fact.queue_id,
        "dedupe": fact.dedupe,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _merge(changes: Iterable[Change]) -> dict[tuple[str, ChangeOp], Any]:
    """One conversation's changes of one append, combined (facts come in time order)."""
    merged: dict[tuple[str, ChangeOp], Any] = {}
    for change in changes:
        key = (change.column, change.op)
        if change.op == ChangeOp.ADD:
            merged[key] = merged.get(key, 0) + change.value
        elif change.op == ChangeOp.FIRST:
            if merged.get(key) is None:
                merged[key] = change.value
        else:
            merged[key] = change.value
    return {k: v for k, v in merged.items() if not (k[1] == ChangeOp.FIRST and v is None)}


class FactLog:
    """Appends facts in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        facts: Sequence[Fact],
        *,
        first_texts: Mapping[uuid.UUID, str | None] | None = None,
        events: Sequence[EventDraft] = (),
    ) -> list[Fact]:
        """Write ``facts`` once each; returns the ones that were new (the rest were recorded
        already).  ``first_texts``: the first customer message of conversations opened here.
        ``events``: events that are no fact of the audit trail (a message received, a delivery
        status, an alert…), fanned out with the facts' own in the same statements."""
        if not facts:
            await fan_out(self.session, events)
            return []
        ids = [new_id() for _ in facts]
        by_id = dict(zip(ids, facts, strict=True))
        rows = [_audit_row(f, i) for f, i in zip(facts, ids, strict=True)]
        if any(f.dedupe is not None for f in facts):
            inserted = set(
                await insert_ignore(self.session, AUDIT, rows, conflict=("dedupe",), returning=AUDIT.c.id)
            )
            new_ids = [i for i in ids if i in inserted]
        else:
            await self.session.execute(sa.insert(AUDIT), rows)
            new_ids = ids
        new = [by_id[i] for i in new_ids]
        await self._fold(new, first_texts or {})
        # Last (see LOCK ORDER): the events of the new facts, for the workspace's webhooks.
        await fan_out(self.session, [*(e for i in new_ids for e in events_of(by_id[i], i)), *events])
        return new

    async def _fold(self, facts: Sequence[Fact], first_texts: Mapping[uuid.UUID, str | None]) -> None:
        opened = [
            opened_row(f, first_texts.get(f.conversation_id))
            for f in facts
            if f.action == WorkAction.OPENED and f.conversation_id is not None
        ]
        if opened:
            await insert_ignore(self.session, REPORT, opened, conflict=("conversation_id",))
        per_conversation: dict[uuid.UUID, list[Change]] = {}
        for fact in sorted(facts, key=lambda f: f.at):
            if fact.conversation_id is None or fact.action == WorkAction.OPENED:
                continue
            changes = report_changes(fact)
            if changes:
                per_conversation.setdefault(fact.conversation_id, []).extend(changes)
        shapes: dict[tuple[tuple[str, ChangeOp], ...], list[dict[str, Any]]] = {}
        for conversation_id in sorted(per_conversation):
            merged = _merge(per_conversation[conversation_id])
            if not merged:
                continue
            shape = tuple(sorted(merged))
            params: dict[str, Any] = {"b_id": conversation_id}
            params.update({f"v_{column}": value for (column, _op), value in merged.items()})
            shapes.setdefault(shape, []).append(params)
        for shape, group in shapes.items():
            values: dict[str, Any] = {}
            for column, op in shape:
                bound = sa.bindparam(f"v_{column}", type_=REPORT.c[column].type)
                if op == ChangeOp.ADD:
                    values[column] = REPORT.c[column] + bound
                elif op == ChangeOp.FIRST:
                    values[column] = sa.func.coalesce(REPORT.c[column], bound)
                else:
                    values[column] = bound
            await self.session.execute(
                sa.update(REPORT).where(REPORT.c.conversation_id == sa.bindparam("b_id")).values(**values),
                group,
            )


@dataclass(frozen=True, slots=True)
class TrafficCount:
    """Messages of one campaign, channel and direction in one UTC hour."""

    workspace_id: uuid.UUID
    campaign_id: uuid.UUID | None
    channel: str
    direction: str
    hour: datetime  # truncated to the hour, UTC
    messages: int

    @property
    def bucket(self) -> str:
        campaign = self.campaign_id or "-"
        return f"{self.workspace_id}|{campaign}|{self.channel}|{self.direction}|{self.hour:%Y%m%d%H}"


def traffic(
    workspace_id: uuid.UUID, campaign_id: uuid.UUID | None, channel: str, direction: str, at: datetime
) -> TrafficCount:
    """One message's count."""
    return TrafficCount(
        workspace_id, campaign_id, channel, str(direction), at.replace(minute=0, second=0, microsecond=0), 1
    )


async def count_traffic(session: AsyncSession, counts: Iterable[TrafficCount]) -> None:
    """Add ``counts`` to the hourly counters (one statement; buckets in order)."""
    summed: dict[str, TrafficCount] = {}
    for c in counts:
        seen = summed.get(c.bucket)
        summed[c.bucket] = (
            c
            if seen is None
            else TrafficCount(
                c.workspace_id, c.campaign_id, c.channel, c.direction, c.hour, seen.messages + c.messages
            )
        )
    if not summed:
        return
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(TRAFFIC)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket"], set_={"messages": TRAFFIC.c.messages + stmt.excluded.messages}
    )
    await session.execute(
        stmt,
        [
            {
                "bucket": bucket,
                "workspace_id": c.workspace_id,
                "campaign_id": c.campaign_id,
                "channel": c.channel,
                "direction": c.direction,
                "hour": c.hour,
                "messages": c.messages,
            }
            for bucket, c in sorted(summed.items())
        ],
    )
