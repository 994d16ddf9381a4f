"""The CRM's writes, each in the caller's transaction with its audit fact and timeline entry.

- ``mark_promise``: a closed conversation's promise kept or broken → a system note on the
  conversation's timeline and the ``promise.kept`` / ``promise.broken`` fact (the audit row,
  folded into the report row).  Once per ``reference``: a retry finds the fact recorded and
  writes nothing.
- ``change_label``: a customer's labels (``customer.labels``) and the ``customer.label_added`` /
  ``customer.label_removed`` fact (``subject_type`` customer, no conversation).
- ``add_note``: a note on the customer's timeline with no conversation (``message`` with
  ``conversation_id`` NULL, ``channel`` ``crm``) and its ``customer.note_added`` fact.

The facts are appended last (LOCK ORDER: ``storage.facts``).  A twin request racing this one
past the ``reference`` check loses at the fact's dedupe key: ``Conflict``, its transaction rolls
back, and its retry answers what the winner recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.crm import (
    CrmAction,
    PromiseOutcome,
    label_change,
    promise_fact,
    promise_note,
    promise_of,
)
from core.errors import Conflict, NotFound
from core.facts import Fact
from core.ids import WorkspaceId, new_id
from core.states import ConversationStatus, MessageDirection, MessageKind
from storage.facts import FactLog
from storage.tables import AuditRow, ConversationRow, CustomerRow, MessageRow
from storage.types import as_utc

__all__ = ["CRM_CHANNEL", "CrmStore", "LabelChange", "MarkedPromise", "NoteAdded"]

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
CUST = CustomerRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]

CRM_CHANNEL = "crm"  # the channel of a customer note, which no conversation carries


@dataclass(frozen=True, slots=True)
class MarkedPromise:
    conversation_id: uuid.UUID
    outcome: PromiseOutcome
    reference: str
    paid_amount: str | None
    paid_at: str | None
    promised_date: str
    promised_amount: str | None
    recorded_at: datetime
    created: bool  # False: this reference was recorded already (nothing written now)


@dataclass(frozen=True, slots=True)
class LabelChange:
    customer_id: uuid.UUID
    labels: tuple[str, ...]
    changed: bool


@dataclass(frozen=True, slots=True)
class NoteAdded:
    customer_id: uuid.UUID
    message_id: uuid.UUID
    created_at: datetime
    created: bool


def _marked(row: Any, created: bool) -> MarkedPromise:
    d = dict(row.details or {})
    return MarkedPromise(
        conversation_id=row.conversation_id,
        outcome=PromiseOutcome.KEPT if str(row.action).endswith("kept") else PromiseOutcome.BROKEN,
        reference=str(d.get("reference")),
        paid_amount=d.get("paid_amount"),
        paid_at=d.get("paid_at"),
        promised_date=str(d.get("promised_date")),
        promised_amount=d.get("promised_amount"),
        recorded_at=as_utc(row.at),
        created=created,
    )


class CrmStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _recorded(self, dedupe: str) -> Any:
        return (await self.session.execute(sa.select(AUDIT).where(AUDIT.c.dedupe == dedupe))).first()

    async def _append(self, fact: Fact) -> None:
        if not await FactLog(self.session).append([fact]):
            raise Conflict("a twin request recorded this reference just now; retry", field="reference")

    async def labels_of(self, ws: WorkspaceId, customer_id: uuid.UUID) -> tuple[str, ...]:
        raw = (
            await self.session.execute(
                sa.select(CUST.c.labels).where(CUST.c.workspace_id == ws, CUST.c.id == customer_id)
            )
        ).scalar()
        return tuple(sorted(str(x) for x in raw or ()))

    async def mark_promise(
        self,
        ws: WorkspaceId,
        conversation_id: uuid.UUID,
        outcome: PromiseOutcome,
        *,
        reference: str,
        paid_amount: Decimal | None,
        paid_at: datetime | None,
        actor: str,
        now: datetime,
    ) -> MarkedPromise:
        """``NotFound`` for another workspace's conversation; ``Conflict`` when it is not closed
        with a promise, or this ``reference`` marked the other outcome already."""
        conv = (
            await self.session.execute(
                sa.select(CONV).where(CONV.c.workspace_id == ws, CONV.c.id == conversation_id)
            )
        ).first()
        if conv is None:
            raise NotFound("no such conversation in this workspace", field="conversation_id")
        dedupe = f"{conversation_id}:promise:{reference}"
        seen = await self._recorded(dedupe)
        if seen is not None:
            before = _marked(seen, created=False)
            if before.outcome is not outcome:
                raise Conflict(
                    f"this reference marked the promise {before.outcome.value} already", field="reference"
                )
            return before
        promise = promise_of(conv.disposition) if conv.status == ConversationStatus.CLOSED else None
        if promise is None:
            raise Conflict(
                "the conversation is not closed with a promise to pay (a disposition with a date)",
                field="conversation_id",
            )
        fact = promise_fact(
            outcome,
            promise,
            at=now,
            actor=actor,
            workspace_id=ws,
            conversation_id=conversation_id,
            customer_id=conv.customer_id,
            campaign_id=conv.campaign_id,
            reference=reference,
            paid_amount=paid_amount,
            paid_at=paid_at,
        )
        await self.session.execute(
            sa.insert(MSG).values(
                id=new_id(),
                workspace_id=ws,
                conversation_id=conversation_id,
                customer_id=conv.customer_id,
                direction=MessageDirection.NOTE,
                kind=MessageKind.SYSTEM,
                channel=conv.channel,
                text=promise_note(outcome, paid_amount),
                payload={"promise": outcome.value, **fact.details},
                created_at=now,
                stored_at=now,
            )
        )
        await self._append(fact)
        return MarkedPromise(
            conversation_id=conversation_id,
            outcome=outcome,
            reference=reference,
            paid_amount=fact.details["paid_amount"],
            paid_at=fact.details["paid_at"],
            promised_date=promise.date,
            promised_amount=promise.amount,
            recorded_at=now,
            created=True,
        )

    async def live_customer(self, ws: WorkspaceId, customer_id: uuid.UUID) -> Any:
        """The customer an id stands for now (a merged-away id: its survivor); ``NotFound``."""
        current = customer_id
        for _ in range(16):
            row = (
                await self.session.execute(
                    sa.select(CUST.c.id, CUST.c.merged_into, CUST.c.labels).where(
                        CUST.c.workspace_id == ws, CUST.c.id == current
                    )
                )
            ).first()
            if row is None:
                break
            if row.merged_into is None:
                return row
            current = row.merged_into
        raise NotFound("no such customer", field="customer_id")

    async def change_label(
        self,
        ws: WorkspaceId,
        customer_id: uuid.UUID,
        label: str,
        *,
        add: bool,
        actor: str,
        now: datetime,
    ) -> LabelChange:
        """Add (or remove) a normalized label; nothing is written when it changes nothing."""
        live = await self.live_customer(ws, customer_id)
        # Lock the customer: two CRM calls at once must not each drop the other's label.
        await self.session.execute(sa.update(CUST).where(CUST.c.id == live.id).values(labels=CUST.c.labels))
        current = await self.labels_of(ws, live.id)
        after = label_change(current, label, add=add)
        if after is None:
            return LabelChange(live.id, current, changed=False)
        await self.session.execute(sa.update(CUST).where(CUST.c.id == live.id).values(labels=list(after)))
        await FactLog(self.session).append(
            [
                Fact(
                    CrmAction.LABEL_ADDED if add else CrmAction.LABEL_REMOVED,
                    now,
                    actor,
                    ws,
                    customer_id=live.id,
                    details={"label": label, "labels": list(after)},
                    subject_type="customer",
                    subject_id=str(live.id),
                )
            ]
        )
        return LabelChange(live.id, after, changed=True)

    async def add_note(
        self,
        ws: WorkspaceId,
        customer_id: uuid.UUID,
        text: str,
        *,
        reference: str | None,
        actor: str,
        now: datetime,
    ) -> NoteAdded:
        """A note on the customer's timeline (no conversation); once per ``reference``."""
        live = await self.live_customer(ws, customer_id)
        dedupe = f"{live.id}:note:{reference}" if reference else None
        if dedupe is not None:
            seen = await self._recorded(dedupe)
            if seen is not None:
                return NoteAdded(
                    live.id, uuid.UUID(str(seen.details["message_id"])), as_utc(seen.at), created=False
                )
        message_id = new_id()
        await self.session.execute(
            sa.insert(MSG).values(
                id=message_id,
                workspace_id=ws,
                conversation_id=None,
                customer_id=live.id,
                direction=MessageDirection.NOTE,
                kind=MessageKind.NOTE,
                channel=CRM_CHANNEL,
                text=text,
                payload={"by": actor, "reference": reference},
                created_at=now,
                stored_at=now,
            )
        )
        fact = Fact(
            CrmAction.NOTE_ADDED,
            now,
            actor,
            ws,
            customer_id=live.id,
            details={"message_id": str(message_id), "reference": reference},
            dedupe=dedupe,
            subject_type="customer",
            subject_id=str(live.id),
        )
        if dedupe is not None:
            await self._append(fact)
        else:
            await FactLog(self.session).append([fact])
        return NoteAdded(live.id, message_id, now, created=True)
