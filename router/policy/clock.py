"""Time as the policy sees it: float seconds since the Unix epoch (UTC).

The state machine never reads a clock.  Every ``handle(event, now)`` receives ``now`` as a float
(``time.time()`` in the live router, the virtual clock in the simulator); every deadline it
reports (offer expiry, ``next_deadline()``, ``Offer.expires_at``) is in the same unit.  Floats
keep the simulator's hot path free of ``datetime`` arithmetic; these helpers convert at the
edges, where the live router talks to the database and the API.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["Timestamp", "from_epoch", "to_epoch"]

Timestamp = float
"""Seconds since 1970-01-01T00:00:00Z, as returned by ``time.time()``."""


def to_epoch(moment: datetime) -> Timestamp:
    """An aware ``datetime`` → epoch seconds.  A naive one is taken as UTC (database columns are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_epoch(ts: Timestamp) -> datetime:
    """Epoch seconds → an aware UTC ``datetime``."""
    return datetime.fromtimestamp(ts, tz=UTC)
