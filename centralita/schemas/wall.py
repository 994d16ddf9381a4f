"""The supervisors' wall socket (``/ws/supervisor``): one model per frame, named by its ``type``.

Server → supervisor: ``wall`` (the snapshot sent on connect: queue statistics, agents, the latest
alerts), then ``queue_stats`` and ``agents`` whenever they change, ``alert`` for each new alert,
``pong`` and ``error``.  Supervisor → server: ``ping``.  Every frame carries the token's own
workspace only.  The bodies are the REST API's models (``GET /api/queues/stats``,
``GET /api/agents``, ``GET /api/alerts``), so a wall reads the same shapes either way.

The frames' JSON Schema is published at ``docs/wall.schema.json``; a unit test fails when the
committed file differs — regenerate it with ``write_wall_json_schema("docs/wall.schema.json")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from centralita.schemas.agents import Agent
from centralita.schemas.alerts import Alert
from centralita.schemas.queues import QueueStatsList
from centralita.schemas.ws import ErrorFrame, PingFrame, PongFrame

__all__ = [
    "AgentsFrame",
    "AlertFrame",
    "QueueStatsFrame",
    "WallClientFrame",
    "WallFrame",
    "WallServerFrame",
    "parse_wall_client_frame",
    "parse_wall_server_frame",
    "render_wall_json_schema",
    "wall_json_schema",
    "write_wall_json_schema",
]


class _Sent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class WallFrame(_Sent):
    """The snapshot a wall gets when it connects."""

    type: Literal["wall"] = "wall"
    queues: QueueStatsList
    agents: list[Agent]
    alerts: list[Alert] = Field(description="The latest alerts, newest first.")


class QueueStatsFrame(_Sent):
    """The queues' figures changed."""

    type: Literal["queue_stats"] = "queue_stats"
    queues: QueueStatsList


class AgentsFrame(_Sent):
    """An agent's presence, load or offers changed: every agent, as GET /api/agents lists them."""

    type: Literal["agents"] = "agents"
    agents: list[Agent]


class AlertFrame(_Sent):
    """A new alert (an SLA breach)."""

    type: Literal["alert"] = "alert"
    alert: Alert


WallServerFrame: TypeAlias = Annotated[
    WallFrame | QueueStatsFrame | AgentsFrame | AlertFrame | PongFrame | ErrorFrame,
    Field(discriminator="type"),
]
WallClientFrame: TypeAlias = Annotated[PingFrame, Field(discriminator="type")]

_SERVER: TypeAdapter[WallServerFrame] = TypeAdapter(WallServerFrame)
_CLIENT: TypeAdapter[WallClientFrame] = TypeAdapter(WallClientFrame)


def parse_wall_server_frame(text: str | bytes) -> WallServerFrame:
    """A frame the server sent, as its model (what a client, and the e2e suite, reads)."""
    return _SERVER.validate_json(text)


def parse_wall_client_frame(data: object) -> PingFrame:
    """A supervisor's decoded frame as its model (or ``ValidationError``)."""
    return _CLIENT.validate_python(data)


def wall_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the wall's frames."""
    server = _SERVER.json_schema(mode="serialization", ref_template="#/$defs/{model}")
    client = _CLIENT.json_schema(mode="validation", ref_template="#/$defs/{model}")
    defs = {**server.pop("$defs"), **client.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Centralita supervisor WebSocket frames (/ws/supervisor)",
        "description": (
            "One JSON object per text frame. WallServerFrame: what the server sends a supervisor's "
            "wall; WallClientFrame: what the wall may send."
        ),
        "$defs": dict(sorted({**defs, "WallServerFrame": server, "WallClientFrame": client}.items())),
        "oneOf": [{"$ref": "#/$defs/WallServerFrame"}, {"$ref": "#/$defs/WallClientFrame"}],
    }


def render_wall_json_schema() -> str:
    return json.dumps(wall_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_wall_json_schema(path: str | Path) -> None:
    """Write the schema to ``path`` (normally ``docs/wall.schema.json``)."""
    Path(path).write_text(render_wall_json_schema(), encoding="utf-8")
