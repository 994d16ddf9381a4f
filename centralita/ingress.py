"""The thin ingress: verify, read, publish the raw delivery with confirm — then answer.

Nothing is acknowledged to a provider before the broker confirmed the raw delivery, so a 200
means durable.  Broker down → ``BrokerUnavailable`` → HTTP 503 / SMTP 451, and the provider
retries.  The pipeline worker stores, dedupes and processes what the ingress published.

A verified delivery is never refused for its content: the parsers are total for any body they
can read, so only an unsigned (401), unreadable (400: not JSON, not a mail) or oversized (413)
body is refused.  Parts the parser does not understand come back as ``Unsupported`` events and
are published with the rest; a warning names their types (never their content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from centralita.envelope import RawEnvelope
from core.channel import AccountDirectory, ChannelAdapter, WebhookRequest
from core.errors import BrokerUnavailable, CentralitaError, InvalidInput
from core.events import InboundEvent, Unsupported
from core.ids import RawDeliveryId, new_id
from core.logging import get_logger
from core.registry import AdapterRegistry
from core.transport.protocol import Transport
from core.transport.topology import INGEST_EXCHANGE, ingest_routing_key

__all__ = ["RAW_HEADERS", "Accepted", "Ingress"]

log = get_logger("centralita.ingress")

# Delivery headers kept with the raw body (the rest, cookies and auth included, are dropped).
RAW_HEADERS = frozenset(
    {"content-type", "x-hub-signature-256", "user-agent", "x-forwarded-for", "delivered-to", "x-original-to"}
)


@dataclass(frozen=True, slots=True)
class Accepted:
    raw_delivery_id: RawDeliveryId
    events: int


def partition_key(events: Sequence[InboundEvent], channel: str, body: bytes) -> tuple[str, str]:
    """Per sender when one is known (their events stay in order); else the business address the
    delivery names; else a hash of the body, so deliveries naming nobody still spread."""
    for event in events:
        sender = getattr(event, "sender", None) or getattr(event, "recipient", None)
        if sender is not None:
            return event.business_address, sender.value
    named = next((e.business_address for e in events if e.business_address), None)
    if named is not None:
        return named, ""
    return channel, hashlib.sha256(body).hexdigest()[:16]


class Ingress:
    def __init__(
        self,
        adapters: AdapterRegistry,
        directory: AccountDirectory,
        transport: Transport,
        partitions: int,
        clock: object,
    ):
        self._adapters = adapters
        self._directory = directory
        self._transport = transport
        self._partitions = partitions
        self._clock = clock

    def _now(self) -> datetime:
        return self._clock()  # type: ignore[operator,no-any-return]

    def handshake(self, channel: str, request: WebhookRequest) -> str:
        return self._adapters.get(channel).handshake(request, self._directory)

    async def receive(self, channel: str, request: WebhookRequest) -> Accepted:
        """A webhook delivery: verify its signature, parse it (to refuse unreadable bodies), publish it."""
        adapter = self._adapters.get(channel)
        adapter.verify(request, self._directory)
        return await self._publish(adapter, channel, request.body, request.headers)

    async def accept(self, channel: str, body: bytes, *, headers: Mapping[str, str]) -> None:
        """A delivery already authenticated by its listener (SMTP) or trusted (``centralita ingest``)."""
        await self._publish(self._adapters.get(channel), channel, body, headers)

    async def _publish(
        self, adapter: ChannelAdapter, channel: str, body: bytes, headers: Mapping[str, str]
    ) -> Accepted:
        received_at = self._now()
        try:
            events = adapter.parse(body, received_at=received_at)
        except CentralitaError:
            raise
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # A parser bug (parsers are total for readable bodies): refused, so the provider retries
            # it, rather than published into a pipeline whose parse would fail the same way.
            log.error("ingress_parser_failed", channel=channel, error=type(exc).__name__)
            raise InvalidInput(f"cannot parse the {channel} delivery: {type(exc).__name__}") from exc
        raw_id = RawDeliveryId(new_id())
        account, sender = partition_key(events, channel, body)
        envelope = RawEnvelope(
            raw_delivery_id=raw_id,
            channel=channel,
            received_at=received_at,
            body=body,
            headers={k.lower(): v for k, v in headers.items() if k.lower() in RAW_HEADERS},
        )
        message = envelope.to_message(INGEST_EXCHANGE, ingest_routing_key(account, sender, self._partitions))
        try:
            await self._transport.publish([message])
        except BrokerUnavailable:
            log.warning("ingress_unavailable", channel=channel, raw_delivery_id=str(raw_id))
            raise
        unsupported = sorted({e.provider_type for e in events if isinstance(e, Unsupported)})
        if unsupported:
            log.warning(
                "delivery_content_unsupported",
                channel=channel,
                raw_delivery_id=str(raw_id),
                provider_types=unsupported,
                parts=sum(isinstance(e, Unsupported) for e in events),
            )
        log.info("delivery_accepted", channel=channel, raw_delivery_id=str(raw_id), events=len(events))
        return Accepted(raw_id, len(events))
