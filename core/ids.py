"""Typed identifiers.

Every id in Centralita is a UUID; the ``NewType`` wrappers keep a customer id from being
passed where a conversation id is expected.  New ids are UUIDv7 (time-ordered), which keeps
B-tree inserts local in PostgreSQL and makes ids sort by creation time.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import NewType

WorkspaceId = NewType("WorkspaceId", uuid.UUID)
CampaignId = NewType("CampaignId", uuid.UUID)
ChannelAccountId = NewType("ChannelAccountId", uuid.UUID)
RawDeliveryId = NewType("RawDeliveryId", uuid.UUID)
CustomerId = NewType("CustomerId", uuid.UUID)
IdentityId = NewType("IdentityId", uuid.UUID)
ConversationId = NewType("ConversationId", uuid.UUID)
MessageId = NewType("MessageId", uuid.UUID)
AgentId = NewType("AgentId", uuid.UUID)
QueueId = NewType("QueueId", uuid.UUID)
OfferId = NewType("OfferId", uuid.UUID)
EventId = NewType("EventId", uuid.UUID)
AlertId = NewType("AlertId", uuid.UUID)

__all__ = [
    "AgentId",
    "AlertId",
    "CampaignId",
    "ChannelAccountId",
    "ConversationId",
    "CustomerId",
    "EventId",
    "IdentityId",
    "MessageId",
    "OfferId",
    "QueueId",
    "RawDeliveryId",
    "WorkspaceId",
    "new_id",
    "uuid7",
]


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A RFC 9562 version-7 UUID: 48 bits of Unix milliseconds, then random bits."""
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)


def new_id() -> uuid.UUID:
    """A fresh time-ordered id; wrap it in the typed alias at the call site."""
    return uuid7()
