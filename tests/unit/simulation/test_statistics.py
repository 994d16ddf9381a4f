"""Confidence intervals over replications: Student-t quantiles and the estimate."""

from __future__ import annotations

import pytest

from router.simulation.statistics import estimate, student_t_cdf, student_t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 1, 12.7062), (0.975, 9, 2.2622), (0.995, 9, 3.2498), (0.975, 30, 2.0423), (0.95, 4, 2.1318)],
)
def test_student_t_quantiles_match_the_tables(p: float, df: int, expected: float) -> None:
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


def test_the_t_distribution_is_symmetric() -> None:
    assert student_t_quantile(0.025, 5) == pytest.approx(-student_t_quantile(0.975, 5))
    assert student_t_cdf(0.0, 7) == pytest.approx(0.5)


def test_an_estimate_is_the_mean_with_a_t_interval() -> None:
    result = estimate([1.0, 2.0, 3.0, 4.0])
    # s = 1.291, s/√n = 0.6455, t(0.975, 3) = 3.1824
    assert result.mean == 2.5
    assert result.halfwidth == pytest.approx(3.1824 * 0.6455, rel=1e-3)
    assert result.contains(4.5) and not result.contains(4.6)


def test_a_single_replication_has_no_interval() -> None:
    result = estimate([3.0])
    assert result.halfwidth is None and result.low is None and not result.contains(3.0)


def test_an_interval_widens_at_a_higher_level() -> None:
    result = estimate([1.0, 2.0, 4.0, 3.0, 5.0])
    wider = result.at_level(0.99)
    assert wider.halfwidth is not None and result.halfwidth is not None
    assert wider.halfwidth / result.halfwidth == pytest.approx(4.6041 / 2.7764, rel=1e-4)
