"""Scheduled follow-ups re-enter routing when due.

Closing a conversation with a disposition that schedules a follow-up (``schedules_follow_up`` in
the campaign manifest, or an explicit ``follow_up_at``) stores the due time on the closed
conversation (``conversation.follow_up_at``).  ``FollowUpScheduler`` runs beside the pipeline in
every server: every ``interval_s`` — or at once when ``poke()``d, or when an ``AdvancingClock``
(tests, replays) moves — it reads the follow-ups due
at ``runtime.clock()``, and for each one, in one transaction, claims it (a conditional update:
two servers never open it twice), opens a new ``waiting`` conversation in the follow-up's queue
(or lets the customer's already open conversation take it) and marks the follow-up done.  After
the commit it nudges the workspace's router (``ConversationNudge`` with reason ``follow_up``).
A lost nudge only delays routing: the router also re-reads waiting conversations.
"""

from __future__ import annotations

from collections.abc import Callable

from centralita.periodic import PeriodicJob
from centralita.runtime import Runtime
from centralita.web.api._publish import publish_router_inputs
from core.ids import WorkspaceId
from core.logging import get_logger
from router.wire import ConversationNudge
from storage.work import FollowUpOpened, WorkStore

__all__ = ["FollowUpScheduler"]

log = get_logger("centralita.followups")


class FollowUpScheduler(PeriodicJob):
    # A failed round loses nothing: a claimed follow-up is committed with its conversation, and
    # the router re-reads waiting conversations; an unclaimed one is retried next round.
    task_name = "follow-up-scheduler"
    started_event = "followups_started"
    failed_event = "followups_round_failed"

    def __init__(self, runtime: Runtime, *, interval_s: float = 5.0, batch: int = 100):
        super().__init__(runtime, interval_s=interval_s, log=log)
        self.batch = batch
        self.observers: list[Callable[[FollowUpOpened], None]] = []

    async def run_round(self) -> None:
        await self.run_due()

    async def run_due(self) -> list[FollowUpOpened]:
        """Open every follow-up due at ``runtime.clock()``; returns what re-entered routing."""
        async with self._lock:
            opened: list[FollowUpOpened] = []
            while True:
                batch = await self._open_batch()
                opened.extend(batch)
                await self._nudge(batch)
                if len(batch) < self.batch:
                    break
        for item in opened:
            log.info(
                "follow_up_opened",
                workspace_id=str(item.workspace_id),
                follow_up_of=str(item.follow_up_of),
                conversation_id=str(item.conversation_id),
                reopened=item.reopened,
            )
            for observer in self.observers:
                observer(item)
        return opened

    async def _open_batch(self) -> list[FollowUpOpened]:
        now = self.runtime.clock()
        async with self.runtime.database.transaction() as session:
            store = WorkStore(session)
            opened = []
            for due in await store.due_follow_ups(now, limit=self.batch):
                item = await store.open_follow_up(due, now)
                if item is not None:
                    opened.append(item)
            return opened

    async def _nudge(self, opened: list[FollowUpOpened]) -> None:
        by_workspace: dict[WorkspaceId, list[ConversationNudge]] = {}
        for item in opened:
            by_workspace.setdefault(item.workspace_id, []).append(
                ConversationNudge(conversation_id=item.conversation_id, reason="follow_up")
            )
        for workspace_id, nudges in by_workspace.items():
            await publish_router_inputs(self.runtime, workspace_id, nudges)
