"""Erlang B / C / A against published values and against each other's limits."""

from __future__ import annotations

import math

import pytest

from core.errors import InvalidInput
from router.simulation.theory import erlang_a, erlang_b, erlang_c, servers_for_service_level


def test_erlang_b_matches_the_published_blocking_tables() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(5, 2.0) == pytest.approx(0.0367, abs=5e-5)
    assert erlang_b(10, 10.0) == pytest.approx(0.2146, abs=5e-5)
    assert erlang_b(20, 15.0) == pytest.approx(0.0456, abs=5e-5)


def test_erlang_c_matches_the_call_centre_helper_worked_example() -> None:
    # 100 calls in 30 minutes, 180 s handle time (10 Erlangs), 14 agents: Pw 17.4%, 88.8% in 20 s, ASA 7.8 s.
    system = erlang_c(14, 100 / 1800, 1 / 180)
    assert system.load == pytest.approx(10.0)
    assert system.p_wait == pytest.approx(0.174, abs=5e-4)
    assert system.service_level(20) == pytest.approx(0.888, abs=5e-4)
    assert system.asa == pytest.approx(7.8, abs=0.05)


def test_erlang_c_with_ten_erlangs_on_eleven_agents_waits_68_percent_of_the_time() -> None:
    assert erlang_c(11, 10.0, 1.0).p_wait == pytest.approx(0.6821, abs=5e-5)


def test_erlang_c_reduces_to_the_closed_forms_of_one_and_two_servers() -> None:
    assert erlang_c(1, 0.7, 1.0).p_wait == pytest.approx(0.7)
    assert erlang_c(1, 0.7, 1.0).asa == pytest.approx(0.7 / (1 - 0.7))
    rho = 0.6
    assert erlang_c(2, 2 * rho, 1.0).p_wait == pytest.approx(2 * rho**2 / (1 + rho))


def test_erlang_c_refuses_an_unstable_system() -> None:
    with pytest.raises(InvalidInput, match="unstable"):
        erlang_c(5, 5.0, 1.0)


def test_the_fewest_agents_for_80_in_20_of_the_worked_example_is_fourteen() -> None:
    # 10 Erlangs of 180 s calls: 13 agents answer 79.6% within 20 s, 14 answer 88.8%.
    assert erlang_c(13, 100 / 1800, 1 / 180).service_level(20) == pytest.approx(0.796, abs=5e-4)
    assert servers_for_service_level(100 / 1800, 1 / 180, 20, 0.8) == 14


def test_erlang_a_with_almost_infinite_patience_is_erlang_c() -> None:
    a, c = erlang_a(11, 10.0, 1.0, 1e-9), erlang_c(11, 10.0, 1.0)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.asa == pytest.approx(c.asa, rel=1e-4)
    assert a.p_abandon == pytest.approx(0.0, abs=1e-6)


def test_erlang_a_with_patience_equal_to_handle_time_is_an_infinite_server_system() -> None:
    # θ = μ: the number in system is Poisson(a), whatever the number of servers.
    load, servers = 4.0, 5
    system = erlang_a(servers, load, 1.0, 1.0)
    poisson = [math.exp(-load) * load**n / math.factorial(n) for n in range(80)]
    assert system.p_wait == pytest.approx(sum(poisson[servers:]), rel=1e-9)
    queue = sum((n - servers) * p for n, p in enumerate(poisson) if n > servers)
    assert system.p_abandon == pytest.approx(queue / load, rel=1e-9)  # θ·E[Q] / λ


def test_erlang_a_abandonment_agrees_with_littles_law() -> None:
    system = erlang_a(20, 20 / 60, 1 / 60, 1 / 90)  # overloaded: 20 Erlangs on 20 agents
    assert system.p_abandon == pytest.approx(system.mean_queue_length * (1 / 90) / (20 / 60), rel=1e-9)
    assert 0 < system.p_abandon < 0.2
    assert system.asa < system.mean_wait_all / (1 - system.p_abandon)  # the patient are served sooner


def test_erlang_a_matches_the_single_server_chain_solved_by_hand() -> None:
    # M/M/1+M with λ = μ = θ = 1: π_n ∝ 1/n! (birth 1, death n), so P(wait) = 1 − e^−1.
    system = erlang_a(1, 1.0, 1.0, 1.0)
    assert system.p_wait == pytest.approx(1 - math.exp(-1), rel=1e-9)
