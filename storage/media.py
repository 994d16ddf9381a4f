"""Media rows: what the pipeline asked to fetch, what the media worker stored, what the API serves.

The pipeline writes a ``pending`` row per attachment that names provider media, in the
transaction that stores the message.  The media worker claims due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so two workers never fetch one twice), fetches, and marks them
``stored`` or, after its attempts or a permanent refusal, ``failed`` with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AgentId, ChannelAccountId, ConversationId, CustomerId, MessageId, WorkspaceId, new_id
from core.states import MediaStatus
from storage.tables import ConversationRow, MediaRow, MessageRow

__all__ = ["MediaItem", "MediaRecord", "MediaRows", "pending_media"]

MEDIA = MediaRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """A media row as the timeline and the media API show it."""

    id: uuid.UUID
    workspace_id: WorkspaceId
    message_id: MessageId | None  # None: an agent's upload not sent yet
    customer_id: CustomerId | None
    position: int
    kind: str
    status: str
    mime_type: str | None
    size: int | None
    sha256: str | None
    storage_key: str | None
    error: str | None
    conversation_id: ConversationId | None = None  # an agent's upload: where it was uploaded
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class MediaItem:
    """A claimed row to fetch: the attachment (as the message's payload holds it) and its account."""

    id: uuid.UUID
    message_id: MessageId
    channel: str
    channel_account_id: ChannelAccountId | None
    position: int
    attachment: dict[str, Any]
    attempts: int


def pending_media(attachments: Sequence[Any]) -> list[int]:
    """The positions of the attachments that name provider media (a media id or a URL)."""
    return [
        i for i, a in enumerate(attachments) if isinstance(a, dict) and (a.get("media_id") or a.get("url"))
    ]


def _record(r: Any) -> MediaRecord:
    return MediaRecord(
        id=r.id,
        workspace_id=WorkspaceId(r.workspace_id),
        message_id=MessageId(r.message_id) if r.message_id else None,
        customer_id=CustomerId(r.customer_id) if r.customer_id else None,
        position=int(r.position),
        kind=r.kind,
        status=r.status,
        mime_type=r.mime_type,
        size=r.size,
        sha256=r.sha256,
        storage_key=r.storage_key,
        error=r.error,
        conversation_id=ConversationId(r.conversation_id) if r.conversation_id else None,
        filename=r.filename,
    )


class MediaRows:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add_pending(
        self,
        *,
        workspace_id: WorkspaceId,
        message_id: MessageId,
        customer_id: CustomerId | None,
        channel_account_id: ChannelAccountId | None,
        attachments: Sequence[Any],
        now: datetime,
    ) -> int:
        rows = [
            {
                "id": new_id(),
                "workspace_id": workspace_id,
                "message_id": message_id,
                "customer_id": customer_id,
                "channel_account_id": channel_account_id,
                "position": i,
                "kind": str(attachments[i].get("kind") or "file"),
                "status": MediaStatus.PENDING.value,
                "mime_type": attachments[i].get("mime_type"),
                "attempts": 0,
                "due_at": now,
                "created_at": now,
            }
            for i in pending_media(attachments)
        ]
        if rows:
            await self.session.execute(sa.insert(MEDIA), rows)
        return len(rows)

    # -- agents' uploads ---------------------------------------------------------------------

    async def add_upload(
        self,
        media_id: uuid.UUID,
        *,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId,
        customer_id: CustomerId,
        uploaded_by: AgentId | None,
        kind: str,
        mime_type: str,
        size: int,
        sha256: str,
        filename: str | None,
        now: datetime,
    ) -> MediaRecord:
        """An agent's file, already in the media store under ``media_id``'s key: a stored row
        that no message names yet."""
        values = {
            "id": media_id,
            "workspace_id": workspace_id,
            "message_id": None,
            "customer_id": customer_id,
            "conversation_id": conversation_id,
            "uploaded_by": uploaded_by,
            "filename": filename,
            "position": 0,
            "kind": kind,
            "status": MediaStatus.STORED.value,
            "mime_type": mime_type,
            "size": size,
            "sha256": sha256,
            "storage_key": media_id.hex,
            "attempts": 0,
            "created_at": now,
            "stored_at": now,
        }
        await self.session.execute(sa.insert(MEDIA).values(**values))
        found = await self.get(media_id, workspace_id)
        assert found is not None
        return found

    async def take_upload(self, media_id: uuid.UUID, *, message_id: MessageId, position: int) -> bool:
        """The upload becomes attachment ``position`` of the reply ``message_id``; False when
        another reply took it first."""
        result = await self.session.execute(
            sa.update(MEDIA)
            .where(MEDIA.c.id == media_id, MEDIA.c.message_id.is_(None))
            .values(message_id=message_id, position=position)
        )
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    async def copy_to(self, source: MessageId, target: MessageId, *, now: datetime) -> int:
        """The stored media of ``source`` shown on ``target`` too (a resent reply): rows of their
        own over the same files."""
        rows = (
            await self.session.execute(
                sa.select(MEDIA).where(MEDIA.c.message_id == source).order_by(MEDIA.c.position)
            )
        ).all()
        copies = [
            {
                **{c: getattr(r, c) for c in MEDIA.c.keys()},
                "id": new_id(),
                "message_id": target,
                "created_at": now,
            }
            for r in rows
        ]
        if copies:
            await self.session.execute(sa.insert(MEDIA), copies)
        return len(copies)

    async def any_due(self, now: datetime) -> bool:
        """Whether a fetch is due (read only: an idle worker takes no write lock)."""
        found = (
            await self.session.execute(
                sa.select(MEDIA.c.id)
                .where(MEDIA.c.status == MediaStatus.PENDING.value, MEDIA.c.due_at <= now)
                .limit(1)
            )
        ).first()
        return found is not None

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[MediaItem]:
        """Up to ``limit`` due rows, each pushed ``lease`` into the future (a worker that dies
        mid-fetch leaves it due again then) and its attempt counted."""
        query = (
            sa.select(MEDIA.c.id)
            .where(MEDIA.c.status == MediaStatus.PENDING.value, MEDIA.c.due_at <= now)
            .order_by(MEDIA.c.due_at, MEDIA.c.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list((await self.session.execute(query)).scalars())
        if not ids:
            return []
        await self.session.execute(
            sa.update(MEDIA)
            .where(MEDIA.c.id.in_(ids))
            .values(due_at=now + lease, attempts=MEDIA.c.attempts + 1)
        )
        rows = (
            await self.session.execute(
                sa.select(
                    MEDIA.c.id,
                    MEDIA.c.message_id,
                    MEDIA.c.channel_account_id,
                    MEDIA.c.position,
                    MEDIA.c.attempts,
                    MSG.c.channel,
                    MSG.c.payload,
                )
                .join(MSG, MSG.c.id == MEDIA.c.message_id)
                .where(MEDIA.c.id.in_(ids))
                .order_by(MEDIA.c.due_at, MEDIA.c.id)
            )
        ).all()
        out = []
        for r in rows:
            attachments = (r.payload or {}).get("attachments") or []
            attachment = attachments[r.position] if r.position < len(attachments) else {}
            out.append(
                MediaItem(
                    id=r.id,
                    message_id=MessageId(r.message_id),
                    channel=r.channel,
                    channel_account_id=ChannelAccountId(r.channel_account_id)
                    if r.channel_account_id
                    else None,
                    position=int(r.position),
                    attachment=dict(attachment) if isinstance(attachment, dict) else {},
                    attempts=int(r.attempts),
                )
            )
        return out

    async def stored(
        self, media_id: uuid.UUID, *, key: str, mime_type: str, size: int, sha256: str, now: datetime
    ) -> None:
        await self.session.execute(
            sa.update(MEDIA)
            .where(MEDIA.c.id == media_id)
            .values(
                status=MediaStatus.STORED.value,
                storage_key=key,
                mime_type=mime_type,
                size=size,
                sha256=sha256,
                stored_at=now,
                due_at=None,
                error=None,
            )
        )

    async def retry(self, media_id: uuid.UUID, *, at: datetime, error: str) -> None:
        await self.session.execute(
            sa.update(MEDIA).where(MEDIA.c.id == media_id).values(due_at=at, error=error[:500])
        )

    async def failed(self, media_id: uuid.UUID, *, error: str) -> None:
        await self.session.execute(
            sa.update(MEDIA)
            .where(MEDIA.c.id == media_id)
            .values(status=MediaStatus.FAILED.value, due_at=None, error=error[:500])
        )

    async def of_messages(self, message_ids: Iterable[uuid.UUID]) -> dict[MessageId, list[MediaRecord]]:
        ids = sorted(set(message_ids))
        if not ids:
            return {}
        rows = (
            await self.session.execute(
                sa.select(MEDIA)
                .where(MEDIA.c.message_id.in_(ids))
                .order_by(MEDIA.c.message_id, MEDIA.c.position)
            )
        ).all()
        out: dict[MessageId, list[MediaRecord]] = {}
        for r in rows:
            out.setdefault(MessageId(r.message_id), []).append(_record(r))
        return out

    async def of_customers(self, customer_ids: Iterable[uuid.UUID]) -> list[MediaRecord]:
        """Every media row of these customers, oldest first (an export)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return []
        rows = (
            await self.session.execute(
                sa.select(MEDIA).where(MEDIA.c.customer_id.in_(ids)).order_by(MEDIA.c.created_at, MEDIA.c.id)
            )
        ).all()
        return [_record(r) for r in rows]

    async def get(self, media_id: uuid.UUID, workspace_id: WorkspaceId) -> MediaRecord | None:
        row = (
            await self.session.execute(
                sa.select(MEDIA).where(MEDIA.c.id == media_id, MEDIA.c.workspace_id == workspace_id)
            )
        ).first()
        return _record(row) if row is not None else None

    async def agent_may_see(self, media: MediaRecord, agent_id: AgentId) -> bool:
        """An agent sees a customer's media while one of the customer's conversations is theirs
        (the same rule as the customer's timeline in the conversation view)."""
        if media.customer_id is None:
            return False
        found = (
            await self.session.execute(
                sa.select(CONV.c.id)
                .where(CONV.c.customer_id == media.customer_id, CONV.c.agent_id == agent_id)
                .limit(1)
            )
        ).first()
        return found is not None

    async def _erase(self, where: sa.ColumnElement[bool]) -> int:
        result = await self.session.execute(
            sa.update(MEDIA)
            .where(where, MEDIA.c.status != MediaStatus.ERASED.value)
            .values(status=MediaStatus.ERASED.value, sha256=None, due_at=None, error=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def erase_of_customers(self, customer_ids: Iterable[uuid.UUID]) -> int:
        """The customers' media is erased: no longer served; the media worker deletes the files
        (the rows keep their storage key until it has).  How many rows."""
        ids = sorted(set(customer_ids))
        return await self._erase(MEDIA.c.customer_id.in_(ids)) if ids else 0

    async def erase_of_messages(self, message_ids: Iterable[uuid.UUID]) -> int:
        """As ``erase_of_customers``, for the media of these messages (retention)."""
        ids = sorted(set(message_ids))
        return await self._erase(MEDIA.c.message_id.in_(ids)) if ids else 0

    async def files_to_delete(self, *, limit: int) -> list[tuple[uuid.UUID, str]]:
        """Erased rows whose file is still in the media store: (row id, storage key).  A file
        another row still shows (a resent reply's copy) is left until that row is erased too."""
        other = MEDIA.alias("other")
        shown_elsewhere = (
            sa.select(other.c.id)
            .where(other.c.storage_key == MEDIA.c.storage_key, other.c.status != MediaStatus.ERASED.value)
            .exists()
        )
        rows = (
            await self.session.execute(
                sa.select(MEDIA.c.id, MEDIA.c.storage_key)
                .where(
                    MEDIA.c.status == MediaStatus.ERASED.value,
                    MEDIA.c.storage_key.is_not(None),
                    ~shown_elsewhere,
                )
                .order_by(MEDIA.c.id)
                .limit(limit)
            )
        ).all()
        return [(r.id, str(r.storage_key)) for r in rows]

    async def file_deleted(self, media_id: uuid.UUID) -> None:
        await self.session.execute(sa.update(MEDIA).where(MEDIA.c.id == media_id).values(storage_key=None))
