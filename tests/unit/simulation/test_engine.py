"""The engine plays the world around the production router: arrivals, acceptance, handling,
abandonment, wrap-up — and tallies what the router decided."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import InvalidInput
from router.simulation import (
    Distribution,
    Kind,
    RunSpec,
    parse_scenario,
    run_once,
    simulate,
)
from tests.unit.simulation.scenarios import single_skill


def test_a_seed_reproduces_a_run_to_the_last_digit() -> None:
    scenario = single_skill(agents=3, per_hour=40, handle_s=240, contacts=2_000, warmup=100)
    first, second = run_once(scenario, 7), run_once(scenario, 7)
    assert (first.wait_sum, first.within, first.busy) == (second.wait_sum, second.within, second.busy)
    assert run_once(scenario, 8).wait_sum != first.wait_sum


def test_every_measured_contact_is_answered_or_abandoned() -> None:
    scenario = single_skill(agents=3, per_hour=60, handle_s=200, patience_s=60, contacts=3_000, warmup=300)
    counts = run_once(scenario, 1)
    assert counts.offered == [3_000]
    assert counts.answered[0] + counts.abandoned[0] == 3_000
    assert counts.abandoned[0] > 0
    assert counts.contacts_simulated >= 3_300


def test_with_idle_agents_everyone_is_answered_after_the_accept_delay() -> None:
    scenario = single_skill(
        agents=50, per_hour=60, handle_s=60, contacts=500, warmup=0, seeds=2, accept_delay_s=4
    )
    figures = simulate(scenario).queues["ventas"]
    assert figures.asa_s.mean == pytest.approx(4.0)
    assert figures.p_wait.mean == 0.0
    assert figures.sl["20"].mean == 1.0


def test_wrap_up_keeps_agents_from_new_contacts_and_lengthens_the_wait() -> None:
    base = single_skill(agents=4, per_hour=45, handle_s=240, contacts=3_000, warmup=300, seeds=3)
    with_wrap = single_skill(
        agents=4, per_hour=45, handle_s=240, contacts=3_000, warmup=300, seeds=3, wrap_up_s=60
    )
    assert simulate(with_wrap).overall.asa_s.mean > 2 * simulate(base).overall.asa_s.mean


def test_occupancy_is_the_offered_load_whatever_the_handle_time_distribution() -> None:
    lognormal = Distribution(Kind.LOGNORMAL, 300.0, cv=0.5)
    scenario = single_skill(agents=10, per_hour=60, handle_s=300, handle=lognormal, contacts=4_000, seeds=4)
    occupancy = simulate(scenario).overall.occupancy  # 5 Erlangs on 10 agents
    assert occupancy.mean == pytest.approx(0.5, abs=0.03)


def test_a_day_run_counts_each_hour_and_nothing_in_an_hour_without_arrivals() -> None:
    rates = ", ".join("0" if h < 6 else "30" for h in range(24))
    scenario = parse_scenario(
        f"""
run: {{hours: 24, seeds: 2}}
queues:
  - {{name: q, skills: {{a: 1}}, channel: chat, arrivals_per_hour: [{rates}],
      handle_time: {{dist: exponential, mean_s: 120}}}}
agents:
  - {{group: g, count: 3, skills: {{a: 1}}, capacity: {{chat: 1}}}}
"""
    )
    summary = simulate(scenario)
    assert len(summary.by_hour) == 24
    assert all(hour.offered.mean == 0 for hour in summary.by_hour[:6])
    assert summary.by_hour[12].offered.mean > 10
    assert summary.overall.offered.mean == pytest.approx(18 * 30, rel=0.2)
    assert summary.overall.answered.mean == summary.overall.offered.mean


def test_a_queue_only_reachable_by_an_empty_group_is_refused_before_running() -> None:
    scenario = single_skill(agents=1, per_hour=10, handle_s=60).with_group_count("agentes", 0)
    with pytest.raises(InvalidInput, match="never abandon"):
        run_once(scenario, 1)


def test_parallel_seeds_give_the_same_figures_as_sequential_ones() -> None:
    scenario = single_skill(agents=3, per_hour=40, handle_s=240, contacts=1_500, warmup=100, seeds=2)
    assert simulate(scenario, jobs=2).to_dict() == simulate(scenario, jobs=1).to_dict()


def test_seeds_replicate_independently_from_the_base_seed() -> None:
    scenario = single_skill(agents=3, per_hour=40, handle_s=240, contacts=1_000, warmup=100, seeds=3)
    shifted = replace(scenario, run=RunSpec(contacts=1_000, warmup_contacts=100, seeds=2, seed=2))
    assert simulate(shifted).overall.asa_s.mean == pytest.approx(
        (run_once(scenario, 2).wait_sum[0] / 1_000 + run_once(scenario, 3).wait_sum[0] / 1_000) / 2
    )
