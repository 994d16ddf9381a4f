"""The probes: ``/healthz`` (the process is alive) and ``/readyz`` (it can do its work now)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from core.supervise import WorkerHealth, WorkerState

__all__ = ["Health", "NotReady", "NotReadyError", "Readiness", "ReadinessChecks", "WorkerStatus"]


class Health(ResponseBody):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class ReadinessChecks(ResponseBody):
    """Each dependency: ``ok``, or what is wrong with it."""

    database: str = Field(examples=["ok"])
    broker: str = Field(examples=["ok"])
    workers: str = Field(description="``ok``, or each sick worker with its state and last error type.")
    consumers: str = Field(description="``ok``, or ``detached: <consumers>``.")


class WorkerStatus(ResponseBody):
    """A supervised worker of the process (pipeline lane, router, heartbeat)."""

    state: WorkerState
    since: IsoDateTime = Field(description="When it entered that state.")
    last_error: str | None = Field(description="The type of its last exception (never its text).")
    restarts: int

    @classmethod
    def of(cls, worker: WorkerHealth) -> WorkerStatus:
        return cls(
            state=worker.state, since=worker.since, last_error=worker.last_error, restarts=worker.restarts
        )


class Readiness(ResponseBody):
    """Whether the process can do its work now: dependencies, workers, consumers."""

    status: Literal["ready", "unavailable"]
    checks: ReadinessChecks
    workers: dict[str, WorkerStatus] = Field(description="Each worker of the process by name.")


class NotReadyError(ResponseBody):
    code: Literal["unavailable"] = "unavailable"
    message: str = Field(examples=["not ready: broker unreachable"])


class NotReady(Readiness):
    """503: what is down, in ``checks`` and, as an error, in ``error``."""

    status: Literal["unavailable"] = "unavailable"
    error: NotReadyError
