"""The report benchmark's month (``bench.reports``): what it loads, the same for a seed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from bench.reports import DAYS, REPORT_COLUMNS, START, MonthOfTraffic


def _month(conversations: int = 2000, seed: int = 16) -> MonthOfTraffic:
    ids = [uuid.UUID(int=i + 1) for i in range(10)]
    return MonthOfTraffic(ids[0], ids[1], ids[2:5], ids[5:], conversations, seed)


def test_one_report_row_per_conversation_all_opened_in_the_month() -> None:
    rows = list(_month().report_rows())
    assert len(rows) == 2000 and all(len(r) == len(REPORT_COLUMNS) for r in rows)
    opened = [r[REPORT_COLUMNS.index("opened_at")] for r in rows]
    assert all(START <= t < START + timedelta(days=DAYS) for t in opened)
    assert len({r[0] for r in rows}) == 2000  # conversation ids are distinct


def test_the_counters_add_up_to_ten_messages_per_conversation() -> None:
    month = _month()
    traffic = month.traffic_rows()
    assert sum(t[-1] for t in traffic) == month.messages == 20_000
    assert len({t[0] for t in traffic}) == len(traffic)  # one counter per bucket
    assert all(isinstance(t[5], datetime) and t[5].minute == 0 for t in traffic)


def test_customers_come_back_and_the_month_is_the_same_for_a_seed() -> None:
    rows = list(_month().report_rows())
    customers = [r[REPORT_COLUMNS.index("customer_id")] for r in rows]
    assert len(set(customers)) < len(customers)  # repeat contacts exist
    assert rows == list(_month().report_rows())
    assert rows != list(_month(seed=17).report_rows())


def test_the_rows_carry_what_every_report_reads() -> None:
    rows = list(_month().report_rows())

    def share(column: str) -> float:
        i = REPORT_COLUMNS.index(column)
        return sum(1 for r in rows if r[i] is not None) / len(rows)

    assert 0.75 < share("assigned_at") < 0.9
    assert 0.1 < share("disposition_amount") < 0.6
    assert 0.1 < share("survey_score") < 0.4
    assert share("first_text") == 1.0 and share("triage_option") > 0.2
