"""The reduced form of the fault benchmark (``bench.faults``): the database and the broker fail
under load, and nothing answered 200 is lost.

Each test starts a PostgreSQL cluster and a RabbitMQ node of its own (``bench.private``: never
the shared servers), the engine as two processes (a router, a webhook + pipeline + gateway
process), agents on WebSockets accepting every offer, and 100 signed WhatsApp webhooks a second
for 20 s from a sender that retries any answer but 200 with backoff, as Meta does.  Five seconds
in, the server goes down for five seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import FaultReport, Plan, run_fault, table

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

PLAN = Plan(
    rate=100.0,
    duration_s=20.0,
    fault_at_s=5.0,
    outage_s=5.0,
    agents=10,
    recover_deadline_s=30.0,
    drain_s=40.0,
    stall_s=15.0,
    standby_router=False,
    webhook_processes=1,
    restart_when_stuck=False,
    sender_give_up_s=30.0,
)


def _outcome(report: FaultReport) -> dict[str, object]:
    return {
        "lost": report.lost,
        "duplicated": report.duplicated,
        "double assignments": report.double_assignments,
        "needed restart": report.needed_restart,
    }


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("postgres", id="postgres-stopped-immediately"),
        pytest.param("rabbitmq", id="rabbitmq-killed"),
    ],
)
async def test_an_outage_under_load_loses_no_accepted_message_and_needs_no_restart(
    fault: str, tmp_path: Path
) -> None:
    report = await run_fault(fault, PLAN, tmp_path)

    summary = f"\n{table([report])}\nanswers {report.answers}; dead-letter queues {report.dead_letter_queues}"
    assert report.accepted_messages > 0, summary
    assert _outcome(report) == {
        "lost": 0,
        "duplicated": 0,
        "double assignments": 0,
        "needed restart": False,
    }, summary
