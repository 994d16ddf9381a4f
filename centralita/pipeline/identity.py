"""What the pipeline tells the identity graph about an inbound event.

``observation_for`` reads the event with ``identity.observe_event`` using the channel account's
country (``settings["default_region"]`` on the account, else the ``identity_default_region``
setting, ``MX`` by default) for numbers written in national format; our own mailboxes are never
taken for a customer's address.  A sender address the identity rules cannot read (a malformed
``From:``) still gets an identifier of its own, keyed as the channel gave it, that merges nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.channel import ChannelAccount
from core.errors import InvalidInput
from core.events import (
    Address,
    AddressKind,
    SenderEvent,
)
from identity import Identifier, IdentityPolicy, Observation, email_identifier, observe_event

__all__ = [
    "SenderEvent",
    "business_keys",
    "identifier_key",
    "identity_policy",
    "observation_for",
    "region_of",
]


def identifier_key(address: Address) -> str:
    """The raw matching key of an address the identity rules cannot normalize."""
    value = address.value.strip()
    if address.kind is AddressKind.EMAIL:
        value = value.lower()
    scope = f"{address.scope}:" if address.scope else ""
    return f"unparsed:{address.kind.value}:{scope}{value}"


def region_of(account: ChannelAccount, default_region: str) -> str:
    region = account.settings.get("default_region") if account.settings else None
    return str(region or default_region).upper()


def business_keys(accounts: Iterable[ChannelAccount]) -> frozenset[str]:
    """The identifier keys of a workspace's own mailboxes."""
    keys: set[str] = set()
    for account in accounts:
        if account.channel != "email":
            continue
        try:
            keys.add(email_identifier(account.address).key)
        except InvalidInput:
            continue
    return frozenset(keys)


def identity_policy(accounts: Iterable[ChannelAccount]) -> IdentityPolicy:
    return IdentityPolicy(business_keys=business_keys(accounts))


def observation_for(
    event: SenderEvent, account: ChannelAccount, *, default_region: str, policy: IdentityPolicy
) -> Observation:
    try:
        return observe_event(
            event, default_region=region_of(account, default_region), business_keys=policy.business_keys
        )
    except InvalidInput:
        sender = Identifier(
            kind=event.sender.kind,
            value=event.sender.value.strip()[:400],
            key=identifier_key(event.sender)[:400],
            scope=event.sender.scope,
        )
        return Observation(sender=sender, display_name=event.sender.display_name, reference=event.external_id)
