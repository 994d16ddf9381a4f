"""The reports' measures, each on the worked example of docs/reports.md (computed by hand).

The example: campaign ``cobranzas`` in America/Bogota (UTC−5), queue ``pagos`` with an SLA of
60 s and a target of 80 %, five conversations on 1–2 March 2026 (local):

====  ==========  ========  =======  ========  ======  ==========  =======  ===========
conv  opened      enqueued  assigned waited_s  1st     closed      agent    customer
====  ==========  ========  =======  ========  ======  ==========  =======  ===========
a     19:00       +0        +30      30        +90     +630        ana      K1
b     20:00       +0        +120     90        +180    +720        ana      K2 (reopened)
c     21:00       +0        —        —         —       +300 aband. —        K1
d     22:00 menu  +100      +160     60        —       +200 agent  beto     K3
e     00:00 (2nd) —         —        —         —       —           —        K4 (also 3 days ago)
====  ==========  ========  =======  ========  ======  ==========  =======  ===========
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.errors import InvalidInput
from core.reports import (
    Dimension,
    LocalTime,
    Measures,
    QueueSla,
    ReportConversation,
    ReportInput,
    TrafficCount,
    dispositions,
    frt_histogram,
    parse_dimensions,
    percentile,
    range_of,
    summary,
    surveys,
    topics,
    volume,
    words,
)

BOGOTA = ZoneInfo("America/Bogota")
T = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # 2026-03-01 19:00 in Bogotá
H = 3600.0
C, Q = "campaign-c", "queue-q"

A = ReportConversation(
    opened_at=T,
    campaign_id=C,
    customer_id="K1",
    channel="whatsapp",
    queue_id=Q,
    answered_queue_id=Q,
    enqueued_at=T,
    assigned_at=T + 30,
    waited_s=30,
    agent_id="ana",
    first_response_at=T + 90,
    closed_at=T + 630,
    close_reason="agent",
    disposition_code="promesa",
    disposition_amount="100000",
    disposition_date="2026-03-10",
    first_text="Hola, quiero pagar mi deuda de 120.000",
    transfers=1,
    active_s=600,
    survey_kind="csat",
    survey_sent_at=T + 700,
    survey_score=5,
)
B = ReportConversation(
    opened_at=T + H,
    campaign_id=C,
    customer_id="K2",
    channel="whatsapp",
    queue_id=Q,
    answered_queue_id=Q,
    enqueued_at=T + H,
    assigned_at=T + H + 120,
    waited_s=90,  # 30 s of the wait fell outside the queue's hours
    agent_id="ana",
    first_response_at=T + H + 180,
    closed_at=T + H + 720,
    close_reason="agent",
    disposition_code="promesa",
    disposition_amount="50000",
    disposition_date="2026-03-10",
    reopened_at=T + 5 * H,
    first_text="Buenas tardes, necesito el PAGO de mi deuda",
    requeues=1,
    active_s=500,
    survey_kind="csat",
    survey_sent_at=T + H + 800,
    survey_score=3,
)
C_ = ReportConversation(
    opened_at=T + 2 * H,
    campaign_id=C,
    customer_id="K1",
    channel="instagram",
    queue_id=Q,
    enqueued_at=T + 2 * H,
    closed_at=T + 2 * H + 300,
    close_reason="abandoned",
    first_text="¿Dónde pago? Mi tarjeta",
    survey_kind="nps",
    survey_sent_at=T + 2 * H + 400,
)
D = ReportConversation(
    opened_at=T + 3 * H,
    campaign_id=C,
    customer_id="K3",
    channel="whatsapp",
    triage_option="pagos",
    queue_id=Q,
    answered_queue_id=Q,
    enqueued_at=T + 3 * H + 100,
    assigned_at=T + 3 * H + 160,
    waited_s=60,
    agent_id="beto",
    closed_at=T + 3 * H + 200,
    close_reason="agent",
    disposition_code="no_contesta",
    first_text="Pagué ayer, información del envío",
    survey_kind="nps",
    survey_sent_at=T + 3 * H + 300,
    survey_score=9,
)
E = ReportConversation(opened_at=T + 5 * H, campaign_id=C, customer_id="K4", channel="email")
ROWS = [A, B, C_, D, E]
HISTORY = [(r.customer_id, r.opened_at) for r in ROWS] + [("K4", T - 3 * 24 * H)]

SPEC = ReportInput(
    range=range_of(date(2026, 3, 1), date(2026, 3, 2), BOGOTA),
    zones={C: BOGOTA},
    slas={Q: QueueSla(answer_within_s=60, target_pct=80)},
    names={C: "cobranzas", Q: "pagos", "ana": "Ana", "beto": "Beto"},
)


def total() -> Measures:
    (row,) = summary(ROWS, SPEC, history=HISTORY)
    return row


def test_dates_are_whole_local_days_and_to_is_included() -> None:
    r = range_of(date(2026, 3, 1), date(2026, 3, 2), BOGOTA)
    assert r.start == datetime(2026, 3, 1, 5, tzinfo=UTC).timestamp()
    assert r.end == datetime(2026, 3, 3, 5, tzinfo=UTC).timestamp()


def test_datetimes_are_local_when_naive_and_to_is_excluded() -> None:
    r = range_of(datetime(2026, 3, 1, 8), datetime(2026, 3, 1, 20, tzinfo=UTC), BOGOTA)
    assert r.start == datetime(2026, 3, 1, 13, tzinfo=UTC).timestamp()
    assert r.end == datetime(2026, 3, 1, 20, tzinfo=UTC).timestamp()
    assert r.end not in r


def test_a_range_that_ends_before_it_starts_is_refused_naming_to() -> None:
    with pytest.raises(InvalidInput) as caught:
        range_of(date(2026, 3, 2), date(2026, 3, 1), BOGOTA)
    assert caught.value.field == "to"


def test_an_unknown_dimension_is_refused_naming_group_by() -> None:
    assert parse_dimensions("queue, day") == (Dimension.QUEUE, Dimension.DAY)
    with pytest.raises(InvalidInput) as caught:
        parse_dimensions("queue,week")
    assert caught.value.field == "group_by"


def test_local_hour_and_day_follow_the_zone_across_a_dst_change() -> None:
    madrid = LocalTime(ZoneInfo("Europe/Madrid"))
    before = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()  # 01:30 CET
    after = datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp()  # 03:30 CEST
    assert (madrid.hour(before), madrid.hour(after)) == (1, 3)
    assert madrid.day(datetime(2026, 3, 28, 23, 30, tzinfo=UTC).timestamp()) == date(2026, 3, 29)


def test_offered_answered_abandoned_and_answer_rate() -> None:
    row = total()
    assert row.conversations == 5
    assert row.offered == 4  # a b c d entered the queue; e is still in the menu
    assert row.answered == 3  # a b d were assigned
    assert row.abandoned == 2  # c left, d was closed by its agent without a reply
    assert row.answer_rate == 0.75


def test_first_response_time_from_opening_to_the_first_agent_reply() -> None:
    row = total()  # a 90 s, b 180 s; c, d and e had no reply
    assert (row.frt_p50_s, row.frt_p90_s, row.frt_mean_s) == (135.0, 171.0, 135.0)


def test_the_first_response_times_are_counted_in_fixed_buckets() -> None:
    assert total().frt_histogram == (0, 2, 0, 0, 0, 0)  # a 90 s and b 180 s: both 1–5 min
    # A bucket holds its lower bound; a reply stamped before the opening (clock skew) is < 1 min.
    times = [-3, 0, 59.9, 60, 299, 300, 899.9, 900, 3600, 14399, 14400, 90000]
    assert frt_histogram(times) == (3, 2, 2, 1, 2, 2)
    (nothing,) = summary([E], SPEC)
    assert nothing.frt_histogram == (0, 0, 0, 0, 0, 0)


def test_percentiles_interpolate_like_percentile_cont() -> None:
    assert percentile([10, 20, 30, 40], 0.5) == 25.0
    assert percentile([10, 20, 30, 40], 0.9) == pytest.approx(37.0)
    assert percentile([7], 0.9) == 7 and percentile([], 0.5) is None


def test_speed_of_answer_all_hours_and_open_hours() -> None:
    row = total()
    assert row.asa_s == 70.0  # (30 + 120 + 60) / 3
    assert row.asa_open_s == 60.0  # (30 + 90 + 60) / 3: b waited 30 s while the queue was closed


def test_handle_time_and_active_time() -> None:
    row = total()
    assert row.aht_s == pytest.approx((600 + 600 + 40) / 3)  # closed − assigned of a b d
    assert row.active_mean_s == pytest.approx((600 + 500 + 0) / 3)


def test_sla_over_answered_and_over_offered() -> None:
    row = total()  # within 60 s of open time: a (30) and d (60); b (90) missed; c never answered
    assert (row.sla_met, row.sla_answered, row.sla_offered) == (2, 3, 4)
    assert row.sla_pct_of_answered == pytest.approx(200 / 3)
    assert row.sla_pct_of_offered == 50.0
    assert row.sla_target_pct == 80


def test_a_queue_without_an_sla_is_left_out_of_the_sla_figures() -> None:
    spec = ReportInput(range=SPEC.range, zones=SPEC.zones)
    (row,) = summary(ROWS, spec)
    assert (row.sla_met, row.sla_answered, row.sla_pct_of_answered) == (0, 0, None)


def test_transfers_requeues_and_reopen_rate() -> None:
    row = total()
    assert (row.transfers, row.requeues) == (1, 1)
    assert row.transfers_per_conversation == 0.2
    assert (row.closed, row.reopened, row.reopen_rate) == (4, 1, 0.25)


def test_repeat_contacts_within_24_hours_and_7_days_on_any_channel() -> None:
    row = total()  # c: K1 again 2 h after a (on instagram); e: K4 again 3 days later
    assert (row.repeat_24h, row.repeat_7d) == (1, 2)
    assert (row.repeat_24h_rate, row.repeat_7d_rate) == (0.2, 0.4)


def test_grouped_by_local_day_and_hour_in_the_campaigns_zone() -> None:
    by_day = summary(ROWS, SPEC, [Dimension.DAY], history=HISTORY)
    assert [(r.group, r.conversations) for r in by_day] == [
        (((Dimension.DAY, "2026-03-01"),), 4),
        (((Dimension.DAY, "2026-03-02"),), 1),
    ]
    by_hour = summary(ROWS, SPEC, [Dimension.HOUR])
    assert sorted(int(r.group[0][1]) for r in by_hour) == [0, 19, 20, 21, 22]


def test_grouped_by_queue_agent_and_campaign_by_name() -> None:
    by_agent = {r.group[0][1]: r for r in summary(ROWS, SPEC, [Dimension.AGENT])}
    assert set(by_agent) == {"Ana", "Beto", ""}  # "": not answered
    assert by_agent["Ana"].answered == 2 and by_agent["Ana"].aht_s == 600
    (by_queue, no_queue) = sorted(
        summary(ROWS, SPEC, [Dimension.QUEUE, Dimension.CAMPAIGN]), key=lambda r: r.group, reverse=True
    )
    assert by_queue.group == ((Dimension.QUEUE, "pagos"), (Dimension.CAMPAIGN, "cobranzas"))
    assert by_queue.conversations == 4 and no_queue.conversations == 1


def test_conversations_outside_the_range_are_not_counted() -> None:
    early = ReportConversation(
        opened_at=SPEC.range.start - 1, campaign_id=C, enqueued_at=SPEC.range.start - 1
    )
    (row,) = summary([*ROWS, early], SPEC)
    assert row.conversations == 5


TRAFFIC = [
    TrafficCount(C, "whatsapp", "in", T, 10),
    TrafficCount(C, "whatsapp", "out", T, 7),
    TrafficCount(C, "instagram", "in", T, 2),
    TrafficCount(C, "whatsapp", "in", T + 5 * H, 3),  # local 00:00 of the 2nd
    TrafficCount(C, "whatsapp", "in", T - 24 * H, 99),  # 28 Feb locally: outside
]


def test_volume_in_and_out_per_channel_and_local_day() -> None:
    assert [(v.messages_in, v.messages_out) for v in volume(TRAFFIC, SPEC)] == [(15, 7)]
    rows = volume(TRAFFIC, SPEC, [Dimension.CHANNEL, Dimension.DAY])
    assert [(dict(v.group), v.messages_in, v.messages_out) for v in rows] == [
        ({Dimension.CHANNEL: "instagram", Dimension.DAY: "2026-03-01"}, 2, 0),
        ({Dimension.CHANNEL: "whatsapp", Dimension.DAY: "2026-03-01"}, 10, 7),
        ({Dimension.CHANNEL: "whatsapp", Dimension.DAY: "2026-03-02"}, 3, 0),
    ]


def test_volume_cannot_be_grouped_by_queue() -> None:
    with pytest.raises(InvalidInput) as caught:
        volume(TRAFFIC, SPEC, [Dimension.QUEUE])
    assert caught.value.field == "group_by"


def test_disposition_mix_and_promises_by_date() -> None:
    (report,) = dispositions(ROWS, SPEC)
    assert report.with_disposition == 3
    assert [(m.code, m.count, round(m.share, 4)) for m in report.mix] == [
        ("promesa", 2, 0.6667),
        ("no_contesta", 1, 0.3333),
    ]
    assert (report.promises, report.promised_amount) == (2, Decimal("150000"))
    assert [(p.date, p.count, p.amount) for p in report.by_date] == [("2026-03-10", 2, Decimal("150000"))]


def test_an_amount_without_a_date_is_a_payment_recorded_not_a_promise() -> None:
    paid = dataclasses.replace(D, disposition_code="pago_realizado", disposition_amount="20000")
    (report,) = dispositions([A, B, C_, paid, E], SPEC)
    assert (report.promises, report.promised_amount) == (2, Decimal("150000"))
    assert [(m.code, m.count) for m in report.mix] == [("promesa", 2), ("pago_realizado", 1)]


def test_promises_kept_broken_and_pending_with_what_was_paid() -> None:
    a = dataclasses.replace(A, promise_outcome="kept", paid_amount="100000")
    b = dataclasses.replace(B, promise_outcome="broken", paid_amount="20000.50")
    (report,) = dispositions([a, b, C_, D, E], SPEC)
    assert (report.promises, report.kept, report.broken, report.pending) == (2, 1, 1, 0)
    assert report.paid_amount == Decimal("120000.50")
    (unmarked,) = dispositions(ROWS, SPEC)
    assert (unmarked.kept, unmarked.broken, unmarked.pending, unmarked.paid_amount) == (0, 0, 2, Decimal(0))


def test_a_mark_on_a_disposition_without_a_date_is_not_a_promise_kept() -> None:
    paid = dataclasses.replace(
        D,
        disposition_code="pago_realizado",
        disposition_amount="20000",
        promise_outcome="kept",
        paid_amount="5",
    )
    (report,) = dispositions([A, B, C_, paid, E], SPEC)
    assert (report.kept, report.pending, report.paid_amount) == (0, 2, Decimal(0))


def test_csat_and_nps_with_response_rate() -> None:
    csat, nps = surveys(ROWS, SPEC)
    assert (csat.kind, csat.sent, csat.answered, csat.response_rate) == ("csat", 2, 2, 1.0)
    assert (csat.mean_score, csat.csat_pct) == (4.0, 50.0)  # 5 and 3: one of two is 4–5
    assert (nps.kind, nps.sent, nps.answered, nps.response_rate) == ("nps", 2, 1, 0.5)
    assert (nps.promoters, nps.passives, nps.detractors, nps.nps) == (1, 0, 0, 100.0)


def test_nps_subtracts_detractors_from_promoters() -> None:
    scored = [
        ReportConversation(opened_at=T, campaign_id=C, survey_kind="nps", survey_sent_at=T, survey_score=s)
        for s in (10, 9, 8, 6, 0)
    ]
    (nps,) = surveys(scored, SPEC)
    assert (nps.promoters, nps.passives, nps.detractors, nps.nps) == (2, 1, 2, 0.0)


def test_words_drop_stop_words_numbers_and_short_tokens_and_match_without_accents() -> None:
    assert words("Hola, quiero PAGAR mi deuda de 120.000 ya") == [("pagar", "pagar"), ("deuda", "deuda")]
    assert words("Información del envío, pagué 2x1") == [
        ("informacion", "información"),
        ("envio", "envío"),
        ("pague", "pagué"),
    ]
    assert words("Señor, ¿está?") == [("señor", "señor")]


def test_topics_per_queue_menu_choices_dispositions_and_commonest_words() -> None:
    by_queue = {t.group: t for t in topics(ROWS, SPEC)}
    pagos = by_queue[((Dimension.QUEUE, "pagos"),)]
    assert pagos.triage_options == (("pagos", 1),)
    assert pagos.dispositions == (("promesa", 2), ("no_contesta", 1))
    assert pagos.top_words[:3] == (("deuda", 2), ("pago", 2), ("ayer", 1))
    assert dict(pagos.top_words)["información"] == 1
