"""The simulator (the production policy on a virtual clock) agrees with queueing theory.

Each check asks the theoretical value to lie inside the simulator's own 99% confidence interval
(Student t over independent seeds), and the interval to be narrow enough to mean something.
Seeds are fixed, so a run is reproducible to the last digit.
"""

from __future__ import annotations

from router.simulation import Estimate, Scenario, Summary, default_jobs, erlang_a, erlang_c, simulate
from router.simulation.scenario import AgentGroupSpec, QueueSpec
from router.simulation.theory import ErlangC
from tests.unit.simulation.scenarios import CHAT, exponential, single_skill

LEVEL = 0.99


def run(scenario: Scenario) -> Summary:
    """All seeds, spread over the machine's cores (the figures do not depend on it)."""
    return simulate(scenario, jobs=default_jobs())


def assert_agrees(value: Estimate, theory: float, *, within: float, name: str) -> None:
    """Theory inside the 99% interval, and the interval's half-width at most ``within``."""
    wide = value.at_level(LEVEL)
    assert wide.halfwidth is not None
    assert wide.contains(theory), f"{name}: theory {theory:.4f} outside {wide.low:.4f} … {wide.high:.4f}"
    assert wide.halfwidth <= within, f"{name}: ±{wide.halfwidth:.4f} is too wide to tell"


def check_erlang_c(summary: Summary, theory: ErlangC) -> None:
    figures = summary.queues["ventas"]
    assert_agrees(figures.p_wait, theory.p_wait, within=0.05, name="P(wait)")
    assert_agrees(figures.asa_s, theory.asa, within=0.3 * theory.asa, name="ASA")
    for threshold in (20.0, 60.0):
        key = f"{threshold:g}"
        assert_agrees(figures.sl[key], theory.service_level(threshold), within=0.05, name=f"SL {key}")
    assert_agrees(figures.occupancy, theory.occupancy, within=0.015, name="occupancy")
    assert figures.abandoned.mean == 0


def test_five_single_chat_agents_behave_as_erlang_c() -> None:
    scenario = single_skill(agents=5, per_hour=60, handle_s=240)  # 4 Erlangs on 5 servers
    check_erlang_c(run(scenario), erlang_c(5, 60 / 3600, 1 / 240))


def test_twenty_agents_at_85_percent_behave_as_erlang_c() -> None:
    scenario = single_skill(agents=20, per_hour=255, handle_s=240, contacts=12_000)
    check_erlang_c(run(scenario), erlang_c(20, 255 / 3600, 1 / 240))


def test_agents_with_three_whatsapp_slots_are_erlang_c_on_agents_times_slots() -> None:
    # 6 agents × 3 concurrent chats = 18 servers; 15 Erlangs of 6-minute (per slot) conversations.
    scenario = single_skill(agents=6, slots=3, per_hour=150, handle_s=360, contacts=12_000)
    check_erlang_c(run(scenario), erlang_c(18, 150 / 3600, 1 / 360))


def test_impatient_customers_abandon_as_erlang_a_predicts() -> None:
    # 10 agents, 10 Erlangs offered (unstable without abandonment), patience 2 minutes.
    scenario = single_skill(agents=10, per_hour=150, handle_s=240, patience_s=120)
    figures = run(scenario).queues["ventas"]
    theory = erlang_a(10, 150 / 3600, 1 / 240, 1 / 120)
    assert_agrees(figures.p_abandon, theory.p_abandon, within=0.05, name="P(abandon)")
    assert_agrees(figures.p_wait, theory.p_wait, within=0.05, name="P(wait)")
    assert_agrees(figures.asa_s, theory.asa, within=0.3 * theory.asa, name="ASA")
    assert_agrees(figures.occupancy, theory.occupancy, within=0.015, name="occupancy")


def test_a_multi_skill_centre_lands_between_the_pooled_and_the_split_systems() -> None:
    # Two queues of 4 Erlangs each; 3 specialists per queue and 4 generalists (10 agents in all).
    base = single_skill(agents=1, per_hour=60, handle_s=240, contacts=12_000)
    queues = (
        QueueSpec(
            name="ventas",
            skills={"ventas": 1},
            channel=CHAT,
            arrivals_per_hour=(60,),
            handle_time=exponential(240),
        ),
        QueueSpec(
            name="soporte",
            skills={"soporte": 1},
            channel=CHAT,
            arrivals_per_hour=(60,),
            handle_time=exponential(240),
        ),
    )
    agents = (
        AgentGroupSpec(group="ventas", count=3, skills={"ventas": 5}, capacity={CHAT: 1}),
        AgentGroupSpec(group="soporte", count=3, skills={"soporte": 5}, capacity={CHAT: 1}),
        AgentGroupSpec(group="generalistas", count=4, skills={"ventas": 5, "soporte": 5}, capacity={CHAT: 1}),
    )
    scenario = Scenario(run=base.run, queues=queues, agents=agents, policy=base.policy, thresholds_s=(20.0,))
    overall = run(scenario).overall
    pooled = erlang_c(10, 120 / 3600, 1 / 240)  # every agent takes every contact
    split = erlang_c(5, 60 / 3600, 1 / 240)  # the generalists divided, each half serving one queue
    asa = overall.asa_s.at_level(LEVEL)
    sl = overall.sl["20"].at_level(LEVEL)
    assert asa.low is not None and asa.high is not None and sl.low is not None and sl.high is not None
    assert pooled.asa < asa.low and asa.high < split.asa, (pooled.asa, asa, split.asa)
    assert split.service_level(20) < sl.low and sl.high < pooled.service_level(20)
