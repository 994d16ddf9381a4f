"""Typed application keys for shared state."""

from __future__ import annotations

from aiohttp import web

from centralita.followups import FollowUpScheduler
from centralita.ingress import Ingress
from centralita.outbound import OutboundWorker
from centralita.pipeline.worker import Pipeline
from centralita.runtime import Runtime
from centralita.surveys import SurveySender

__all__ = ["FOLLOWUPS", "INGRESS", "OUTBOUND", "PIPELINE", "RUNTIME", "SURVEYS"]

RUNTIME = web.AppKey("runtime", Runtime)
INGRESS = web.AppKey("ingress", Ingress)
PIPELINE = web.AppKey("pipeline", Pipeline)
OUTBOUND = web.AppKey("outbound", OutboundWorker)
FOLLOWUPS = web.AppKey("followups", FollowUpScheduler)
SURVEYS = web.AppKey("surveys", SurveySender)
