"""The period-to-date sum of the calendar rules, asked of a real Prometheus at instants just
before and after period boundaries.

The count summed is ``vector(1)``: every step counts 1, so the record is the number of
steps of the current period that have ended (a step t covers (t − step, t]). Expected
values by hand, e.g. February 2024 (29 days) at 23:59:59 on the 29th: hourly steps from
1 February 01:00 to 29 February 23:00, 29 × 24 − 1 = 695. No data is needed, so the
instants can be anywhere; Prometheus evaluates the expression exactly as a rule would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenslo.core.model import Calendar
from tokenslo.prometheus.client import PromClient
from tokenslo.rules.calendar import CalendarPlan, period_to_date

pytestmark = pytest.mark.prometheus

H, M5 = 3600.0, 300.0


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


# (period, UTC offset, step, instant, steps counted by hand; None: no step ended yet)
CASES = [
    # months, hourly steps: March 2024 starts 2024-03-01 00:00 UTC
    ("month", 0, H, utc(2024, 2, 29, 23, 59, 59), 29 * 24 - 1),
    ("month", 0, H, utc(2024, 3, 1, 0, 30), None),
    # a 31d range from here reaches 30 January: a parity would count January's steps too
    ("month", 0, H, utc(2024, 3, 1, 5), 5),
    ("month", 0, H, utc(2024, 3, 31, 23, 30), 31 * 24 - 1),
    ("month", 0, H, utc(2024, 4, 1, 1), 1),
    # quarters: Q1 2024 has 31 + 29 + 31 = 91 days
    ("quarter", 0, H, utc(2024, 3, 31, 23), 91 * 24 - 1),
    ("quarter", 0, H, utc(2024, 4, 1, 2), 2),
    ("quarter", 0, H, utc(2024, 7, 1, 0, 59), None),
    # years: 2024 has 366 days
    ("year", 0, H, utc(2024, 12, 31, 23), 366 * 24 - 1),
    ("year", 0, H, utc(2025, 1, 1, 3), 3),
    ("year", 0, H, utc(2026, 1, 1, 0), None),
    # weeks start on Monday: 2024-03-04 was one; 5m steps, 7 × 288 per week
    ("week", 0, M5, utc(2024, 3, 3, 23, 55), 7 * 288 - 1),
    ("week", 0, M5, utc(2024, 3, 4, 0, 4), None),
    ("week", 0, M5, utc(2024, 3, 4, 0, 10), 2),
    # UTC+3 (Etc/GMT-3): 1 March starts 29 February 21:00 UTC
    ("day", 3 * H, M5, utc(2024, 2, 29, 20, 55), 287),
    ("day", 3 * H, M5, utc(2024, 2, 29, 21, 15), 3),
    # UTC+5:30 (Asia/Kolkata), a month on 5m steps: March starts 29 February 18:30 UTC
    ("month", 5.5 * H, M5, utc(2024, 2, 29, 18, 25), 29 * 288 - 1),
    ("month", 5.5 * H, M5, utc(2024, 2, 29, 18, 40), 2),
    # UTC−5 (Etc/GMT+5): 2024 starts 1 January 05:00 UTC
    ("year", -5 * H, H, utc(2024, 1, 1, 4, 30), 365 * 24 - 1),
    ("year", -5 * H, H, utc(2024, 1, 1, 7), 2),
]


def test_period_to_date_counts_the_steps_of_the_current_period(prometheus_factory):
    prom = prometheus_factory({"global": {"scrape_interval": "15s"}})
    got, want = [], []
    with PromClient(prom.url) as client:
        for period, offset, step, at, steps in CASES:
            expr = period_to_date("vector(1)", CalendarPlan(Calendar(period), offset, step))
            result = client.query(expr, at)
            local = datetime.fromtimestamp(at, UTC) + timedelta(seconds=offset)
            got.append((period, local.isoformat(), [float(s["value"][1]) for s in result]))
            want.append((period, local.isoformat(), [] if steps is None else [float(steps)]))
    assert got == want
