"""``WS /ws/supervisor``: the supervisors' wall, live, over WebSocket.

A wall board needs no broker credentials and never sees another tenant: the socket is opened
with the API's authentication (the console's session cookie, a bearer header, or
``?access_token=`` for browsers) of role ``supervisor`` or ``admin``, and every frame carries the
token's own workspace only.  On connect the server sends a ``wall`` snapshot (the queues'
statistics as ``GET /api/queues/stats`` computes them, the agents as ``GET /api/agents`` lists
them, the latest alerts as ``GET /api/alerts``); then, every ``CENTRALITA_WALL_PUSH_S`` (1 s), the
hub re-reads the figures of each workspace a wall watches — one read per workspace, however many
walls watch it — and sends ``queue_stats`` and ``agents`` when they changed and an ``alert`` for
each alert raised since.  The figures come from the database, so any server holds walls, whichever
router is active.  Like the agents' sockets, a socket whose token is revoked or expires is closed
with code 4401 within ``CENTRALITA_TOKEN_RECHECK_S``.  The frames are the models of
``centralita.schemas.wall`` (their JSON Schema: ``docs/wall.schema.json``).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ValidationError

from centralita.gateway import TOKEN_REFUSED, Close, Send
from centralita.runtime import Runtime
from centralita.schemas.agents import Agent
from centralita.schemas.alerts import Alert
from centralita.schemas.queues import QueueStatsList
from centralita.schemas.wall import (
    AgentsFrame,
    AlertFrame,
    QueueStatsFrame,
    WallFrame,
    parse_wall_client_frame,
)
from centralita.schemas.ws import ErrorFrame, PongFrame
from centralita.web.api.queues import read_queue_stats
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import DatabaseConflict, DatabaseUnavailable, InvalidInput
from core.ids import WorkspaceId
from core.logging import get_logger
from storage.alerts import AlertRecord, AlertStore
from storage.tokens import Principal, TokenStore
from storage.work import WorkStore

__all__ = ["HUB", "WallHub", "setup"]

log = get_logger("centralita.web.wall")

ALERTS_ON_CONNECT = 20


@dataclass(eq=False)
class Watcher:
    """One open wall socket."""

    principal: Principal
    send: Send
    close: Close
    refused: bool = False


@dataclass
class _Seen:
    """What the walls of one workspace were last sent."""

    stats: str = ""
    agents: str = ""
    alerts_after: datetime | None = None
    watchers: set[Watcher] = field(default_factory=set)


class WallHub:
    """The walls this server holds, grouped by workspace, and the loop that feeds them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._workspaces: dict[WorkspaceId, _Seen] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_recheck = 0.0
        self._closing: set[asyncio.Future[object]] = set()

    @property
    def watchers(self) -> list[Watcher]:
        return [w for seen in self._workspaces.values() for w in seen.watchers]

    async def open(self, principal: Principal, send: Send, close: Close) -> Watcher:
        """A wall connects: it gets the snapshot, then the changes."""
        watcher = Watcher(principal, send, close)
        ws = principal.workspace_id
        snapshot, stats_json, agents_json, newest = await self._snapshot(ws)
        seen = self._workspaces.setdefault(
            ws, _Seen(stats=stats_json, agents=agents_json, alerts_after=newest)
        )
        if not seen.watchers:
            seen.stats, seen.agents, seen.alerts_after = stats_json, agents_json, newest
        seen.watchers.add(watcher)
        await send(snapshot.model_dump_json())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="wall-hub")
        log.info("wall.opened", workspace_id=str(ws), walls=len(seen.watchers))
        return watcher

    def close(self, watcher: Watcher) -> None:
        ws = watcher.principal.workspace_id
        seen = self._workspaces.get(ws)
        if seen is None:
            return
        seen.watchers.discard(watcher)
        if not seen.watchers:
            del self._workspaces[ws]
        log.info("wall.closed", workspace_id=str(ws))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def handle_text(self, text: str) -> PongFrame | ErrorFrame:
        """A wall's frame (only ``ping``)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            return ErrorFrame.of(InvalidInput("a frame is one JSON object", field="frame"))
        try:
            parse_wall_client_frame(data)
        except ValidationError:
            return ErrorFrame.of(
                InvalidInput(f"unknown frame type {data.get('type')!r}; expected ping", field="type")
            )
        return PongFrame()

    # ---------------------------------------------------------------------- the feed

    async def _read(
        self, ws: WorkspaceId, *, alerts: int, after: datetime | None = None
    ) -> tuple[QueueStatsList, list[Agent], Sequence[AlertRecord]]:
        """The workspace's figures now: queue statistics, its active agents, its latest alerts."""
        async with self.runtime.database.session() as session:
            stats, agents = await read_queue_stats(WorkStore(session), ws, self.runtime.clock())
            raised = await AlertStore(session).recent(ws, limit=alerts, after=after)
        return stats, [Agent.of(a) for a in agents if a.active], raised

    async def _snapshot(self, ws: WorkspaceId) -> tuple[WallFrame, str, str, datetime | None]:
        stats, listed, alerts = await self._read(ws, alerts=ALERTS_ON_CONNECT)
        frame = WallFrame(queues=stats, agents=listed, alerts=[Alert.of(a) for a in alerts])
        newest = alerts[0].raised_at if alerts else None
        return frame, _figures(stats), _json(listed), newest

    async def push(self) -> int:
        """One round: every watched workspace's changes to its walls.  Returns the frames sent."""
        sent = 0
        for ws, seen in list(self._workspaces.items()):
            try:
                stats, listed, alerts = await self._read(ws, alerts=100, after=seen.alerts_after)
            except (DatabaseUnavailable, DatabaseConflict) as exc:
                log.warning("wall.not_refreshed", workspace_id=str(ws), reason=exc.message)
                continue
            frames: list[BaseModel] = []
            figures = _figures(stats)
            if figures != seen.stats:
                seen.stats = figures
                frames.append(QueueStatsFrame(queues=stats))
            listed_json = _json(listed)
            if listed_json != seen.agents:
                seen.agents = listed_json
                frames.append(AgentsFrame(agents=listed))
            for record in reversed(alerts):  # oldest first
                frames.append(AlertFrame(alert=Alert.of(record)))
            if alerts:
                seen.alerts_after = alerts[0].raised_at
            for watcher in list(seen.watchers):
                for frame in frames:
                    try:
                        await watcher.send(frame.model_dump_json())
                    except (ConnectionError, RuntimeError):
                        break  # closing: its handler's cleanup removes it
                    sent += 1
        return sent

    async def recheck_tokens(self) -> list[Watcher]:
        """Close the walls whose token is refused now (one query for all of them)."""
        held = [w for w in self.watchers if not w.refused]
        if not held:
            return []
        try:
            async with self.runtime.database.session() as db:
                refused = await TokenStore(db).refusals(
                    {w.principal.token_id for w in held}, self.runtime.clock()
                )
        except (DatabaseUnavailable, DatabaseConflict) as exc:
            log.warning("wall.tokens_not_rechecked", sockets=len(held), reason=exc.message)
            return []
        closing = [w for w in held if w.principal.token_id in refused]
        for watcher in closing:
            watcher.refused = True
            reason = refused[watcher.principal.token_id].value
            log.info("wall.token_refused", token_id=watcher.principal.token_id, reason=reason)
            # Closing waits for the peer's close frame: one slow browser must not hold the rest.
            task = asyncio.ensure_future(watcher.close(TOKEN_REFUSED, f"token {reason}"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return closing

    async def _loop(self) -> None:
        settings = self.runtime.settings
        loop = asyncio.get_running_loop()
        while self._workspaces:
            await asyncio.sleep(settings.wall_push_s)
            await self.push()
            if loop.time() - self._last_recheck >= settings.token_recheck_s:
                self._last_recheck = loop.time()
                await self.recheck_tokens()


def _figures(stats: BaseModel) -> str:
    """The statistics without their time of reading (sent again only when a figure changed)."""
    return stats.model_dump_json(exclude={"at"})


def _json(agents: list[Agent]) -> str:
    return json.dumps([a.model_dump(mode="json") for a in agents], sort_keys=True)


HUB = web.AppKey("wall_hub", WallHub)
_SOCKETS = web.AppKey("wall_sockets", weakref.WeakSet[web.WebSocketResponse])


@documented(
    "supervisor",
    {101: ("Switching to the WebSocket protocol: one JSON object per text frame.", None)},
    query=(Param("access_token", "The bearer token, for browsers (they cannot set headers on an upgrade)."),),
    description=(
        "Server → wall frames: wall (the snapshot on connect), queue_stats, agents (when they "
        "change), alert (each new alert), pong, error. Wall → server: ping. Only the token's own "
        "workspace. A socket whose token is revoked or expires is closed with code 4401 within "
        "CENTRALITA_TOKEN_RECHECK_S seconds. The frames' JSON Schema: docs/wall.schema.json "
        "(centralita.schemas.wall); see docs/api.md."
    ),
    authorization="A token (or the console's session) of role supervisor or admin (agents: 403).",
)
async def supervisor_socket(request: web.Request) -> web.StreamResponse:
    """The supervisors' wall (WebSocket): queue statistics, agents and alerts, live."""
    principal = await require(request, "supervisor")  # agents: 403 before the upgrade
    hub = request.app[HUB]
    socket = web.WebSocketResponse(heartbeat=30.0)
    await socket.prepare(request)
    request.app[_SOCKETS].add(socket)

    async def close(code: int, reason: str) -> bool:
        return await socket.close(code=code, message=reason.encode())

    watcher = await hub.open(principal, socket.send_str, close)
    try:
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                answer = await hub.handle_text(frame.data)
            elif frame.type == WSMsgType.BINARY:
                answer = ErrorFrame.of(InvalidInput("send text frames (JSON)", field="frame"))
            else:
                continue
            await socket.send_str(answer.model_dump_json())
    finally:
        hub.close(watcher)
    return socket


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = WallHub(app[RUNTIME])
    app[_SOCKETS] = weakref.WeakSet()
    yield
    await app[HUB].stop()


async def _close_sockets(app: web.Application) -> None:
    for socket in list(app.get(_SOCKETS, ())):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup(app: web.Application) -> None:
    """Register ``/ws/supervisor``; call after the runtime's cleanup context was appended."""
    app.router.add_get("/ws/supervisor", supervisor_socket)
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_close_sockets)
