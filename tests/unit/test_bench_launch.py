"""The campaign launch step's traffic (``bench.launch``): what it posts, in which order."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bench.launch import FIRST_CUSTOMER, STATUSES, LaunchTraffic, status_schedule
from channels.whatsapp.parse import parse_webhook
from core.events import DeliveryStatus, InboundMessage


def test_every_message_gets_sent_delivered_read_in_that_order() -> None:
    schedule = status_schedule(100, 10)
    assert len(schedule) == 300
    seen: dict[int, list[str]] = {}
    for message, status in schedule:
        seen.setdefault(message, []).append(status)
    assert seen == {m: list(STATUSES) for m in range(100)}


def test_the_statuses_of_different_messages_interleave() -> None:
    schedule = status_schedule(100, 10)
    first_delivered = schedule.index((0, "delivered"))
    last_sent = schedule.index((99, "sent"))
    assert first_delivered < last_sent
    assert schedule.index((0, "read")) < last_sent


def _traffic(messages: int = 600) -> LaunchTraffic:
    return LaunchTraffic(run="t", messages=messages, statuses_per_answer=10, answers_per_s=60.0)


def test_one_request_in_eleven_is_an_answer_and_every_status_is_posted_once() -> None:
    traffic = _traffic()
    kinds = [traffic.kind(i) for i in range(traffic.count)]
    assert Counter(kind for kind, _ in kinds) == {"status": 1800, "answer": 180}
    assert sorted(n for kind, n in kinds if kind == "status") == list(range(1800))
    assert [kind for kind, _ in kinds[:11]] == ["status"] * 10 + ["answer"]


def test_first_answers_come_from_distinct_customers_and_the_others_from_earlier_ones() -> None:
    traffic = _traffic()
    answers = [traffic.answer(n) for n in range(180)]
    first = [customer for customer, is_first in answers if is_first]
    assert len(first) == len(set(first))
    assert all(0 <= c < traffic.messages for c in first)
    answered: set[int] = set()
    for customer, is_first in answers:
        assert is_first or customer in answered  # writing again: they answered before
        answered.add(customer)
    assert 0 < sum(not is_first for _, is_first in answers) < len(first)


def test_bodies_parse_as_statuses_of_the_templates_and_answers_of_their_customers() -> None:
    traffic = _traffic()
    now = datetime.now(UTC)
    status = parse_webhook(traffic.body(0), received_at=now)
    assert len(status) == 1 and isinstance(status[0], DeliveryStatus)
    assert (status[0].external_id, status[0].status) == (traffic.wamid(0), "sent")
    assert status[0].recipient is not None and status[0].recipient.value.endswith(f"{FIRST_CUSTOMER:08d}")
    answer = parse_webhook(traffic.body(10), received_at=now)
    assert len(answer) == 1 and isinstance(answer[0], InboundMessage)
    customer, first = traffic.answer(0)
    assert first and answer[0].sender.value.endswith(f"{FIRST_CUSTOMER + customer:08d}")
    assert traffic.kinds == {"sent": 1, "first_answer": 1}
