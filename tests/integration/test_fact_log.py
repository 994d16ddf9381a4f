"""The facts of a conversation land once in the audit trail and fold into its report row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.facts import CloseReason, Fact, WorkAction, fold
from core.ids import new_id
from storage.database import Database
from storage.facts import AUDIT, REPORT, TRAFFIC, FactLog, count_traffic, traffic
from storage.tables import WorkspaceRow

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


async def _workspace(db: Database) -> uuid.UUID:
    ws = new_id()
    async with db.transaction() as session:
        await session.execute(
            sa.insert(WorkspaceRow.__table__).values(id=ws, slug=f"w{ws.hex[:8]}", name="W", created_at=T0)
        )  # type: ignore[attr-defined]
    return ws


def _life(
    ws: uuid.UUID, conv: uuid.UUID, customer: uuid.UUID, agent: uuid.UUID, queue: uuid.UUID
) -> list[Fact]:
    def at(s: float) -> datetime:
        return T0 + timedelta(seconds=s)

    common = {"workspace_id": ws, "conversation_id": conv, "customer_id": customer, "queue_id": queue}
    offer = new_id()
    return [
        Fact(
            WorkAction.OPENED,
            at(0),
            "customer",
            details={"channel": "whatsapp"},
            dedupe=f"{conv}:opened",
            **common,
        ),
        Fact(
            WorkAction.OFFERED,
            at(5),
            "router",
            agent_id=agent,
            details={"offer_id": str(offer)},
            dedupe=f"{offer}:offered",
            **common,
        ),
        Fact(WorkAction.OFFER_EXPIRED, at(35), "router", agent_id=agent, dedupe=f"{offer}:ended", **common),
        Fact(
            WorkAction.ASSIGNED,
            at(40),
            "router",
            agent_id=agent,
            details={"how": "offer", "waited_s": 40.0},
            **common,
        ),
        Fact(WorkAction.REPLIED, at(70), f"agent:{agent}", agent_id=agent, dedupe="m1", **common),
        Fact(WorkAction.REPLIED, at(90), f"agent:{agent}", agent_id=agent, dedupe="m2", **common),
        Fact(
            WorkAction.ASSIGNMENT_ENDED,
            at(400),
            "router",
            agent_id=agent,
            details={"active_s": 360.0},
            **common,
        ),
        Fact(
            WorkAction.CLOSED,
            at(400),
            f"agent:{agent}",
            agent_id=agent,
            details={
                "reason": CloseReason.AGENT,
                "disposition": {"code": "promesa", "amount": "150000", "date": "2026-03-10"},
            },
            dedupe=f"{conv}:closed",
            **common,
        ),
    ]


async def test_a_conversations_facts_fold_into_its_report_row_once_each(database: Database) -> None:
    ws = await _workspace(database)
    conv, customer, agent, queue = new_id(), new_id(), new_id(), new_id()
    facts = _life(ws, conv, customer, agent, queue)
    async with database.transaction() as session:  # in three transactions, as three writers would
        await FactLog(session).append(facts[:2], first_texts={conv: "hola, quiero pagar mi deuda"})
    async with database.transaction() as session:
        await FactLog(session).append(facts[2:5])
    async with database.transaction() as session:
        new = await FactLog(session).append(facts[5:] + facts[:2])  # the first two again: dropped
    assert [f.action for f in new] == [f.action for f in facts[5:]]
    async with database.session() as session:
        row = (
            (await session.execute(sa.select(REPORT).where(REPORT.c.conversation_id == conv)))
            .mappings()
            .one()
        )
        actions = (
            (await session.execute(sa.select(AUDIT.c.action).where(AUDIT.c.conversation_id == conv)))
            .scalars()
            .all()
        )
    assert sorted(actions) == sorted(str(f.action) for f in facts)
    expected = fold(facts)
    assert expected is not None
    for column, value in expected.items():
        if column == "first_text":  # not a fact's: the opener's
            continue
        got = row[column]
        if isinstance(got, datetime):
            got = got.astimezone(UTC)
        assert got == value, column
    assert row["offers"] == 1 and row["timeouts"] == 1 and row["agent_replies"] == 2
    assert row["first_response_at"].astimezone(UTC) == T0 + timedelta(seconds=70)
    assert row["disposition_amount"] == "150000" and row["close_reason"] == "agent"
    assert row["first_text"] == "hola, quiero pagar mi deuda"


async def test_messages_add_up_per_campaign_channel_direction_and_hour(database: Database) -> None:
    ws = await _workspace(database)
    campaign = new_id()
    async with database.transaction() as session:
        await count_traffic(
            session, [traffic(ws, campaign, "whatsapp", "in", T0 + timedelta(minutes=m)) for m in (1, 2, 59)]
        )
    async with database.transaction() as session:
        await count_traffic(
            session,
            [
                traffic(ws, campaign, "whatsapp", "in", T0 + timedelta(minutes=61)),
                traffic(ws, campaign, "whatsapp", "in", T0),
            ],
        )
    async with database.session() as session:
        rows = (
            await session.execute(sa.select(TRAFFIC.c.hour, TRAFFIC.c.messages).order_by(TRAFFIC.c.hour))
        ).all()
    assert [(h.astimezone(UTC).hour, n) for h, n in rows] == [(14, 4), (15, 1)]
