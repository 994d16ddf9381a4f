"""Two routers for one workspace on the same PostgreSQL and RabbitMQ: the active one's broker
connection is cut mid-burst; the standby takes over (single active consumer on ``route.<ws>``,
epoch fencing in the database) with nothing lost and nothing assigned twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from broker.factory import open_transport
from centralita.runtime import open_runtime
from centralita.workers import router_deps
from core.settings import Settings
from core.transport.topology import agent_queue, route_queue
from router.service import BatchReport, RouterService
from router.service.service import _Superseded
from router.wire import ConversationClosedInput
from storage.tables import AssignmentRow, ConversationRow, OfferRow, RouterEpochRow
from tests.support.floor import (
    Floor,
    assignment_problems,
    dead_letters,
    everything_closed,
    insert_conversations,
    nudges,
    seed_floor,
)
from tests.support.routing import delete_broker_state
from tests.support.simagents import SimulatedAgents
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

AGENTS = 20
CAPACITY = 3
CONVERSATIONS = 400


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
        router_resync_s=2.0,
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


class Watch:
    """What the router instances reported."""

    def __init__(self) -> None:
        self.activated: dict[str, asyncio.Event] = {}
        self.closed: set[uuid.UUID] = set()

    def of(self, instance: str) -> Callable[[BatchReport], None]:
        activated = self.activated.setdefault(instance, asyncio.Event())

        def observe(report: BatchReport) -> None:
            if report.activated:
                activated.set()
            self.closed.update(
                i.conversation_id for i in report.inputs if isinstance(i, ConversationClosedInput)
            )

        return observe


async def test_the_standby_takes_over_mid_burst_with_nothing_lost_or_assigned_twice(
    floor: Floor, settings: Settings
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    through_proxy = settings.model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}/", "broker_connect_attempts": 1}
    )
    async with open_runtime(through_proxy) as runtime_a, open_runtime(settings) as runtime_b:
        first = RouterService(router_deps(runtime_a), floor.workspace_id, instance="router-a")
        second = RouterService(router_deps(runtime_b), floor.workspace_id, instance="router-b")
        watch = Watch()
        first.observers.append(watch.of("router-a"))
        second.observers.append(watch.of("router-b"))
        sim_transport = await open_transport(settings)
        sim = SimulatedAgents(
            sim_transport, floor.workspace_id, floor.agents, capacity=CAPACITY, expected=CONVERSATIONS
        )
        try:
            await first.start()
            async with asyncio.timeout(10):
                await watch.activated["router-a"].wait()
            await second.start()  # a standby: route.<ws> delivers to the first consumer only
            await sim.start()
            conversations = await insert_conversations(floor, CONVERSATIONS, runtime_a.clock())
            started = time.monotonic()
            await sim_transport.publish(nudges(floor.workspace_id, conversations))
            async with asyncio.timeout(30):
                await sim.wait_closed(CONVERSATIONS // 4)  # the burst is in flight
            assert not second.active

            await proxy.cut()  # the active router loses the broker abruptly, mid-burst
            cut_at = time.monotonic()
            async with asyncio.timeout(30):
                await watch.activated["router-b"].wait()
            took_over = time.monotonic() - cut_at
            async with asyncio.timeout(60):
                await sim.all_closed.wait()
            async with asyncio.timeout(45):  # generous: CI shares two cores with both servers
                await everything_closed(floor, conversations)  # the last closes reached the router
            total = time.monotonic() - started
            print(
                f"\n{CONVERSATIONS} conversations, cut after {CONVERSATIONS // 4} closed: standby active "
                f"{took_over:.1f} s after the cut; all assigned and closed {total:.1f} s after the burst"
            )

            assert sim.violations == []
            assert sorted(sim.closed) == sorted(conversations)
            assert all(len(agents) == 1 for agents in sim.assigned_to.values())  # never two agents
            assert await assignment_problems(floor, CAPACITY) == []
            async with floor.database.session() as session:
                per_conversation = dict(
                    (
                        await session.execute(
                            sa.select(AssignmentRow.conversation_id, sa.func.count()).group_by(
                                AssignmentRow.conversation_id
                            )
                        )
                    ).all()
                )
                still_open = (
                    await session.execute(
                        sa.select(sa.func.count()).where(ConversationRow.status != "closed")
                    )
                ).scalar_one()
                live_offers = (
                    await session.execute(sa.select(sa.func.count()).where(OfferRow.status == "offered"))
                ).scalar_one()
            assert set(per_conversation) == set(conversations) and set(per_conversation.values()) == {1}
            assert (still_open, live_offers) == (0, 0)
            assert second.active and second.state is not None and second.state.audit() == []
            async with floor.database.session() as session:
                holder = (await session.execute(sa.select(RouterEpochRow.holder))).scalar_one()
            assert holder == "router-b"  # the first router is fenced off
            queues = [route_queue(str(floor.workspace_id)), *(agent_queue(str(a)) for a in floor.agents)]
            assert await dead_letters(settings, queues) == {}
        finally:
            await sim.stop()
            await sim_transport.close()
            await second.stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await first.stop()
            await proxy.restore()


@pytest.mark.parametrize("failure", ["superseded", "bug"])
async def test_a_round_that_fails_after_acknowledging_its_inputs_does_not_stop_the_router(
    floor: Floor, settings: Settings, failure: str
) -> None:
    """A round can fail after it settled its inputs (fenced off while nudging the outbound workers,
    or a bug): the router starts again from the database instead of dying with the deliveries."""
    async with open_runtime(settings) as runtime:
        service = RouterService(router_deps(runtime), floor.workspace_id, instance="router-a")
        watch = Watch()
        service.observers.append(watch.of("router-a"))
        original = service._nudge_outbound
        failures = [_Superseded() if failure == "superseded" else RuntimeError("a bug")]

        async def fail_once(message_ids: Any) -> None:
            if failures and len(watch.closed) >= 20:
                raise failures.pop()
            await original(message_ids)

        service._nudge_outbound = fail_once  # type: ignore[method-assign]
        sim_transport = await open_transport(settings)
        sim = SimulatedAgents(
            sim_transport, floor.workspace_id, floor.agents, capacity=CAPACITY, expected=100
        )
        try:
            await service.start()
            async with asyncio.timeout(10):
                await watch.activated["router-a"].wait()
            await sim.start()
            conversations = await insert_conversations(floor, 100, runtime.clock())
            await sim_transport.publish(nudges(floor.workspace_id, conversations))
            async with asyncio.timeout(45):
                await sim.all_closed.wait()
                await everything_closed(floor, conversations)
            assert failures == []  # the failure happened
            assert sorted(sim.closed) == sorted(conversations) and sim.violations == []
            assert await assignment_problems(floor, CAPACITY) == []
        finally:
            await sim.stop()
            await sim_transport.close()
            await service.stop()
