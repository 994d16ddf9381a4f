"""How long a campaign keeps personal data: the manifest's ``retention`` section (pure).

Every period is optional; an absent one keeps forever (the behaviour of a manifest without the
section).  What each period removes — and what it keeps so reports still count — is decided
here once and applied in batches by the retention job (``centralita.retention``):

- ``raw_deliveries_days``: the provider's raw webhook/MIME bodies (``raw_delivery`` rows) of the
  campaign's closed conversations, received more than N days ago, are deleted.  The messages
  they were parsed into stay; only their pointer to the raw body is cleared.  An open
  conversation is never touched: while agents work on it its raw bodies may still be needed
  (a delivery parsed wrongly, a dispute with the provider); they are due once it is closed.
- ``closed_conversations_days``: conversations closed more than N days ago keep their row
  (queue, agent, times, status, disposition code, date and amount: what reports count) and
  every message row (direction, kind, channel, times, delivery state: the message counts), but
  lose the content — each message's text and payload (attachments, locations, contacts,
  interactive answers), the raw bodies they came from, and the free-text note of the
  disposition.  A contact center reports on volumes and service levels for years, while the
  content is what the privacy laws (LFPDPPP, Ley 1581, LGPD, Ley 25.326) ask it to stop keeping
  once the purpose is served; deleting the rows would silently rewrite past reports.

Media fetched into the media store go with their message's content under
``closed_conversations_days`` (marked erased with it; the media worker deletes the files).  There
is no separate ``media_days``: the section refuses it like any unknown key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = ["MAX_RETENTION_DAYS", "Cutoffs", "Retention", "cutoffs", "retention_of"]

MAX_RETENTION_DAYS = 36_500
"""A hundred years: longer than any law asks, short enough to stay a date."""


def _days(value: int) -> int:
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise PydanticCustomError(
            "invalid_retention",
            "a retention period is a whole number of days from 1 to {maximum}",
            {"maximum": MAX_RETENTION_DAYS, "hint": "e.g. 30; leave the key out to keep forever"},
        )
    return value


# strict: YAML's true or "30" is refused, not read as 1 or 30
Days = Annotated[
    int,
    Field(strict=True, json_schema_extra={"minimum": 1, "maximum": MAX_RETENTION_DAYS}),
    AfterValidator(_days),
]


class Retention(BaseModel):
    """How long the campaign keeps personal data, in days (absent: forever)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw_deliveries_days: Days | None = Field(
        default=None,
        description=(
            "Delete the provider's raw bodies (webhook JSON, MIME) of the campaign's closed "
            "conversations received more than this many days ago; the messages parsed from them stay."
        ),
        examples=[30],
    )
    closed_conversations_days: Days | None = Field(
        default=None,
        description=(
            "For conversations closed more than this many days ago, remove message texts and "
            "payloads (attachments), their raw bodies and the disposition note; conversation and "
            "message rows stay, so reports count the same."
        ),
        examples=[365],
    )

    @property
    def keeps_forever(self) -> bool:
        return self.raw_deliveries_days is None and self.closed_conversations_days is None


@dataclass(frozen=True)
class Cutoffs:
    """What is due at one moment: raw bodies received before ``raw_received_before``,
    content of conversations closed before ``closed_before`` (None: nothing is due)."""

    raw_received_before: datetime | None
    closed_before: datetime | None


def cutoffs(retention: Retention, now: datetime) -> Cutoffs:
    def before(days: int | None) -> datetime | None:
        return None if days is None else now - timedelta(days=days)

    return Cutoffs(before(retention.raw_deliveries_days), before(retention.closed_conversations_days))


def retention_of(manifest: Any) -> Retention:
    """The retention of a stored (canonical) manifest's data; a manifest without the section,
    or applied before it existed, keeps forever."""
    section = manifest.get("retention") if isinstance(manifest, dict) else None
    return Retention.model_validate(section or {})
