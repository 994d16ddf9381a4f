"""The conformance suite every channel adapter passes (see ``core.conformance``).

It runs against every adapter registered in the ``centralita.channels`` entry-point group — the
built-in ones and any installed out of tree — using the kit each adapter's package ships as
``<package>.testing.conformance_kit()``.  One test id per (adapter, sample).

An adapter that is registered but cannot be imported, or that imports but ships no kit, does not
vanish from the run: a dedicated test fails and says why.

For peers: a peer counts the sends it saw, refused ones included, either in an ``attempts``
attribute or, when it has none, as entries of ``received``; that is how the suite sees that a
transient failure was retried and that a permanent one was attempted exactly once.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from core.channel import Capabilities, ChannelAccount, ChannelAdapter, WebhookRequest
from core.conformance import ConformanceKit, ErrorCase, Sample
from core.errors import Forbidden, InvalidInput, InvalidSignature
from core.events import DeliveryReceipt, OutboundMessage
from core.normalized import to_normalized
from core.registry import ENTRY_POINT_GROUP

RECEIVED_AT = datetime(2025, 2, 12, 0, 0, tzinfo=UTC)


class _Directory:
    """The running configuration's accounts, as the kit describes them."""

    def __init__(self, accounts: Sequence[ChannelAccount]):
        self._accounts = list(accounts)

    def accounts(self, channel: str) -> Sequence[ChannelAccount]:
        return [a for a in self._accounts if a.channel == channel]

    def find(self, channel: str, address: str) -> ChannelAccount | None:
        return next((a for a in self._accounts if a.channel == channel and a.address == address), None)


@dataclass
class _Registered:
    name: str
    entry_point: EntryPoint
    adapter_cls: Any = None
    load_error: str | None = None
    kit: ConformanceKit | None = None
    kit_error: str | None = None


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _load(entry_point: EntryPoint) -> _Registered:
    registered = _Registered(name=entry_point.name, entry_point=entry_point)
    try:
        registered.adapter_cls = entry_point.load()
    except Exception as exc:  # reported by test_every_registered_adapter_imports
        registered.load_error = _describe(exc)
        return registered
    kit_module = registered.adapter_cls.__module__.rpartition(".")[0] + ".testing"
    try:
        registered.kit = import_module(kit_module).conformance_kit()
    except Exception as exc:  # reported by test_every_importable_adapter_ships_a_conformance_kit
        registered.kit_error = f"{kit_module}.conformance_kit() is unavailable: {_describe(exc)}"
    return registered


REGISTERED = [_load(ep) for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)]
IMPORTABLE = [r for r in REGISTERED if r.load_error is None]
WITH_KIT = [r for r in IMPORTABLE if r.kit is not None]


def _kit(registered: _Registered) -> ConformanceKit:
    assert registered.kit is not None
    return registered.kit


def _adapter(registered: _Registered, context: Any = None) -> ChannelAdapter:
    from core.channel import AdapterContext

    adapter: ChannelAdapter = registered.adapter_cls(context or AdapterContext())
    return adapter


def _directory(registered: _Registered) -> _Directory:
    return _Directory(_kit(registered).accounts())


SAMPLES = [(r, sample) for r in WITH_KIT for sample in _kit(r).samples()]
MALFORMED = [(r, i, body) for r in WITH_KIT for i, body in enumerate(_kit(r).malformed_bodies())]
OUTBOUND = [
    (r, account, message)
    for r in WITH_KIT
    for account in _kit(r).accounts()
    for message in _kit(r).outbound(account)
]
ERRORS = [(r, case) for r in WITH_KIT for case in _kit(r).error_cases()]
HANDSHAKING = [r for r in WITH_KIT if r.adapter_cls.capabilities.webhook_handshake]


def _sample_id(case: tuple[_Registered, Sample]) -> str:
    return f"{case[0].name}-{case[1].name}"


# -- registration ----------------------------------------------------------------------------------


def test_at_least_one_adapter_is_registered() -> None:
    assert REGISTERED, f"no adapter is registered in the {ENTRY_POINT_GROUP!r} entry-point group"


@pytest.mark.parametrize("registered", REGISTERED, ids=lambda r: r.name)
def test_every_registered_adapter_imports(registered: _Registered) -> None:
    if registered.load_error is not None:
        pytest.fail(
            f"the {registered.name!r} adapter registered as {registered.entry_point.value!r} "
            f"does not import: {registered.load_error}",
            pytrace=False,
        )


@pytest.mark.parametrize("registered", IMPORTABLE, ids=lambda r: r.name)
def test_every_importable_adapter_ships_a_conformance_kit(registered: _Registered) -> None:
    if registered.kit_error is not None:
        pytest.fail(
            f"the {registered.name!r} adapter ships no conformance kit: {registered.kit_error}", pytrace=False
        )
    assert _kit(registered).channel == registered.name


@pytest.mark.parametrize("registered", IMPORTABLE, ids=lambda r: r.name)
def test_an_adapter_declares_its_name_and_capabilities_as_data(registered: _Registered) -> None:
    adapter = _adapter(registered)
    assert isinstance(adapter, ChannelAdapter)
    assert adapter.name == registered.name
    assert isinstance(adapter.capabilities, Capabilities)
    assert registered.adapter_cls.name == registered.name  # readable without building one


# -- inbound ---------------------------------------------------------------------------------------


def _matches(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return [
        f"{key}: expected {value!r}, got {actual.get(key, '<missing>')!r}"
        for key, value in expected.items()
        if actual.get(key, "<missing>") != value
    ]


@pytest.mark.parametrize("case", SAMPLES, ids=_sample_id)
def test_a_sample_verifies_and_parses_to_its_expected_events(case: tuple[_Registered, Sample]) -> None:
    registered, sample = case
    adapter = _adapter(registered)
    adapter.verify(sample.request, _directory(registered))
    events = adapter.parse(sample.request.body, received_at=RECEIVED_AT)
    normalized = [to_normalized(event) for event in events]
    assert len(normalized) == len(sample.expected), normalized
    problems = [
        f"event {i}: {problem}"
        for i, (actual, expected) in enumerate(zip(normalized, sample.expected, strict=True))
        for problem in _matches(actual, expected)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", SAMPLES, ids=_sample_id)
def test_parsing_a_sample_twice_yields_the_same_external_ids(case: tuple[_Registered, Sample]) -> None:
    registered, sample = case
    adapter = _adapter(registered)
    first = [e.external_id for e in adapter.parse(sample.request.body, received_at=RECEIVED_AT)]
    later = datetime(2026, 1, 1, tzinfo=UTC)
    second = [e.external_id for e in adapter.parse(sample.request.body, received_at=later)]
    assert first == second
    assert all(first)


@pytest.mark.parametrize("case", SAMPLES, ids=_sample_id)
def test_a_tampered_sample_is_rejected(case: tuple[_Registered, Sample]) -> None:
    registered, sample = case
    tampered = _kit(registered).tampered(sample.request)
    with pytest.raises(InvalidSignature):
        _adapter(registered).verify(tampered, _directory(registered))


@pytest.mark.parametrize("case", SAMPLES, ids=_sample_id)
def test_a_sample_is_rejected_when_no_account_is_configured(case: tuple[_Registered, Sample]) -> None:
    registered, sample = case
    with pytest.raises(InvalidSignature):
        _adapter(registered).verify(sample.request, _Directory([]))


@pytest.mark.parametrize("case", MALFORMED, ids=[f"{r.name}-malformed-{i}" for r, i, _ in MALFORMED])
def test_a_malformed_body_raises_invalid_input_and_nothing_else(case: tuple[_Registered, int, bytes]) -> None:
    registered, _, body = case
    adapter = _adapter(registered)
    request = _kit(registered).sign(body)
    with pytest.raises(InvalidInput):
        adapter.verify(request, _directory(registered))
        adapter.parse(request.body, received_at=RECEIVED_AT)


@pytest.mark.parametrize("registered", HANDSHAKING, ids=lambda r: r.name)
def test_the_webhook_handshake_echoes_the_challenge_for_a_configured_token(registered: _Registered) -> None:
    account = next(a for a in _kit(registered).accounts() if a.verify_token)
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": account.verify_token or "",
        "hub.challenge": "1158201444",
    }
    request = WebhookRequest(method="GET", path="/", headers={}, query=query, body=b"")
    assert _adapter(registered).handshake(request, _directory(registered)) == "1158201444"


@pytest.mark.parametrize("registered", HANDSHAKING, ids=lambda r: r.name)
def test_the_webhook_handshake_refuses_an_unknown_token(registered: _Registered) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "not-a-configured-token",
        "hub.challenge": "1158201444",
    }
    request = WebhookRequest(method="GET", path="/", headers={}, query=query, body=b"")
    with pytest.raises(Forbidden):
        _adapter(registered).handshake(request, _directory(registered))


def _attempts(peer: Any) -> int:
    """Sends the peer saw: its ``attempts`` counter when it keeps one, else every ``received`` entry."""
    attempts = getattr(peer, "attempts", None)
    return int(attempts) if isinstance(attempts, int) else len(peer.received)


# -- outbound --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    OUTBOUND,
    ids=[f"{r.name}-{account.address}-{i}" for i, (r, account, _) in enumerate(OUTBOUND)],
)
async def test_an_outbound_sample_is_delivered_through_the_loopback_peer(
    case: tuple[_Registered, ChannelAccount, OutboundMessage],
) -> None:
    registered, account, message = case
    kit = _kit(registered)
    async with kit.peer() as peer:
        adapter = _adapter(registered, peer.context)
        try:
            receipt = await adapter.send(message, account)
        finally:
            await adapter.aclose()
        assert isinstance(receipt, DeliveryReceipt)
        assert receipt.message_id == message.message_id
        assert receipt.channel == registered.name
        assert receipt.external_id
        assert peer.received, "the peer received nothing"
        check = getattr(kit, "check_received", None)
        if check is not None:
            check(message, account, peer.received)


@pytest.mark.parametrize("case", ERRORS, ids=[f"{r.name}-{c.name}" for r, c in ERRORS])
async def test_a_provider_failure_raises_its_error_class(case: tuple[_Registered, ErrorCase]) -> None:
    registered, error_case = case
    kit = _kit(registered)
    account = kit.accounts()[0]
    message = kit.outbound(account)[0]
    async with kit.peer() as peer:
        peer.failures.append(copy.deepcopy(error_case.peer_failure))
        adapter = _adapter(registered, peer.context)
        try:
            with pytest.raises(error_case.expected):
                await adapter.send(message, account)
        finally:
            await adapter.aclose()
        attempts = _attempts(peer)
        if error_case.expected.transient:
            assert attempts > 1, f"a transient failure must be retried (the peer saw {attempts} attempt)"
        else:
            assert attempts == 1, (
                f"a permanent failure must not be retried (the peer saw {attempts} attempts)"
            )
