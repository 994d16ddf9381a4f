"""What an adapter package ships so the shared conformance suite can test it.

Every adapter's package provides ``testing.py`` with ``conformance_kit() -> ConformanceKit``
(found as ``<adapter module's package>.testing``).  The suite that ships with the package,
``centralita.testing.conformance`` (a pytest plugin, entry point ``pytest11``), runs the same
checks against every adapter registered in ``centralita.channels`` — the three built in and any
installed out of tree — here in ``tests/contract/test_adapter_conformance.py`` and from an
adapter's own repository with ``pytest --pyargs centralita.testing.conformance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.channel import AdapterContext, ChannelAccount, WebhookRequest
from core.errors import CentralitaError
from core.events import OutboundMessage

__all__ = ["ConformanceKit", "ErrorCase", "LoopbackPeer", "Sample"]


@dataclass(frozen=True)
class Sample:
    """A delivery as the provider sends it, correctly authenticated for ``kit.accounts()``.

    ``expected`` lists, per event, a subset of ``core.normalized.to_normalized`` output that
    must match; ``external_ids`` are the provider ids that make redeliveries idempotent.
    """

    name: str
    request: WebhookRequest
    expected: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class ErrorCase:
    """Make the peer answer the next send with this failure; the adapter must raise ``expected``."""

    name: str
    peer_failure: dict[str, Any]
    expected: type[CentralitaError]


@dataclass
class LoopbackPeer:
    """A running loopback stand-in for the provider (Graph API, SMTP server, ...)."""

    context: AdapterContext
    received: list[dict[str, Any]] = field(default_factory=list)  # what the provider got, decoded
    failures: list[dict[str, Any]] = field(default_factory=list)  # queued failures, consumed in order


class ConformanceKit(Protocol):
    channel: str

    def accounts(self) -> Sequence[ChannelAccount]: ...

    def samples(self) -> Sequence[Sample]: ...

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        """The same delivery with a signature/token that must not verify."""
        ...

    def malformed_bodies(self) -> Sequence[bytes]:
        """Bodies that verify (re-signed) but cannot be parsed; ``sign`` re-authenticates them."""
        ...

    def sign(self, body: bytes) -> WebhookRequest: ...

    def peer(self) -> AbstractAsyncContextManager[LoopbackPeer]: ...

    def outbound(self, account: ChannelAccount) -> Sequence[OutboundMessage]: ...

    def error_cases(self) -> Sequence[ErrorCase]: ...
