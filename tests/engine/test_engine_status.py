"""Status computation from fetched numbers (no Prometheus): the pure half of evaluate()."""

from __future__ import annotations

import json

import pytest
from engine_slos import DAY, events_slo, policy

from tokenslo.core import burnrate
from tokenslo.core.model import Alerting
from tokenslo.engine import evaluator as ev
from tokenslo.errors import CheckFailed, UnavailableError

AT = 1_700_000_000.0
TOTAL = 1_000_000.0


def counts_with(ratios: dict[float, float], default: float, slo) -> dict[float, ev.WindowCounts]:
    """Counts for every window the SLO needs, with the given error ratio per window."""
    return {
        w: ev.WindowCounts(errors=ratios.get(w, default) * TOTAL, total=TOTAL)
        for w in ev.status_windows(slo)
    }


def test_ok_status_numbers_follow_the_formulas():
    slo = events_slo("a")  # 99.9 over 30d: budget ratio 0.001
    counts = counts_with({30 * DAY: 0.0004}, 0.0005, slo)
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "ok"
    assert status.sli == pytest.approx(0.9996, abs=1e-12)
    assert status.error_ratio == pytest.approx(0.0004)
    assert status.error_budget_remaining == pytest.approx(0.6)
    assert status.burn_rates == {
        w: pytest.approx(0.5) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    }
    assert status.exhaustion_window == "1h"
    assert status.time_to_exhaustion == pytest.approx(0.6 * 30 * DAY / 0.5)
    assert [a.firing for a in status.alerts] == [False] * 4
    assert [a.factor for a in status.alerts] == pytest.approx([14.4, 6, 3, 1])


def test_page_when_both_windows_of_a_page_condition_burn_fast():
    slo = events_slo("a")
    counts = counts_with({3600: 0.02, 300: 0.03, 30 * DAY: 0.0002}, 0.0001, slo)
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "page"
    fast = status.alerts[0]
    assert (fast.severity, fast.long_window, fast.short_window) == ("page", 3600, 300)
    assert fast.firing
    assert (fast.long_burn, fast.short_burn) == (pytest.approx(20), pytest.approx(30))
    assert fast.threshold == pytest.approx(0.0144)
    assert not any(a.firing for a in status.alerts[1:])
    assert "1h" in status.reason and "5m" in status.reason
    # exhaustion at the 1h burn rate: 80% of 30d budget at 20× → 1.2 days
    assert status.time_to_exhaustion == pytest.approx(0.8 * 30 * DAY / 20)


def test_long_window_alone_does_not_fire():
    slo = events_slo("a")
    counts = counts_with({3600: 0.02}, 0.0001, slo)  # 5m back to normal
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "ok"
    assert status.alerts[0].long_burn == pytest.approx(20) and not status.alerts[0].firing


def test_ticket_state():
    slo = events_slo("a")
    counts = counts_with({DAY: 0.004, 7200: 0.005}, 0.0001, slo)  # 4×, 5× > 3×
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "ticket"
    assert [a.firing for a in status.alerts] == [False, False, True, False]


def test_no_data_when_an_alert_window_total_is_absent():
    slo = events_slo("a")
    counts = counts_with({}, 0.0005, slo)
    counts[300] = ev.WindowCounts(errors=0.0, total=None)
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "no_data"
    assert status.reason == "no data: total series absent over 5m"
    assert status.burn_rates["5m"] is None
    assert status.sli == pytest.approx(0.9995)  # what is known is still reported


def test_no_data_when_nothing_came_back():
    status = ev.status_from_counts(events_slo("a"), {}, AT)
    assert status.state == "no_data" and status.sli is None
    assert status.error_budget_remaining is None and status.time_to_exhaustion is None


def test_no_traffic_is_distinct_from_no_data_and_from_ok():
    slo = events_slo("a")
    counts = {w: ev.WindowCounts(errors=0.0, total=0.0) for w in ev.status_windows(slo)}
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "no_traffic"
    assert status.sli is None  # 0/0 is not 100%
    assert status.reason == "no traffic: total is 0 over 30d"


def test_quiet_short_window_has_no_burn_rate_but_is_not_no_traffic():
    slo = events_slo("a")
    counts = counts_with({}, 0.0005, slo)
    counts[300] = ev.WindowCounts(errors=0.0, total=0.0)
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "ok" and status.burn_rates["5m"] is None


def test_overspent_budget_exhausts_now():
    slo = events_slo("a")
    counts = counts_with({30 * DAY: 0.002}, 0.0, slo)
    status = ev.status_from_counts(slo, counts, AT)
    assert status.error_budget_remaining == pytest.approx(-1.0)
    assert status.time_to_exhaustion == 0.0


def test_exhaustion_window_falls_back_to_ticket_when_paging_is_off():
    slo = events_slo("a", alerting=Alerting(page=False))
    assert ev.exhaustion_window(burnrate.policy_for(slo)) == DAY
    assert [a.severity for a in ev.status_from_counts(slo, {}, AT).alerts] == ["ticket"] * 2


def test_custom_policy_windows():
    slo = events_slo("a", objective=99.0, window=3600, alerting=policy(("page", 0.1, 60, 10, 0)))
    counts = counts_with({60: 0.2, 10: 0.5}, 0.01, slo)  # factor 6 → threshold 0.06
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "page"
    assert status.burn_rates == {"10s": pytest.approx(50), "1m": pytest.approx(20)}
    assert status.alerts[0].factor == pytest.approx(6)


def test_verdict_page_fails_unknown_is_unavailable_ticket_passes():
    slo = events_slo("a")
    page = ev.status_from_counts(slo, counts_with({3600: 0.1, 300: 0.1}, 0, slo), AT)
    ticket = ev.status_from_counts(slo, counts_with({DAY: 0.01, 7200: 0.01}, 0, slo), AT)
    nodata = ev.status_from_counts(events_slo("gone"), {}, AT)
    assert ev.verdict([ticket]) is None
    assert isinstance(ev.verdict([ticket, page]), CheckFailed)
    unknown = ev.verdict([ticket, nodata])
    assert isinstance(unknown, UnavailableError) and unknown.exit_code == 3
    assert str(unknown) == "no data for SLO(s): gone (no data never passes)"
    assert isinstance(ev.verdict([nodata, page]), CheckFailed)


def test_to_json_is_serialisable_and_named():
    slo = events_slo("a")
    status = ev.status_from_counts(slo, counts_with({3600: 0.1, 300: 0.1}, 0.0, slo), AT)
    [row] = json.loads(json.dumps(ev.to_json([status]), allow_nan=False))
    assert row["name"] == "a" and row["objective"] == 99.9 and row["state"] == "page"
    assert row["at"] == "2023-11-14T22:13:20.000Z"
    assert row["window"] == "30d"
    assert row["burn_rates"]["1h"] == pytest.approx(100)
    assert row["error_budget_remaining"] == pytest.approx(1.0)
    assert row["alerts"][0]["long_window"] == "1h" and row["alerts"][0]["firing"] is True
