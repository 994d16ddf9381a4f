"""The conformance suite every channel adapter passes (the kit it needs: ``core.conformance``).

It runs against every adapter registered in the ``centralita.channels`` entry-point group — the
built-in ones and any installed out of tree — using the kit each adapter's package ships as
``<package>.testing.conformance_kit()``.  One test id per (adapter, case); the plugin
``centralita.testing.plugin`` does the parametrising, and ``--conformance-adapter NAME`` narrows
the run to some adapters.

Run it from any project with Centralita installed::

    pytest --pyargs centralita.testing.conformance

or from a test module of the project's own, which then names the tests::

    from centralita.testing.conformance import *  # noqa: F403

An adapter that is registered but cannot be imported, or that imports but ships no kit, does not
vanish from the run: a dedicated test fails and says why.  So does a name given to
``--conformance-adapter`` that nothing registers.

For peers: a peer counts the sends it saw, refused ones included, either in an ``attempts``
attribute or, when it has none, as entries of ``received``; that is how the suite sees that a
transient failure was retried and that a permanent one was attempted exactly once.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from centralita.directory import StaticDirectory
from centralita.testing.plugin import MARKER, selected_adapters
from core.channel import AdapterContext, Capabilities, ChannelAccount, ChannelAdapter, WebhookRequest
from core.conformance import ConformanceKit, ErrorCase, Sample
from core.errors import Forbidden, InvalidInput, InvalidSignature
from core.events import DeliveryReceipt, OutboundMessage
from core.normalized import to_normalized
from core.registry import ENTRY_POINT_GROUP

__all__ = [
    "test_a_malformed_body_raises_invalid_input_and_nothing_else",
    "test_a_provider_failure_raises_its_error_class",
    "test_a_sample_is_rejected_when_no_account_is_configured",
    "test_a_sample_verifies_and_parses_to_its_expected_events",
    "test_a_tampered_sample_is_rejected",
    "test_an_adapter_declares_its_name_and_capabilities_as_data",
    "test_an_outbound_sample_is_delivered_through_the_loopback_peer",
    "test_at_least_one_adapter_is_registered",
    "test_every_importable_adapter_ships_a_conformance_kit",
    "test_every_registered_adapter_imports",
    "test_parsing_a_sample_twice_yields_the_same_external_ids",
    "test_the_webhook_handshake_echoes_the_challenge_for_a_configured_token",
    "test_the_webhook_handshake_refuses_an_unknown_token",
]

RECEIVED_AT = datetime(2025, 2, 12, 0, 0, tzinfo=UTC)


# -- the adapters under test -----------------------------------------------------------------------


@dataclass
class Registered:
    name: str
    entry_point: EntryPoint | None  # None: named for the run, but registered by nothing
    adapter_cls: Any = None
    load_error: str | None = None
    kit: ConformanceKit | None = None
    kit_error: str | None = None


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _load(entry_point: EntryPoint) -> Registered:
    registered = Registered(name=entry_point.name, entry_point=entry_point)
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


def _unregistered(name: str, known: Sequence[str]) -> Registered:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(known) or "none"
    return Registered(
        name=name,
        entry_point=None,
        load_error=f"it is not in the {ENTRY_POINT_GROUP!r} entry-point group{hint} (registered: {listed})",
    )


@dataclass(frozen=True)
class Suite:
    """The adapters of one run and, per check, the cases they give it."""

    registered: Sequence[Registered]

    @property
    def importable(self) -> list[Registered]:
        return [r for r in self.registered if r.load_error is None]

    @property
    def with_kit(self) -> list[Registered]:
        return [r for r in self.importable if r.kit is not None]

    def cases(self, kind: str) -> tuple[str, list[Any], list[str]]:
        """``(argname, values, ids)`` for the checks marked ``adapter_conformance(kind)``."""
        if kind == "registered":
            return "registered", list(self.registered), [r.name for r in self.registered]
        if kind == "importable":
            return "registered", self.importable, [r.name for r in self.importable]
        if kind == "handshaking":
            shaking = [r for r in self.with_kit if r.adapter_cls.capabilities.webhook_handshake]
            return "registered", shaking, [r.name for r in shaking]
        if kind == "samples":
            samples = [(r, s) for r in self.with_kit for s in _kit(r).samples()]
            return "case", samples, [f"{r.name}-{s.name}" for r, s in samples]
        if kind == "malformed":
            bodies = [(r, i, b) for r in self.with_kit for i, b in enumerate(_kit(r).malformed_bodies())]
            return "case", bodies, [f"{r.name}-malformed-{i}" for r, i, _ in bodies]
        if kind == "outbound":
            sends = [
                (r, account, message)
                for r in self.with_kit
                for account in _kit(r).accounts()
                for message in _kit(r).outbound(account)
            ]
            return "case", sends, [f"{r.name}-{a.address}-{i}" for i, (r, a, _) in enumerate(sends)]
        if kind == "errors":
            errors = [(r, c) for r in self.with_kit for c in _kit(r).error_cases()]
            return "case", errors, [f"{r.name}-{c.name}" for r, c in errors]
        raise ValueError(f"no conformance cases named {kind!r}")


@cache
def _registered(names: tuple[str, ...]) -> Suite:
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    wanted = sorted(set(names)) if names else sorted(found)
    return Suite(
        [_load(found[name]) if name in found else _unregistered(name, sorted(found)) for name in wanted]
    )


def adapters_under_test(names: Sequence[str] = ()) -> Suite:
    """The adapters registered in ``centralita.channels`` (only ``names``, when given), loaded once."""
    return _registered(tuple(names))


def _kit(registered: Registered) -> ConformanceKit:
    assert registered.kit is not None
    return registered.kit


def _adapter(registered: Registered, context: Any = None) -> ChannelAdapter:
    adapter: ChannelAdapter = registered.adapter_cls(context or AdapterContext())
    return adapter


def _directory(registered: Registered) -> StaticDirectory:
    return StaticDirectory(list(_kit(registered).accounts()))


def cases(kind: str) -> pytest.MarkDecorator:
    """Mark a check as taking the cases ``Suite.cases(kind)`` gives (the plugin parametrises it)."""
    marker: pytest.MarkDecorator = getattr(pytest.mark, MARKER)
    return marker(kind)


# -- registration ----------------------------------------------------------------------------------


def test_at_least_one_adapter_is_registered(pytestconfig: pytest.Config) -> None:
    suite = adapters_under_test(selected_adapters(pytestconfig))
    assert suite.registered, f"no adapter is registered in the {ENTRY_POINT_GROUP!r} entry-point group"


@cases("registered")
def test_every_registered_adapter_imports(registered: Registered) -> None:
    if registered.entry_point is None:
        pytest.fail(f"no {registered.name!r} adapter is registered: {registered.load_error}", pytrace=False)
    if registered.load_error is not None:
        pytest.fail(
            f"the {registered.name!r} adapter registered as {registered.entry_point.value!r} "
            f"does not import: {registered.load_error}",
            pytrace=False,
        )


@cases("importable")
def test_every_importable_adapter_ships_a_conformance_kit(registered: Registered) -> None:
    if registered.kit_error is not None:
        pytest.fail(
            f"the {registered.name!r} adapter ships no conformance kit: {registered.kit_error}", pytrace=False
        )
    assert _kit(registered).channel == registered.name


@cases("importable")
def test_an_adapter_declares_its_name_and_capabilities_as_data(registered: Registered) -> None:
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


@cases("samples")
def test_a_sample_verifies_and_parses_to_its_expected_events(case: tuple[Registered, Sample]) -> None:
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


@cases("samples")
def test_parsing_a_sample_twice_yields_the_same_external_ids(case: tuple[Registered, Sample]) -> None:
    registered, sample = case
    adapter = _adapter(registered)
    first = [e.external_id for e in adapter.parse(sample.request.body, received_at=RECEIVED_AT)]
    later = datetime(2026, 1, 1, tzinfo=UTC)
    second = [e.external_id for e in adapter.parse(sample.request.body, received_at=later)]
    assert first == second
    assert all(first)


@cases("samples")
def test_a_tampered_sample_is_rejected(case: tuple[Registered, Sample]) -> None:
    registered, sample = case
    tampered = _kit(registered).tampered(sample.request)
    with pytest.raises(InvalidSignature):
        _adapter(registered).verify(tampered, _directory(registered))


@cases("samples")
def test_a_sample_is_rejected_when_no_account_is_configured(case: tuple[Registered, Sample]) -> None:
    registered, sample = case
    with pytest.raises(InvalidSignature):
        _adapter(registered).verify(sample.request, StaticDirectory([]))


@cases("malformed")
def test_a_malformed_body_raises_invalid_input_and_nothing_else(case: tuple[Registered, int, bytes]) -> None:
    registered, _, body = case
    adapter = _adapter(registered)
    request = _kit(registered).sign(body)
    with pytest.raises(InvalidInput):
        adapter.verify(request, _directory(registered))
        adapter.parse(request.body, received_at=RECEIVED_AT)


@cases("handshaking")
def test_the_webhook_handshake_echoes_the_challenge_for_a_configured_token(registered: Registered) -> None:
    account = next(a for a in _kit(registered).accounts() if a.verify_token)
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": account.verify_token or "",
        "hub.challenge": "1158201444",
    }
    request = WebhookRequest(method="GET", path="/", headers={}, query=query, body=b"")
    assert _adapter(registered).handshake(request, _directory(registered)) == "1158201444"


@cases("handshaking")
def test_the_webhook_handshake_refuses_an_unknown_token(registered: Registered) -> None:
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
# Each check runs its own event loop, so the suite needs no async plugin in the adapter's project.


@cases("outbound")
def test_an_outbound_sample_is_delivered_through_the_loopback_peer(
    case: tuple[Registered, ChannelAccount, OutboundMessage],
) -> None:
    asyncio.run(_delivered_through_the_loopback_peer(*case))


async def _delivered_through_the_loopback_peer(
    registered: Registered, account: ChannelAccount, message: OutboundMessage
) -> None:
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


@cases("errors")
def test_a_provider_failure_raises_its_error_class(case: tuple[Registered, ErrorCase]) -> None:
    asyncio.run(_raises_its_error_class(*case))


async def _raises_its_error_class(registered: Registered, error_case: ErrorCase) -> None:
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
