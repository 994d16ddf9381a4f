"""Publish router inputs (``router.wire``) to a workspace's ``route.<workspace_id>`` queue.

The API and the follow-up scheduler tell the live router what happened (a transfer, a forced
assignment, a close, a presence change, a nudge); the router does the routing and writes the
resulting state.  Each workspace's routing queue is declared once per process before its first
publish.  Publishing returns once the broker confirmed (``BrokerUnavailable`` otherwise: 503).
No aiohttp here: workers use it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from centralita.runtime import Runtime
from core.ids import WorkspaceId, new_id
from core.transport.protocol import Message
from core.transport.topology import ROUTE_EXCHANGE, route_queue, workspace_topology

__all__ = ["publish_router_inputs"]


async def publish_router_inputs(
    runtime: Runtime, workspace_id: WorkspaceId, inputs: Sequence[BaseModel]
) -> None:
    """Publish ``inputs`` (router wire models) to the workspace's router, confirmed."""
    if not inputs:
        return
    if workspace_id not in runtime.declared_workspaces:
        await runtime.transport.declare(workspace_topology(str(workspace_id)))
        runtime.declared_workspaces.add(workspace_id)
    await runtime.transport.publish(
        [
            Message(
                body=model.model_dump_json().encode(),
                exchange=ROUTE_EXCHANGE,
                routing_key=route_queue(str(workspace_id)),
                message_id=str(new_id()),
            )
            for model in inputs
        ]
    )
