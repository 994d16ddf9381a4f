"""``parse_email`` never raises anything but ``InvalidInput``, whatever bytes it is given."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.parse import parse_email
from channels.email.testing import FIXTURES
from core.errors import InvalidInput
from core.events import encode_event

RECEIVED_AT = datetime(2026, 3, 20, tzinfo=UTC)
REAL_MAILS = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
INTERESTING = [
    b"\r\n",
    b"\n\n",
    b"=?",
    b"?=",
    b"=?UTF-8?B?",
    b"=?ISO-8859-1?Q?=E9",
    b"<",
    b">",
    b";",
    b":",
    b"--",
    b"boundary=",
    b"charset=",
    b"\xff\xfe",
    b"\x00",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Date: 31 Feb 99999 25:61 +9999\r\n",
]


def _parses_or_refuses(raw: bytes) -> None:
    try:
        events = parse_email(raw, received_at=RECEIVED_AT)
    except InvalidInput:
        return
    for event in events:
        encode_event(event)  # and what it returns travels as JSON


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_invalid_input(raw: bytes) -> None:
    _parses_or_refuses(raw)


@st.composite
def mutated_mails(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(REAL_MAILS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))
        if action == "flip" and raw:
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del raw[at:]
        elif action == "insert":
            raw[at:at] = draw(st.sampled_from(INTERESTING) | st.binary(max_size=64))
        elif raw:
            del raw[at : at + draw(st.integers(min_value=1, max_value=200))]
    return bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_mails())
def test_mutated_real_mails_parse_or_raise_invalid_input(raw: bytes) -> None:
    _parses_or_refuses(raw)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=12))
def test_header_like_text_parses_or_raises_invalid_input(lines: list[str]) -> None:
    raw = "\r\n".join(["From: x@y.example", "To: a@b.example", *lines]).encode("utf-8", "surrogatepass")
    _parses_or_refuses(raw)
