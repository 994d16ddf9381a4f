"""1,000 conversations at once at 50 agents (capacity 3 each) through the real RabbitMQ and
PostgreSQL: every conversation assigned exactly once, no agent above capacity at any instant,
nothing lost, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from broker.factory import open_transport
from centralita.runtime import Runtime, open_runtime
from centralita.workers import router_deps
from core.settings import Settings
from core.transport.topology import agent_queue, route_queue
from router.service import BatchReport, RouterService
from router.wire import ConversationClosedInput
from storage.tables import AssignmentRow, ConversationRow
from tests.support.floor import (
    Floor,
    assignment_problems,
    dead_letters,
    insert_conversations,
    nudges,
    seed_floor,
)
from tests.support.routing import delete_broker_state
from tests.support.simagents import SimulatedAgents

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

AGENTS = 50
CAPACITY = 3
CONVERSATIONS = 1000


@pytest.fixture
def settings(
    postgres_url: str, rabbitmq_url: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    for name in ("BURST_WA_SECRET", "BURST_WA_TOKEN", "BURST_WA_VERIFY"):
        monkeypatch.setenv(name, "x")
    return Settings(
        database_url=postgres_url,
        broker_url=rabbitmq_url,
        broker_prefix=unique_prefix,
        router_ramp_period_s=0.0,
        router_resync_s=5.0,
        router_stats_interval_s=1.0,
        offer_timeout_s=30.0,
        graph_base_url="http://127.0.0.1:9",
        # The simulated agents are not behind a gateway: nobody renews their presence leases, so
        # the router's lease check must not come due within the test.
        presence_renew_s=600.0,
    )


@pytest.fixture
async def floor(settings: Settings) -> AsyncIterator[Floor]:
    found = await seed_floor(settings, AGENTS)
    yield found
    await found.database.dispose()
    await delete_broker_state(settings, [found.workspace_id], found.agents)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(settings) as opened:
        yield opened


async def test_a_thousand_conversations_at_fifty_agents_are_each_assigned_exactly_once(
    floor: Floor, runtime: Runtime, settings: Settings
) -> None:
    service = RouterService(router_deps(runtime), floor.workspace_id)
    activated, closes_handled = asyncio.Event(), asyncio.Event()
    closed_by_router: set[uuid.UUID] = set()

    def observe(report: BatchReport) -> None:
        if report.activated:
            activated.set()
        closed_by_router.update(
            i.conversation_id for i in report.inputs if isinstance(i, ConversationClosedInput)
        )
        if len(closed_by_router) >= CONVERSATIONS:
            closes_handled.set()

    service.observers.append(observe)
    await service.start()
    sim_transport = await open_transport(settings)
    sim = SimulatedAgents(
        sim_transport,
        floor.workspace_id,
        floor.agents,
        capacity=CAPACITY,
        expected=CONVERSATIONS,
        decline_every=10,
    )
    try:
        async with asyncio.timeout(10):
            await activated.wait()
        await sim.start()
        conversations = await insert_conversations(floor, CONVERSATIONS, runtime.clock())
        started = time.monotonic()
        await runtime.transport.publish(nudges(floor.workspace_id, conversations))
        async with asyncio.timeout(60):
            await sim.all_closed.wait()
        elapsed = time.monotonic() - started
        print(
            f"\n{CONVERSATIONS} conversations at {AGENTS} agents: all assigned and closed in {elapsed:.1f} s"
        )

        async with asyncio.timeout(10):
            await closes_handled.wait()
        async with floor.database.session() as session:
            open_left = (
                await session.execute(sa.select(sa.func.count()).where(ConversationRow.status != "closed"))
            ).scalar_one()
        assert open_left == 0
        assert sim.violations == []
        assert sorted(sim.closed) == sorted(conversations)
        assert all(len(agents) == 1 for agents in sim.assigned_to.values())
        assert set(sim.assigned_pushes.values()) == {1}
        assert sim.declines > 0  # declined offers went to someone else
        assert await assignment_problems(floor, CAPACITY) == []
        async with floor.database.session() as session:
            per_conversation = (
                await session.execute(
                    sa.select(AssignmentRow.conversation_id, sa.func.count()).group_by(
                        AssignmentRow.conversation_id
                    )
                )
            ).all()
        assert len(per_conversation) == CONVERSATIONS and {n for _, n in per_conversation} == {1}
        assert service.state is not None and service.state.audit() == []
        queues = [route_queue(str(floor.workspace_id)), *(agent_queue(str(a)) for a in floor.agents)]
        assert await dead_letters(settings, queues) == {}
    finally:
        await sim.stop()
        await sim_transport.close()
        await service.stop()
