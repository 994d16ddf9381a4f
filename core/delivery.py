"""Where an outbound message stands: the outbox's delivery states.

``queued`` (in the outbox, due at ``due_at``) → ``sending`` (a worker claimed it and is calling the
provider; committed before the call) → ``sent`` (the provider's id recorded) → ``delivered`` →
``read``; ``failed`` when the provider refused it or the attempts ran out.  ``unknown``: a worker
claimed it and was gone before it recorded the provider's answer — the provider may or may not
have it, so it is never sent again by itself: the agent resends it (a new row that points back
at this one) or a delivery status from the provider settles it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RESENDABLE", "UNCONFIRMED_REASON", "DeliveryState"]


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"


# What an agent may send again, explicitly.
RESENDABLE = frozenset({DeliveryState.UNKNOWN, DeliveryState.FAILED})

UNCONFIRMED_REASON = {
    "code": "delivery_unconfirmed",
    "message": "No se pudo confirmar el envío — ¿reenviar? / could not confirm delivery — resend?",
}
