"""The benchmark harness: percentiles, summaries, ratios against ceilings, and tables."""

from __future__ import annotations

import pytest

from bench.harness import Results, format_table, format_value, percentile, rate, summarize


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_percentile_does_not_depend_on_input_order() -> None:
    assert percentile([9, 1, 5, 3, 7], 25) == 3.0


def test_percentile_0_and_100_are_the_extremes() -> None:
    values = [0.004, 0.001, 0.010, 0.002]
    assert (percentile(values, 0), percentile(values, 100)) == (0.001, 0.010)


def test_p99_of_a_hundred_values_lies_between_the_two_largest() -> None:
    assert percentile([float(i) for i in range(1, 101)], 99) == pytest.approx(99.01)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_outside_0_to_100_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_reports_p50_p99_max_and_mean() -> None:
    summary = summarize([0.001] * 98 + [0.1, 0.2])
    assert (summary.count, summary.p50, summary.max) == (100, 0.001, 0.2)
    assert summary.mean == pytest.approx(0.00398)
    assert 0.001 < summary.p99 < 0.2


def test_summary_in_milliseconds_for_reports() -> None:
    assert summarize([0.0015]).as_ms()["p50_ms"] == 1.5


def test_rate_of_no_time_is_zero_rather_than_a_division_error() -> None:
    assert (rate(10, 0.0), rate(10, 2.0)) == (0.0, 5.0)


def test_a_rate_is_compared_with_its_ceiling_as_a_fraction() -> None:
    results = Results()
    results.add("ceilings", "raw", "raw publish", 2000, "msg/s")
    ours = results.add("transport", "ours", "our publish", 1500, "msg/s", ceiling="raw")
    assert results.ratio(ours) == 0.75


def test_a_latency_ratio_is_the_fraction_of_the_ceiling_attained_too() -> None:
    results = Results()
    results.add("ceilings", "raw.p50", "raw p50", 2.0, "ms", higher_is_better=False)
    ours = results.add(
        "transport", "ours.p50", "our p50", 4.0, "ms", ceiling="raw.p50", higher_is_better=False
    )
    assert results.ratio(ours) == 0.5


def test_a_figure_whose_ceiling_was_not_measured_has_no_ratio() -> None:
    results = Results()
    ours = results.add("stripped", "ours", "our rate", 100, "req/s", ceiling="not.measured")
    assert results.ratio(ours) is None


def test_recording_the_same_figure_twice_is_an_error() -> None:
    results = Results()
    results.add("ceilings", "raw", "raw publish", 1, "msg/s")
    with pytest.raises(ValueError):
        results.add("ceilings", "raw", "raw publish", 2, "msg/s")


def test_a_benchmark_table_shows_figure_ceiling_and_ratio() -> None:
    results = Results()
    results.add("ceilings", "raw", "raw publish", 2000, "msg/s")
    results.add("transport", "ours", "our publish", 1500, "msg/s", ceiling="raw")
    lines = results.table("transport").splitlines()
    assert lines[0].split() == ["measure", "figure", "ceiling", "(same", "run)", "ratio"]
    assert lines[2] == "our publish  1,500 msg/s  2,000 msg/s (raw publish)   0.75"


def test_plain_table_aligns_the_first_column_left_and_the_others_right() -> None:
    table = format_table(["name", "n"], [["a", "1"], ["bbb", "100"]])
    assert table.splitlines() == ["name    n", "----  ---", "a       1", "bbb   100"]


def test_markdown_table_has_a_header_rule_with_alignment() -> None:
    table = format_table(["name", "n"], [["a", "1"]], markdown=True)
    assert table.splitlines() == ["| name | n |", "|:-----|--:|", "| a    | 1 |"]


def test_a_row_with_the_wrong_number_of_cells_is_an_error() -> None:
    with pytest.raises(ValueError):
        format_table(["a", "b"], [["only one"]])


def test_values_are_printed_with_thousands_separators_or_significant_decimals() -> None:
    assert [format_value(12345.6, "msg/s"), format_value(4.376, "ms"), format_value(0.0514, "ms")] == [
        "12,346 msg/s",
        "4.38 ms",
        "0.0514 ms",
    ]
