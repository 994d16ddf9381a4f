"""Scenario files: the schema of docs/simulation.md, every problem reported at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from router.policy import ExplainDetail, Selection
from router.simulation import Kind, load_scenario, parse_scenario, stability_warnings

ROOT = Path(__file__).resolve().parents[3]

MINIMAL = """\
run: {warmup_contacts: 200, contacts: 2000, seeds: 3}
queues:
  - name: es-ventas
    skills: {ventas: 1}
    channel: whatsapp
    arrivals_per_hour: 300
    handle_time: {dist: exponential, mean_s: 240}
agents:
  - group: generalistas
    count: 20
    skills: {ventas: 5, soporte: 5}
    capacity: {whatsapp: 3}
"""


def problems_of(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_scenario(text, "s.yaml")
    return caught.value.message


def test_the_issue_example_loads_with_its_policy_mapped_onto_the_router_config() -> None:
    scenario = parse_scenario(
        MINIMAL
        + "service_level_thresholds_s: [60, 20]\n"
        + "policy: {selection: least_loaded, accept_delay_s: 2, wrap_up_s: 15,"
        + " max_pending_offers_per_agent: 2}\n"
    )
    assert scenario.run.contacts == 2000 and scenario.run.warmup_contacts == 200 and scenario.run.seeds == 3
    assert scenario.thresholds_s == (20.0, 60.0)
    assert scenario.queues[0].arrivals_per_hour == (300.0,)
    assert scenario.queues[0].handle_time.kind is Kind.EXPONENTIAL
    router = scenario.policy.router
    assert router.selection is Selection.LEAST_LOADED and router.wrap_up_s == 15
    assert router.max_pending_offers_per_agent == 2
    assert router.explain is ExplainDetail.MINIMAL  # a simulation never records full explanations
    assert scenario.policy.accept_delay_s == 2


def test_a_day_run_takes_24_hourly_rates_and_lognormal_handle_times() -> None:
    rates = ", ".join(str(h * 10) for h in range(24))
    text = MINIMAL.replace("run: {warmup_contacts: 200, contacts: 2000, seeds: 3}", "run: {hours: 24}")
    text = text.replace("arrivals_per_hour: 300", f"arrivals_per_hour: [{rates}]")
    text = text.replace("{dist: exponential, mean_s: 240}", "{dist: lognormal, mean_s: 240, cv: 0.5}")
    scenario = parse_scenario(text)
    assert scenario.run.mode == "hours" and scenario.run.hours == 24 and scenario.run.contacts is None
    assert len(scenario.queues[0].arrivals_per_hour) == 24
    assert scenario.queues[0].handle_time.std_s == pytest.approx(120)


def test_an_unknown_key_is_reported_at_its_line_with_a_suggestion() -> None:
    message = problems_of(MINIMAL.replace("    channel: whatsapp", "    chanel: whatsapp"))
    assert "s.yaml:5:5: queues[0].chanel: unknown key 'chanel' (did you mean 'channel'?)" in message
    assert "s.yaml:3:5: queues[0]: missing channel" in message


def test_every_problem_is_listed_in_file_order() -> None:
    text = MINIMAL.replace("mean_s: 240}", "mean_s: -3}").replace("count: 20", "count: many")
    message = problems_of(text)
    lines = message.splitlines()
    assert lines[0] == "2 problems in the scenario:"
    assert lines[1].startswith("s.yaml:7:") and "mean_s: must be positive" in lines[1]
    assert lines[2].startswith("s.yaml:10:") and "count: expected an integer" in lines[2]


def test_a_lognormal_without_its_coefficient_of_variation_is_refused() -> None:
    message = problems_of(
        MINIMAL.replace("{dist: exponential, mean_s: 240}", "{dist: lognormal, mean_s: 240}")
    )
    assert "needs cv" in message


def test_a_list_of_rates_must_cover_the_24_hours() -> None:
    assert "24 entries" in problems_of(
        MINIMAL.replace("arrivals_per_hour: 300", "arrivals_per_hour: [1, 2, 3]")
    )


def test_a_queue_nobody_can_serve_is_refused() -> None:
    message = problems_of(MINIMAL.replace("skills: {ventas: 1}", "skills: {ventas: 9}"))
    assert "no agent can serve queue 'es-ventas'" in message


def test_an_unknown_selection_suggests_the_right_one() -> None:
    message = problems_of(MINIMAL + "policy: {selection: longest-idle}\n")
    assert "did you mean 'longest_idle'" in message


def test_router_settings_are_validated_by_the_router_config_itself() -> None:
    assert "offer_timeout_s must be positive" in problems_of(MINIMAL + "policy: {offer_timeout_s: 0}\n")


def test_an_accept_delay_longer_than_the_offer_timeout_is_refused() -> None:
    message = problems_of(MINIMAL + "policy: {accept_delay_s: 40, offer_timeout_s: 30}\n")
    assert "never answer before the offer times out" in message


def test_yaml_syntax_errors_are_located() -> None:
    assert problems_of("run: {contacts: 10\nqueues: [").startswith("s.yaml:")


def test_an_overloaded_queue_without_patience_is_warned_about() -> None:
    scenario = parse_scenario(MINIMAL.replace("count: 20", "count: 6"))  # 20 Erlangs on 18 slots
    assert any("grows without bound" in w for w in stability_warnings(scenario))
    assert stability_warnings(parse_scenario(MINIMAL)) == []


def test_a_missing_file_is_one_clear_line() -> None:
    with pytest.raises(InvalidInput, match="no such scenario file"):
        load_scenario("does/not/exist.yaml")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples" / "simulation").glob("*.yaml")), ids=lambda p: p.name
)
def test_the_shipped_examples_load(path: Path) -> None:
    assert load_scenario(path).queues
