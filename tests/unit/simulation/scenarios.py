"""Scenario builders for the simulation tests (plain ``Scenario`` values, no YAML)."""

from __future__ import annotations

from router.policy import ExplainDetail, RouterConfig
from router.simulation import (
    AgentGroupSpec,
    Distribution,
    Kind,
    PolicySpec,
    QueueSpec,
    RunSpec,
    Scenario,
)

CHAT = "whatsapp"


def exponential(mean_s: float) -> Distribution:
    return Distribution(Kind.EXPONENTIAL, mean_s)


def single_skill(
    *,
    agents: int,
    slots: int = 1,
    per_hour: float,
    handle_s: float,
    patience_s: float | None = None,
    contacts: int = 10_000,
    warmup: int = 1_000,
    seeds: int = 8,
    thresholds: tuple[float, ...] = (20.0, 60.0),
    accept_delay_s: float = 0.0,
    wrap_up_s: float = 0.0,
    handle: Distribution | None = None,
) -> Scenario:
    return Scenario(
        run=RunSpec(contacts=contacts, warmup_contacts=warmup, seeds=seeds),
        queues=(
            QueueSpec(
                name="ventas",
                skills={"ventas": 1},
                channel=CHAT,
                arrivals_per_hour=(per_hour,),
                handle_time=handle or exponential(handle_s),
                patience=None if patience_s is None else exponential(patience_s),
            ),
        ),
        agents=(AgentGroupSpec(group="agentes", count=agents, skills={"ventas": 5}, capacity={CHAT: slots}),),
        policy=PolicySpec(
            router=RouterConfig(explain=ExplainDetail.MINIMAL, ramp_period_s=0, wrap_up_s=wrap_up_s),
            accept_delay_s=accept_delay_s,
        ),
        thresholds_s=thresholds,
    )
