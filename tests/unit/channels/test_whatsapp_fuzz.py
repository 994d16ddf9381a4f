"""Whatever bytes arrive, the WhatsApp parser raises nothing but ``InvalidInput``; any JSON it reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from centralita.directory import StaticDirectory
from channels.meta.signature import sign_body
from channels.whatsapp.adapter import WhatsAppAdapter
from channels.whatsapp.parse import parse_webhook
from channels.whatsapp.testing import APP_SECRET, accounts
from core.channel import AdapterContext, WebhookRequest
from core.errors import InvalidInput, InvalidSignature

RECEIVED_AT = datetime(2025, 2, 12, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
anything = json_trees | scalars
words = st.sampled_from(
    ["text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
     "button", "reaction", "system", "unsupported", "order", "request_welcome", "sent", "failed", "messages",
     "button_reply", "list_reply", "nfm_reply", "call_permission_reply", "group", "individual", "",
     "1739321024", "5215512345678", "MX.1"]
)  # fmt: skip
loose = anything | words


def shaped_like_a_delivery() -> st.SearchStrategy[Any]:
    """Real field names in the real structure, with random values where it matters."""
    media = st.fixed_dictionaries(
        {"id": loose}, optional={"mime_type": loose, "voice": loose, "caption": loose}
    )
    message = st.fixed_dictionaries(
        {"id": loose, "timestamp": loose, "type": words | anything},
        optional={
            "from": loose,
            "from_user_id": loose,
            "text": st.fixed_dictionaries({"body": loose}) | anything,
            "image": media,
            "audio": media,
            "location": st.fixed_dictionaries({"latitude": loose, "longitude": loose}),
            "contacts": st.lists(anything, max_size=2) | anything,
            "interactive": st.fixed_dictionaries(
                {"type": words}, optional={"button_reply": anything, "list_reply": anything}
            ),
            "button": anything,
            "reaction": st.fixed_dictionaries({"message_id": loose}, optional={"emoji": loose}),
            "system": anything,
            "context": anything,
            "referral": anything,
            "errors": st.lists(anything, max_size=2) | anything,
        },
    )
    status = st.fixed_dictionaries(
        {"id": loose, "status": words | anything, "timestamp": loose},
        optional={
            "recipient_id": loose,
            "recipient_user_id": loose,
            "recipient_type": loose,
            "errors": anything,
        },
    )
    value = st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"phone_number_id": loose}) | anything},
        optional={
            "contacts": st.lists(anything, max_size=2) | anything,
            "messages": st.lists(message, max_size=3) | anything,
            "statuses": st.lists(status, max_size=3) | anything,
            "errors": st.lists(anything, max_size=2),
        },
    )
    change = st.fixed_dictionaries({"field": words | anything, "value": value | anything})
    entry = st.fixed_dictionaries({"id": loose, "changes": st.lists(change, max_size=3) | anything})
    return st.fixed_dictionaries(
        {
            "object": st.just("whatsapp_business_account") | anything,
            "entry": st.lists(entry, max_size=3) | anything,
        }
    )


def parses_or_refuses(body: bytes) -> None:
    try:
        events = parse_webhook(body, received_at=RECEIVED_AT)
    except InvalidInput:
        return
    for event in events:  # what parse returns must also travel over the broker
        event.model_dump_json()


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_invalid_input(body: bytes) -> None:
    parses_or_refuses(body)


def always_parses(tree: Any) -> None:
    for event in parse_webhook(json.dumps(tree).encode(), received_at=RECEIVED_AT):
        event.model_dump_json()  # what parse returns must also travel over the broker


@FUZZ
@given(anything)
def test_arbitrary_json_always_parses(tree: Any) -> None:
    always_parses(tree)


@FUZZ
@given(shaped_like_a_delivery())
def test_payload_shaped_json_with_random_values_always_parses(tree: Any) -> None:
    always_parses(tree)


@FUZZ
@given(shaped_like_a_delivery())
def test_verifying_any_signed_body_raises_nothing_but_invalid_signature(tree: Any) -> None:
    body = json.dumps(tree).encode()
    request = WebhookRequest(
        method="POST",
        path="/",
        headers={"x-hub-signature-256": sign_body(body, APP_SECRET)},
        query={},
        body=body,
    )
    try:
        WhatsAppAdapter(AdapterContext()).verify(request, StaticDirectory(accounts()))
    except InvalidSignature:
        pass
