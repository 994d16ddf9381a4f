"""The agents' gateway: between an agent's WebSocket and the broker.

While an agent's socket is open the gateway consumes the agent's queue ``agent.<id>`` (declared
on connect; single active consumer, so a second tab takes over when the first closes) and hands
each ``AgentPush`` to the socket as one JSON text frame, acking it once written.  It tells the
workspace's router when the agent's first socket on this server opens and its last one closes
(``AgentConnection``; the grace period is the router's), and turns the agent's frames into
router inputs on ``route.<ws>``.  Every ``presence_renew_s`` it renews the presence lease of the
agents whose sockets it holds (``agent.presence_lease_until`` = now + ``presence_lease_s``; first
when the agent's first socket here opens, before the router hears of it): a gateway that dies
without closing its sockets stops renewing, and the router sets its agents offline once their
leases expire.  Every ``token_recheck_s`` it re-reads the tokens of the sockets it holds, in one
query, and closes those whose token was revoked or expired since (close code ``4401``, reason
``token revoked`` / ``token expired``), so a revoked agent is off within seconds — also when the
revocation came from another process (the CLI, another server).  The frames are the models of
``centralita.schemas.ws``:

- ``presence`` → ``PresenceInput``; ``offer_answer`` → ``OfferAnswer``; ``ping`` → ``pong``;
- a push becomes its frame (``offer``, ``offer_withdrawn``, ``assigned``, ``unassigned`` from
  the router; ``message`` and ``message_status`` from the pipeline, for the conversations the
  agent holds).

A malformed frame is answered with an ``error`` frame naming the field, and the socket stays
open.  Nothing here is specific to aiohttp: the socket is a ``send`` callable
(``centralita.web.ws`` holds the HTTP side).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from centralita.runtime import Runtime
from centralita.schemas.ws import (
    CLIENT_FRAME_TYPES,
    ErrorFrame,
    OfferAnswerFrame,
    PingFrame,
    PongFrame,
    PresenceFrame,
    frame_of_push,
    parse_client_frame,
)
from core.errors import BrokerUnavailable, DatabaseConflict, DatabaseUnavailable, Forbidden, InvalidInput
from core.ids import AgentId, WorkspaceId
from core.logging import get_logger
from core.transport.protocol import Consumer, Delivery, Message
from core.transport.topology import (
    ROUTE_EXCHANGE,
    agent_queue,
    agent_topology,
    route_queue,
    workspace_topology,
)
from router.wire import AgentConnection, OfferPush, decode_agent_push
from storage.routing import RoutingStore
from storage.tokens import Principal, Refusal, TokenStore

__all__ = ["TOKEN_REFUSED", "AgentGateway", "AgentSession", "Close", "Send"]

log = get_logger("centralita.gateway")

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[object]]
"""Close the socket with a code and a reason."""

TOKEN_REFUSED = 4401
"""The close code of a socket whose token was revoked or expired (4000–4999: the application's)."""


_EXPECTED = f"{', '.join(CLIENT_FRAME_TYPES[:-1])} or {CLIENT_FRAME_TYPES[-1]}"


def _invalid(exc: ValidationError, kind: object) -> InvalidInput:
    errors = exc.errors()
    if not errors:
        return InvalidInput("invalid frame", field="frame")
    first = errors[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return InvalidInput(f"unknown frame type {kind!r}; expected {_EXPECTED}", field="type")
    where = ".".join(str(part) for part in first["loc"][1:]) or None  # loc[0]: the frame's type
    if where == "accepted":
        return InvalidInput("accepted must be true or false", field="accepted")
    return InvalidInput(f"{where or 'frame'}: {first['msg']}", field=where)


class AgentSession:
    """One open socket of one agent."""

    def __init__(
        self, gateway: AgentGateway, principal: Principal, send: Send, close: Close | None = None
    ) -> None:
        if principal.agent_id is None:
            raise Forbidden("this socket is for agents: the token names no agent")
        self.gateway = gateway
        self.agent_id: AgentId = principal.agent_id
        self.workspace_id: WorkspaceId = principal.workspace_id
        self.token_id = principal.token_id
        self.send = send
        self.close_socket = close  # None: the gateway cannot close it (its token is not rechecked)
        self.refused: Refusal | None = None
        self.consumer: Consumer | None = None
        self.pushed = 0

    async def deliver(self, delivery: Delivery) -> None:
        """One push from ``agent.<id>`` to the socket; acked once written."""
        try:
            push = decode_agent_push(delivery.body)
            frame = frame_of_push(push)
        except ValidationError:
            frame = None
        if frame is None:  # not a push, or one no frame carries
            log.warning("gateway.push_malformed", agent_id=str(self.agent_id))
            await delivery.reject()
            return
        if isinstance(push, OfferPush) and push.expires_at <= self.gateway.runtime.clock():
            await delivery.ack()  # expired while nobody was connected: its withdrawal follows
            return
        await self.send(frame.model_dump_json())
        self.pushed += 1
        await delivery.ack()

    async def handle_text(self, text: str) -> PongFrame | ErrorFrame | None:
        """An agent's frame; returns the frame to answer with, if any."""
        try:
            frame = self._parse(text)
        except InvalidInput as exc:
            return ErrorFrame.of(exc)
        if isinstance(frame, PingFrame):
            return PongFrame()
        try:
            await self.gateway.to_router(self.workspace_id, frame.router_input(self.agent_id))
        except BrokerUnavailable as exc:
            return ErrorFrame.of(exc)
        log.info("gateway.frame", agent_id=str(self.agent_id), kind=frame.type)
        return None

    def _parse(self, text: str) -> PresenceFrame | OfferAnswerFrame | PingFrame:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput("a frame is one JSON object", field="frame") from exc
        if not isinstance(data, dict):
            raise InvalidInput("a frame is one JSON object", field="frame")
        try:
            return parse_client_frame(data)
        except ValidationError as exc:
            raise _invalid(exc, data.get("type")) from exc


class AgentGateway:
    """The sockets of this server, and their queues."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sessions: set[AgentSession] = set()
        self._open: dict[AgentId, int] = {}
        self._declared: set[str] = set()
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self.renewal: asyncio.Task[None] | None = None  # renews the leases while sockets are open
        self.recheck: asyncio.Task[None] | None = None  # re-reads the sockets' tokens

    async def prepare(self, principal: Principal) -> None:
        """Before the socket is accepted: the agent's queue and the router's exist (or raise)."""
        if principal.agent_id is None:
            raise Forbidden("this socket is for agents: the token names no agent")
        await self._declare(f"agent:{principal.agent_id}", agent_topology(str(principal.agent_id)))
        await self._declare(f"ws:{principal.workspace_id}", workspace_topology(str(principal.workspace_id)))

    async def open(self, principal: Principal, send: Send, close: Close | None = None) -> AgentSession:
        """The socket is open: start pushing to it, and tell the router the agent is connected.
        With ``close``, the socket's token is rechecked every ``token_recheck_s``."""
        session = AgentSession(self, principal, send, close)
        session.consumer = await self.runtime.transport.consume(
            agent_queue(str(session.agent_id)), session.deliver, prefetch=16
        )
        self.sessions.add(session)
        if close is not None and (self.recheck is None or self.recheck.done()):
            self.recheck = asyncio.get_running_loop().create_task(
                self._recheck_tokens(), name="gateway-token-recheck"
            )
        async with self._lock:
            first = self._open.get(session.agent_id, 0) == 0
            self._open[session.agent_id] = self._open.get(session.agent_id, 0) + 1
        if first:
            await self._renew_or_warn([session.agent_id])  # before the router hears of the agent
            if self.renewal is None or self.renewal.done():
                self.renewal = asyncio.get_running_loop().create_task(
                    self._renew_leases(), name="gateway-presence-leases"
                )
            try:
                await self.to_router(
                    session.workspace_id, AgentConnection(agent_id=session.agent_id, connected=True)
                )
            except BrokerUnavailable:
                # Undo the open: a consumer nobody closes would hold the agent's single-active
                # queue for a dead socket, and the agent's next socket would wait behind it.
                await self.close(session)
                raise
        log.info("gateway.connected", agent_id=str(session.agent_id), workspace_id=str(session.workspace_id))
        return session

    def closing(self, session: AgentSession) -> asyncio.Task[None]:
        """``close(session)`` as a task the gateway keeps until it is done (shield it from the
        cancellation of the socket's handler)."""
        task = asyncio.get_running_loop().create_task(self.close(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def wait_closed(self) -> None:
        """Until every socket's cleanup finished (the app's shutdown waits for it); then the
        leases are no longer renewed."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self.renewal is not None:
            self.renewal.cancel()
            await asyncio.gather(self.renewal, return_exceptions=True)
            self.renewal = None
        if self.recheck is not None:
            self.recheck.cancel()
            await asyncio.gather(self.recheck, return_exceptions=True)
            self.recheck = None

    async def renew_leases(self, agent_ids: list[AgentId]) -> None:
        """These agents' presence holds for another ``presence_lease_s`` (or DatabaseUnavailable,
        DatabaseConflict)."""
        until = self.runtime.clock() + timedelta(seconds=self.runtime.settings.presence_lease_s)
        async with self.runtime.database.transaction() as db:
            await RoutingStore(db).renew_leases(agent_ids, until)

    async def _renew_or_warn(self, agent_ids: list[AgentId]) -> None:
        try:
            await self.renew_leases(agent_ids)
        except (DatabaseUnavailable, DatabaseConflict) as exc:
            # Renewed again in presence_renew_s; a lease outlives a few missed renewals.
            log.warning("gateway.lease_not_renewed", agents=len(agent_ids), reason=exc.message)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.settings.presence_renew_s)
            if self._open:
                await self._renew_or_warn(list(self._open))

    async def recheck_tokens(self) -> list[AgentSession]:
        """Close the sockets whose token is refused now (revoked, expired, gone): one query for
        all of this gateway's sockets; the tokens in use get their last-used time (at most once
        per ``token_touch_s``).  Returns the sessions it is closing.  With the database unavailable
        the sockets stay open until a later check can read it (``gateway.tokens_not_rechecked``)."""
        held = [s for s in self.sessions if s.close_socket is not None and s.refused is None]
        if not held:
            return []
        now = self.runtime.clock()
        every = timedelta(seconds=self.runtime.settings.token_touch_s)
        try:
            async with self.runtime.database.session() as db:
                refused = await TokenStore(db).refusals({s.token_id for s in held}, now)
            in_use = {s.token_id for s in held} - set(refused)
            if in_use:
                async with self.runtime.database.transaction() as db:
                    await TokenStore(db).touch(in_use, now, every)
        except (DatabaseUnavailable, DatabaseConflict) as exc:
            log.warning("gateway.tokens_not_rechecked", sockets=len(held), reason=exc.message)
            return []
        closed = [s for s in held if s.token_id in refused]
        for session in closed:
            session.refused = refused[session.token_id]
            log.info(
                "gateway.token_refused",
                agent_id=str(session.agent_id),
                token_id=session.token_id,
                reason=session.refused.value,
            )
            # Closing waits for the peer's close frame: one slow browser must not hold the rest.
            task = asyncio.get_running_loop().create_task(self._refuse(session))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return closed

    async def _refuse(self, session: AgentSession) -> None:
        assert session.close_socket is not None and session.refused is not None
        await session.close_socket(TOKEN_REFUSED, f"token {session.refused.value}")

    async def _recheck_tokens(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.settings.token_recheck_s)
            await self.recheck_tokens()

    async def close(self, session: AgentSession) -> None:
        """The socket closed: stop its consumer (unsent pushes stay queued) and, for the agent's last
        socket here, tell the router."""
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        if session.consumer is not None:
            try:
                await session.consumer.cancel()
            except BrokerUnavailable as exc:
                log.info("gateway.cancel_failed", agent_id=str(session.agent_id), reason=exc.message)
        async with self._lock:
            left = self._open.get(session.agent_id, 1) - 1
            if left > 0:
                self._open[session.agent_id] = left
            else:
                self._open.pop(session.agent_id, None)
        if left <= 0:
            try:
                await self.to_router(
                    session.workspace_id, AgentConnection(agent_id=session.agent_id, connected=False)
                )
            except BrokerUnavailable as exc:
                # The router learns it from the agent's next connection or its presence expiring.
                log.warning(
                    "gateway.disconnect_not_published", agent_id=str(session.agent_id), reason=exc.message
                )
        log.info("gateway.disconnected", agent_id=str(session.agent_id), pushed=session.pushed)

    async def to_router(self, workspace_id: WorkspaceId, message: BaseModel) -> None:
        await self._declare(f"ws:{workspace_id}", workspace_topology(str(workspace_id)))
        await self.runtime.transport.publish(
            [
                Message(
                    body=message.model_dump_json().encode(),
                    exchange=ROUTE_EXCHANGE,
                    routing_key=route_queue(str(workspace_id)),
                )
            ]
        )

    async def _declare(self, key: str, topology: Any) -> None:
        if key in self._declared:
            return
        await self.runtime.transport.declare(topology)
        self._declared.add(key)
