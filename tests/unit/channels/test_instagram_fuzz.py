"""Whatever bytes arrive, the Instagram parser raises nothing but ``InvalidInput``; any JSON it reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from centralita.directory import StaticDirectory
from channels.instagram.adapter import InstagramAdapter
from channels.instagram.parse import parse_webhook
from channels.instagram.testing import APP_SECRET, accounts
from channels.meta.signature import sign_body
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
    ["image", "video", "audio", "file", "share", "story_mention", "ig_reel", "react", "unreact", "messages",
     "comments", "messaging_seen", "17841400000000001", "1254459154682919", "1739321024123", "1739321024", ""]
)  # fmt: skip
loose = anything | words


def shaped_like_a_delivery() -> st.SearchStrategy[Any]:
    attachment = st.fixed_dictionaries({"type": words | anything}, optional={"payload": anything})
    message = st.fixed_dictionaries(
        {"mid": loose},
        optional={
            "text": loose,
            "attachments": st.lists(attachment, max_size=2) | anything,
            "is_echo": loose,
            "is_deleted": loose,
            "quick_reply": anything,
            "reply_to": st.fixed_dictionaries({}, optional={"mid": loose, "story": anything}) | anything,
            "referral": anything,
        },
    )
    item = st.fixed_dictionaries(
        {
            "sender": st.fixed_dictionaries({"id": loose}) | anything,
            "recipient": st.fixed_dictionaries({"id": loose}),
        },
        optional={
            "timestamp": loose,
            "message": message | anything,
            "reaction": st.fixed_dictionaries({"mid": loose, "action": words | anything}),
            "postback": anything,
            "read": anything,
            "referral": anything,
        },
    )
    change = st.fixed_dictionaries({"field": words | anything, "value": item | anything})
    entry = st.fixed_dictionaries(
        {"id": loose},
        optional={
            "messaging": st.lists(item, max_size=3) | anything,
            "changes": st.lists(change, max_size=2),
        },
    )
    return st.fixed_dictionaries(
        {"object": st.just("instagram") | anything, "entry": st.lists(entry, max_size=3)}
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
        InstagramAdapter(AdapterContext()).verify(request, StaticDirectory(accounts()))
    except InvalidSignature:
        pass
