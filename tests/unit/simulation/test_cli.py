"""``centralita simulate``: the table, ``--json``, ``--seeds``, ``--sweep`` and ``--plot``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from centralita.cli import main

SCENARIO = """\
run: {warmup_contacts: 100, contacts: 1500, seeds: 3}
service_level_thresholds_s: [20, 60]
service_level_target: {threshold_s: 20, fraction: 0.8}
queues:
  - name: es-ventas
    skills: {ventas: 1}
    channel: whatsapp
    arrivals_per_hour: 90
    handle_time: {dist: exponential, mean_s: 240}
    patience: {dist: exponential, mean_s: 300}
agents:
  - group: generalistas
    count: 3
    skills: {ventas: 5}
    capacity: {whatsapp: 3}
policy: {selection: longest_idle, accept_delay_s: 0, wrap_up_s: 0}
"""

METRICS = {"offered", "answered", "abandoned", "asa_s", "p_wait", "sl", "p_abandon", "occupancy"}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def test_json_prints_every_metric_per_queue_and_overall_with_its_interval(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario), "--json", "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == 3 and report["mode"] == "contacts"
    assert set(report["overall"]) == METRICS
    assert set(report["queues"]["es-ventas"]) == METRICS
    assert set(report["overall"]["sl"]) == {"20", "60"}
    offered = report["queues"]["es-ventas"]["offered"]
    assert offered["mean"] == 1500 and offered["ci95"] == [1500, 1500]
    low, high = report["overall"]["asa_s"]["ci95"]
    assert low <= report["overall"]["asa_s"]["mean"] <= high
    assert 0 < report["agent_groups"]["generalistas"]["occupancy"]["mean"] < 1


def test_seeds_on_the_command_line_override_the_scenario(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario), "--json", "--seeds", "1", "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == 1 and report["overall"]["asa_s"]["ci95"] is None


def test_the_table_names_the_queues_and_groups(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert "es-ventas" in captured.out and "generalistas" in captured.out and "SL 20s" in captured.out
    assert captured.err == ""  # no progress bar when stderr is not a terminal


def test_progress_is_drawn_on_stderr_when_asked(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--jobs", "1", "--seeds", "1", "--progress"]) == 0
    assert "100.0%" in capsys.readouterr().err


def test_a_sweep_finds_the_smallest_team_for_the_target_and_plots_the_curve(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "staffing.png"
    code = main(
        [
            "simulate",
            str(scenario),
            "--json",
            "--seeds",
            "2",
            "--sweep",
            "agents=generalistas:2..4",
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["agents"] for p in report["points"]] == [2, 3, 4]
    sl = [p["overall"]["sl"]["20"]["mean"] for p in report["points"]]
    assert sl == sorted(sl)  # more agents, better service (same contacts in every run)
    assert report["recommended"] in (2, 3, 4)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_a_day_run_plots_service_level_and_asa_by_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "day.yaml"
    path.write_text(
        SCENARIO.replace("run: {warmup_contacts: 100, contacts: 1500, seeds: 3}", "run: {hours: 6, seeds: 2}")
    )
    plot = tmp_path / "hours.png"
    assert main(["simulate", str(path), "--json", "--plot", str(plot)]) == 0
    assert len(json.loads(capsys.readouterr().out)["by_hour"]) == 6
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_fails_with_one_line(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    code = main(
        [
            "simulate",
            str(scenario),
            "--seeds",
            "1",
            "--sweep",
            "agents=generalistas:3..3",
            "--plot",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("centralita: error: --plot needs matplotlib: pip install")
    assert "\n" not in err


@pytest.mark.parametrize(
    "spec", ["agents=generalistas", "agentes=generalistas:1..3", "agents=generalistas:5..2"]
)
def test_a_malformed_sweep_is_refused(scenario: Path, spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--sweep", spec]) == 2
    assert capsys.readouterr().err.startswith("centralita: error: --sweep")


def test_a_sweep_of_an_unknown_group_suggests_the_right_one(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario), "--sweep", "agents=generalista:1..3"]) == 2
    assert "did you mean 'generalistas'" in capsys.readouterr().err


def test_an_invalid_scenario_exits_2_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("count: 3", "count: -1"))
    assert main(["simulate", str(path)]) == 2
    assert f"{path}:13:12: agents[0].count: must be at least 0" in capsys.readouterr().err
