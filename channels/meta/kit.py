"""The conformance kit both Meta channels ship (see ``core.conformance``), built from a table.

Each channel's ``testing.py`` describes its accounts, its fixture deliveries with the normalized
events they must yield, bodies that must be refused, outbound samples and the failures its
peer can be told to answer with; this class turns that into the ``ConformanceKit`` protocol.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.meta.peer import GraphPeer
from channels.meta.signature import SIGNATURE_HEADER, sign_body
from core.channel import ChannelAccount, WebhookRequest
from core.conformance import ErrorCase, LoopbackPeer, Sample
from core.events import OutboundMessage

__all__ = ["MetaKit", "SampleSpec", "common_malformed_bodies", "common_unshaped_bodies"]


@dataclass(frozen=True)
class SampleSpec:
    name: str
    fixture: str  # file stem under the channel's fixtures/
    expected: Sequence[dict[str, Any]]
    app_secret: str | None = None  # the app that signs it; None: the kit's default app


def common_malformed_bodies(obj: str) -> list[bytes]:
    """Bodies no Meta parser can read: not JSON, truncated, too deep, not Unicode, huge numbers."""
    deep = b"[" * 10_000 + b"]" * 10_000
    deep_object = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    return [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b'{"object": "' + obj.encode() + b'", "entry": [',
        deep,
        deep_object,
        b'{"object": "' + obj.encode() + b'", "entry": ' + b"[" * 200 + b"]" * 200 + b"}",
        b'{"object": "' + obj.encode() + b'", "entry": [{"id": "\\ud800", "changes": [], "messaging": []}]}',
        b'{"object": "' + obj.encode() + b'", "entry": [{"id": 1' + b"0" * 5000 + b"}]}",
    ]


def common_unshaped_bodies(obj: str) -> list[bytes]:
    """Readable JSON that is not the delivery's shape: a Meta parser accepts each (``Ignored``)."""
    return [
        b"[]",
        b'"a string"',
        b"null",
        b"42",
        b'{"object": "' + obj.encode() + b'"}',
        b'{"object": "' + obj.encode() + b'", "entry": "yes"}',
        b'{"object": "' + obj.encode() + b'", "entry": [42]}',
        b'{"object": "page", "entry": []}',
        b'{"object": 7, "entry": []}',
    ]


@dataclass
class MetaKit:
    channel: str
    fixtures_dir: Path
    account_list: Sequence[ChannelAccount]
    sample_specs: Sequence[SampleSpec]
    bad_bodies: Sequence[bytes]
    outbound_factory: Callable[[ChannelAccount], Sequence[OutboundMessage]]
    failure_cases: Sequence[ErrorCase]
    checker: Callable[[OutboundMessage, ChannelAccount, Sequence[dict[str, Any]]], None]
    peer_nodes: Callable[[ChannelAccount], str] = field(default=lambda account: account.address)
    default_secret: str = ""

    def accounts(self) -> Sequence[ChannelAccount]:
        return list(self.account_list)

    def fixture(self, stem: str) -> bytes:
        return (self.fixtures_dir / f"{stem}.json").read_bytes()

    def fixture_json(self, stem: str) -> Any:
        return json.loads(self.fixture(stem))

    def sign(self, body: bytes, app_secret: str | None = None) -> WebhookRequest:
        secret = app_secret or self.default_secret
        return WebhookRequest(
            method="POST",
            path=f"/webhooks/{self.channel}",
            headers={SIGNATURE_HEADER: sign_body(body, secret), "content-type": "application/json"},
            query={},
            body=body,
            remote="127.0.0.1",
        )

    def samples(self) -> Sequence[Sample]:
        return [
            Sample(
                name=spec.name,
                request=self.sign(self.fixture(spec.fixture), spec.app_secret),
                expected=spec.expected,
            )
            for spec in self.sample_specs
        ]

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        """The same signature over a body changed after signing."""
        body = request.body.replace(b'"', b"'", 1) if b'"' in request.body else request.body + b" "
        return WebhookRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            query=dict(request.query),
            body=body,
            remote=request.remote,
        )

    def malformed_bodies(self) -> Sequence[bytes]:
        return list(self.bad_bodies)

    def peer(self) -> AbstractAsyncContextManager[LoopbackPeer]:
        return self._peer()

    @asynccontextmanager
    async def _peer(self) -> AsyncIterator[LoopbackPeer]:
        tokens: Mapping[str, str] = {
            self.peer_nodes(account): account.access_token or "" for account in self.account_list
        }
        async with GraphPeer(tokens) as peer:
            yield LoopbackPeer(context=peer.context(), received=peer.received, failures=peer.failures)

    def outbound(self, account: ChannelAccount) -> Sequence[OutboundMessage]:
        return list(self.outbound_factory(account))

    def error_cases(self) -> Sequence[ErrorCase]:
        return list(self.failure_cases)

    def check_received(
        self, message: OutboundMessage, account: ChannelAccount, received: Sequence[dict[str, Any]]
    ) -> None:
        """Raise ``AssertionError`` unless the peer got the request(s) this message should make."""
        self.checker(message, account, received)
