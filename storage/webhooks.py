"""Webhook subscriptions, the event outbox and the delivery log, in the caller's transaction.

- ``WebhookStore.apply`` writes a campaign's ``integrations.webhooks`` as ``webhook_subscription``
  rows of its workspace (a name is the workspace's: another campaign's is a ``Conflict``; one
  removed from the manifest becomes inactive).  Applying resumes a paused subscription.  It
  manages only the rows of source ``manifest``; ``create`` and ``change`` manage those of source
  ``api`` (the admin API), and each refuses the other's (``Conflict``).
- ``fan_out`` (called by ``storage.facts.FactLog.append``, in the transaction of the facts, and
  by the identity store and the pause below for their own events) writes one ``event_outbox``
  row per event and matching active subscription of its workspace, due at once; an event
  already queued for a subscription is left as it is.  A crash after the commit only delays
  the delivery.
- ``claim`` leases due rows to one delivery worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  SQLite has one writer), never a conversation's event while an earlier one of the same
  subscription is still pending; ``record`` writes an attempt's outcome, the retry state
  (attempts, next due time) in the row, and pauses a subscription failing for too long with an
  alert.
- ``deliveries`` reads a subscription's delivery log; ``redeliver`` queues an event again.

LOCK ORDER: outbox rows are inserted last in a fact's transaction (new rows: nothing waits on
them); the worker's transactions touch only the outbox, the log, the subscription and an alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.campaign import Manifest
from core.errors import Conflict
from core.ids import new_id
from core.states import AlertKind
from core.webhooks import DeliveryOutcome, EventDraft, alert_raised, matches
from storage.tables import AlertRow, EventOutboxRow, WebhookDeliveryRow, WebhookSubscriptionRow
from storage.upsert import insert_ignore

__all__ = ["OUTBOX", "Attempt", "Claimed", "Delivery", "Subscription", "WebhookStore", "fan_out"]

SUBSCRIPTION = WebhookSubscriptionRow.__table__  # type: ignore[attr-defined]
OUTBOX = EventOutboxRow.__table__  # type: ignore[attr-defined]
DELIVERY = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]
ALERT = AlertRow.__table__  # type: ignore[attr-defined]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    url: str
    secret_env: str
    active: bool
    paused_at: datetime | None
    events: tuple[str, ...] = ()
    source: str = "manifest"  # manifest (its campaign's apply manages it) | api


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event leased to this worker for one attempt."""

    seq: int
    event_id: uuid.UUID
    type: str
    body: Mapping[str, Any]
    attempts: int
    created_at: datetime
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt gave."""

    outcome: DeliveryOutcome
    status_code: int | None
    latency_ms: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One line of a subscription's delivery log."""

    event_id: uuid.UUID
    type: str | None
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    outcome: str
    error: str | None


MANIFEST, API = "manifest", "api"


def _subscription(row: Any) -> Subscription:
    return Subscription(
        row.id,
        row.workspace_id,
        row.name,
        row.url,
        row.secret_env,
        row.active,
        row.paused_at,
        tuple(row.events or ()),
        row.source,
    )


async def fan_out(session: AsyncSession, drafts: Sequence[EventDraft]) -> int:
    """One outbox row per event and matching active subscription; returns how many."""
    if not drafts:
        return 0
    workspaces = sorted({d.workspace_id for d in drafts})
    subscriptions = (
        await session.execute(
            sa.select(SUBSCRIPTION.c.id, SUBSCRIPTION.c.workspace_id, SUBSCRIPTION.c.events).where(
                SUBSCRIPTION.c.workspace_id.in_(workspaces), SUBSCRIPTION.c.active.is_(True)
            )
        )
    ).all()
    if not subscriptions:
        return 0
    rows = [
        {
            "event_id": d.id,
            "subscription_id": s.id,
            "workspace_id": d.workspace_id,
            "conversation_id": d.conversation_id,
            "type": d.type,
            "occurred_at": d.occurred_at,
            "body": d.body,
            "status": PENDING,
            "attempts": 0,
            "created_at": d.occurred_at,
            "due_at": d.occurred_at,
        }
        for d in drafts
        for s in subscriptions
        if s.workspace_id == d.workspace_id and matches(s.events or (), d.type)
    ]
    if rows:  # an event already queued for a subscription (a redelivered fact) stays as it is
        await insert_ignore(session, OUTBOX, rows, conflict=("subscription_id", "event_id"))
    return len(rows)


class WebhookStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- subscriptions ---------------------------------------------------------------------

    async def apply(
        self, workspace_id: uuid.UUID, campaign_id: uuid.UUID, manifest: Manifest, now: datetime
    ) -> None:
        """Write the manifest's subscriptions; the campaign's others become inactive."""
        wanted = manifest.integrations.webhooks if manifest.integrations else []
        existing = {
            r.name: r
            for r in (
                await self.session.execute(
                    sa.select(SUBSCRIPTION).where(SUBSCRIPTION.c.workspace_id == workspace_id)
                )
            ).all()
        }
        for index, hook in enumerate(wanted):
            values = {
                "url": hook.url,
                "events": list(hook.events),
                "secret_env": hook.secret_env,
                "active": hook.active,
                "failing_since": None,
                "paused_at": None,
                "updated_at": now,
            }
            row = existing.get(hook.name)
            if row is None:
                await self.session.execute(
                    sa.insert(SUBSCRIPTION).values(
                        id=new_id(),
                        workspace_id=workspace_id,
                        campaign_id=campaign_id,
                        source=MANIFEST,
                        name=hook.name,
                        **values,
                    )
                )
            elif row.source != MANIFEST:
                raise Conflict(
                    f"webhook {hook.name!r} was made through the admin API: rename it here",
                    field=f"integrations.webhooks[{index}].name",
                )
            elif row.campaign_id != campaign_id and row.active:
                raise Conflict(
                    f"webhook {hook.name!r} is declared by another campaign of this workspace",
                    field=f"integrations.webhooks[{index}].name",
                )
            else:
                await self.session.execute(
                    sa.update(SUBSCRIPTION)
                    .where(SUBSCRIPTION.c.id == row.id)
                    .values(campaign_id=campaign_id, **values)
                )
        names = {h.name for h in wanted}
        await self.session.execute(
            sa.update(SUBSCRIPTION)
            .where(
                SUBSCRIPTION.c.campaign_id == campaign_id,
                SUBSCRIPTION.c.source == MANIFEST,
                SUBSCRIPTION.c.name.not_in(names) if names else sa.true(),
                SUBSCRIPTION.c.active.is_(True),
            )
            .values(active=False, updated_at=now)
        )

    async def subscriptions(self, workspace_id: uuid.UUID) -> list[Subscription]:
        """The workspace's subscriptions (both sources, inactive ones too), by name."""
        rows = await self.session.execute(
            sa.select(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.workspace_id == workspace_id)
            .order_by(SUBSCRIPTION.c.name)
        )
        return [_subscription(r) for r in rows.all()]

    async def create(
        self,
        workspace_id: uuid.UUID,
        *,
        name: str,
        url: str,
        events: Sequence[str],
        secret_env: str,
        active: bool,
        now: datetime,
    ) -> Subscription:
        """A subscription made through the admin API (source ``api``); a name taken (by either
        source, active or not) is a ``Conflict``."""
        if await self.subscription(workspace_id, name) is not None:
            raise Conflict(f"there is a webhook {name!r} already", field="name")
        ident = new_id()
        await self.session.execute(
            sa.insert(SUBSCRIPTION).values(
                id=ident,
                workspace_id=workspace_id,
                campaign_id=None,
                source=API,
                name=name,
                url=url,
                events=list(events),
                secret_env=secret_env,
                active=active,
                updated_at=now,
            )
        )
        return Subscription(ident, workspace_id, name, url, secret_env, active, None, tuple(events), API)

    async def change(
        self, subscription: Subscription, changes: Mapping[str, Any], now: datetime
    ) -> Subscription:
        """Change an API-made subscription (``url``, ``events``, ``secret_env``, ``active``); one
        a manifest declares is that manifest's (``Conflict``).  Activating it resumes it if paused."""
        if subscription.source != API:
            raise Conflict(
                f"webhook {subscription.name!r} is declared by a campaign manifest: change it there",
                field="name",
            )
        values = {k: (list(v) if k == "events" else v) for k, v in changes.items()}
        if values.get("active") is True:
            values.update(paused_at=None, failing_since=None)
        await self.session.execute(
            sa.update(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.id == subscription.id)
            .values(updated_at=now, **values)
        )
        found = await self.subscription(subscription.workspace_id, subscription.name)
        assert found is not None
        return found

    async def subscription(self, workspace_id: uuid.UUID, name: str) -> Subscription | None:
        row = (
            await self.session.execute(
                sa.select(SUBSCRIPTION).where(
                    SUBSCRIPTION.c.workspace_id == workspace_id, SUBSCRIPTION.c.name == name
                )
            )
        ).first()
        return _subscription(row) if row is not None else None

    # -- delivery --------------------------------------------------------------------------

    async def claim(self, now: datetime, *, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due events (oldest first), at most one per subscription and
        conversation: never one while an earlier event of its conversation is pending."""
        earlier = OUTBOX.alias("earlier")
        query = (
            sa.select(OUTBOX, SUBSCRIPTION.c.name, SUBSCRIPTION.c.url, SUBSCRIPTION.c.secret_env)
            .select_from(OUTBOX.join(SUBSCRIPTION, SUBSCRIPTION.c.id == OUTBOX.c.subscription_id))
            .where(
                OUTBOX.c.status == PENDING,
                OUTBOX.c.due_at <= now,
                sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= now),
                SUBSCRIPTION.c.active.is_(True),
                SUBSCRIPTION.c.paused_at.is_(None),
                ~sa.exists().where(
                    earlier.c.subscription_id == OUTBOX.c.subscription_id,
                    earlier.c.conversation_id == OUTBOX.c.conversation_id,
                    earlier.c.seq < OUTBOX.c.seq,
                    earlier.c.status == PENDING,
                ),
            )
            .order_by(OUTBOX.c.seq)
            .limit(limit)
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(of=OUTBOX, skip_locked=True)
        rows = (await self.session.execute(query)).all()
        if not rows:
            return []
        await self.session.execute(
            sa.update(OUTBOX).where(OUTBOX.c.seq.in_([r.seq for r in rows])).values(lease_until=now + lease)
        )
        return [
            Claimed(
                r.seq,
                r.event_id,
                r.type,
                r.body,
                r.attempts,
                r.created_at,
                Subscription(r.subscription_id, r.workspace_id, r.name, r.url, r.secret_env, True, None),
            )
            for r in rows
        ]

    async def record(
        self,
        claimed: Claimed,
        attempt: Attempt,
        now: datetime,
        *,
        retry_in: timedelta,
        give_up_after: timedelta,
        pause_after: timedelta,
    ) -> DeliveryOutcome:
        """Write the attempt to the log and its outcome to the row; returns the row's outcome
        (a retry past ``give_up_after`` from the event's creation fails it)."""
        await self.session.execute(
            sa.insert(DELIVERY).values(
                id=new_id(),
                subscription_id=claimed.subscription.id,
                event_id=claimed.event_id,
                attempted_at=now,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                outcome=str(attempt.outcome),
                error=(attempt.error or None) and attempt.error[:500],
            )
        )
        outcome = attempt.outcome
        if outcome == DeliveryOutcome.RETRY and now - claimed.created_at >= give_up_after:
            outcome = DeliveryOutcome.FAILED
        values: dict[str, Any] = {"attempts": claimed.attempts + 1, "lease_until": None}
        if attempt.error is not None:
            values["last_error"] = attempt.error[:500]
        if outcome == DeliveryOutcome.DELIVERED:
            values.update(status=DELIVERED, delivered_at=now)
        elif outcome == DeliveryOutcome.FAILED:
            values.update(status=FAILED)
        else:
            values.update(due_at=now + retry_in)
        await self.session.execute(sa.update(OUTBOX).where(OUTBOX.c.seq == claimed.seq).values(**values))
        subscription = SUBSCRIPTION.c.id == claimed.subscription.id
        if attempt.outcome != DeliveryOutcome.RETRY:  # the endpoint answered
            await self.session.execute(sa.update(SUBSCRIPTION).where(subscription).values(failing_since=None))
            return outcome
        await self.session.execute(
            sa.update(SUBSCRIPTION)
            .where(subscription, SUBSCRIPTION.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        paused = await self.session.execute(
            sa.update(SUBSCRIPTION)
            .where(
                subscription,
                SUBSCRIPTION.c.paused_at.is_(None),
                SUBSCRIPTION.c.failing_since <= now - pause_after,
            )
            .values(paused_at=now)
        )
        if paused.rowcount:  # type: ignore[attr-defined]
            alert_id, details = new_id(), {"webhook": claimed.subscription.name, "error": attempt.error}
            await self.session.execute(
                sa.insert(ALERT).values(
                    id=alert_id,
                    workspace_id=claimed.subscription.workspace_id,
                    kind=str(AlertKind.WEBHOOK_PAUSED),
                    raised_at=now,
                    details=details,
                )
            )
            # The workspace's subscriptions learn of it (the paused one once it resumes).
            await fan_out(
                self.session,
                [
                    alert_raised(
                        claimed.subscription.workspace_id,
                        alert_id,
                        AlertKind.WEBHOOK_PAUSED,
                        now,
                        details={"webhook": claimed.subscription.name},
                    )
                ],
            )
        return outcome

    # -- the delivery log ------------------------------------------------------------------

    async def deliveries(self, subscription_id: uuid.UUID, *, limit: int) -> list[Delivery]:
        """The latest attempts, newest first."""
        event_type = (
            sa.select(OUTBOX.c.type)
            .where(
                OUTBOX.c.subscription_id == DELIVERY.c.subscription_id,
                OUTBOX.c.event_id == DELIVERY.c.event_id,
            )
            .limit(1)
            .scalar_subquery()
        )
        rows = (
            await self.session.execute(
                sa.select(DELIVERY, event_type.label("type"))
                .where(DELIVERY.c.subscription_id == subscription_id)
                .order_by(DELIVERY.c.attempted_at.desc(), DELIVERY.c.id)
                .limit(limit)
            )
        ).all()
        return [
            Delivery(r.event_id, r.type, r.attempted_at, r.status_code, r.latency_ms, r.outcome, r.error)
            for r in rows
        ]

    async def redeliver(self, subscription: Subscription, event_id: uuid.UUID, now: datetime) -> bool:
        """Queue an event of the subscription again, due now (with a fresh 24-hour window), and
        resume the subscription if it was paused; False when it never had that event."""
        result = await self.session.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.subscription_id == subscription.id, OUTBOX.c.event_id == event_id)
            .values(status=PENDING, due_at=now, created_at=now, lease_until=None, delivered_at=None)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        await self.session.execute(
            sa.update(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.id == subscription.id)
            .values(paused_at=None, failing_since=None)
        )
        return True

    async def backlog(self) -> int:
        """Events waiting to be delivered (all workspaces)."""
        return int(
            (
                await self.session.execute(sa.select(sa.func.count()).where(OUTBOX.c.status == PENDING))
            ).scalar_one()
        )

    async def backlog_by_workspace(self) -> dict[uuid.UUID, int]:
        """Events waiting to be delivered, per workspace (those with none are absent); one
        aggregate through the ``(status, due_at)`` index."""
        rows = await self.session.execute(
            sa.select(OUTBOX.c.workspace_id, sa.func.count())
            .where(OUTBOX.c.status == PENDING)
            .group_by(OUTBOX.c.workspace_id)
        )
        return {uuid.UUID(str(ws)): int(n) for ws, n in rows.all()}
