"""The live router: feeds the policy (``router.policy``) from RabbitMQ and the database and
carries out its commands — one ``RouterService`` per workspace, started by ``RouterSupervisor``,
both given their dependencies as a ``RouterDeps`` by the composition root."""

from router.service.clock import AdvancingClock, ManualClock
from router.service.config import agent_profile, queue_config, router_config
from router.service.deps import RouterDeps
from router.service.service import BatchReport, RouterService
from router.service.stats import stats_to_dict
from router.service.supervisor import RouterSupervisor

__all__ = [
    "AdvancingClock",
    "BatchReport",
    "ManualClock",
    "RouterDeps",
    "RouterService",
    "RouterSupervisor",
    "agent_profile",
    "queue_config",
    "router_config",
    "stats_to_dict",
]
