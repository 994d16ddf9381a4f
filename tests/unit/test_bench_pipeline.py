"""The pipeline benchmark runs the production pipeline on its own deliveries: a small run on
SQLite goes through (so a change to what the pipeline reads of a delivery cannot leave the
benchmark broken until someone runs it)."""

from __future__ import annotations

from pathlib import Path

from bench.pipeline import _measure
from tests.support.schema import migrated


async def test_a_small_run_of_the_pipeline_benchmark_stores_its_deliveries_and_counts_statements(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bench.db"
    await migrated(url)
    figures = await _measure(url, batch=10, count=30, run_id="t")
    assert figures["deliveries"] == 30
    assert 0 < figures["statements"] < 20
    assert sum(figures["kinds"].values()) == 30
