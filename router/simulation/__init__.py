"""What-if simulation: the production routing policy (``router.policy.RouterState``) driven by a
discrete-event clock with synthetic traffic, checked against queueing theory (``theory``).

    scenario = load_scenario("examples/simulation/whatsapp-80-20.yaml")
    summary = simulate(scenario, jobs=2)
    print(format_summary(summary))
"""

from router.simulation.distributions import Distribution, Kind, next_arrival
from router.simulation.engine import RunCounts, run_once
from router.simulation.report import format_summary, format_sweep
from router.simulation.runner import Sweep, SweepPoint, default_jobs, parse_sweep, simulate, sweep
from router.simulation.scenario import (
    AgentGroupSpec,
    PolicySpec,
    QueueSpec,
    RunSpec,
    Scenario,
    ServiceLevelTarget,
    load_scenario,
    parse_scenario,
    stability_warnings,
)
from router.simulation.statistics import Estimate, estimate, student_t_quantile
from router.simulation.summary import Figures, Summary, summarize, threshold_key
from router.simulation.theory import ErlangA, ErlangC, erlang_a, erlang_b, erlang_c, servers_for_service_level

__all__ = [
    "AgentGroupSpec",
    "Distribution",
    "ErlangA",
    "ErlangC",
    "Estimate",
    "Figures",
    "Kind",
    "PolicySpec",
    "QueueSpec",
    "RunCounts",
    "RunSpec",
    "Scenario",
    "ServiceLevelTarget",
    "Summary",
    "Sweep",
    "SweepPoint",
    "default_jobs",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "estimate",
    "format_summary",
    "format_sweep",
    "load_scenario",
    "next_arrival",
    "parse_scenario",
    "parse_sweep",
    "run_once",
    "servers_for_service_level",
    "simulate",
    "stability_warnings",
    "student_t_quantile",
    "summarize",
    "sweep",
    "threshold_key",
]
