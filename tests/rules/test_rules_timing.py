"""Alert timing of the generated rules, proven by the real ``promtool test rules``.

A 99.9 % / 30d events SLO gets synthetic request counters (1 sample a minute,
10 000 requests a minute). Every expected time comes from
``tokenslo.core.burnrate``; promtool then says which ``SLOErrorBudgetBurn``
alerts fire at those times. Each check lists the *complete* set of firing burn
alerts, so "never pages" is checked, not assumed.

promtool evaluates every rule group at the test file's ``evaluation_interval`` and
ignores the group's own ``interval``; the file therefore uses the generated
group interval (30s), so the test sees what Prometheus would.

Slack, and why:
- SCRAPE (1m): a ratio only moves when a new sample lands, so a crossing can be
  seen up to one scrape interval late (or, by the range's sample alignment, early).
- EVAL (30s): the alert is only re-evaluated every interval.
- BASE (5m): the 1d/3d/30d ratios are sums of 5m counts, which smear the edge of
  the window by up to one 5m window.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from promtool_run import run_rule_tests
from rules_fixtures import events_bad

from tokenslo.core import burnrate as br
from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import BASE_WINDOW, generate_rule_groups
from tokenslo.rules.promtool_tests import (
    alert_check,
    burn_alert_expectation,
    counter_values,
    find_alert,
    no_data_expectation,
    promtool_group,
)

MIN = 60.0
HOUR = br.HOUR
DAY = br.DAY
SCRAPE = MIN
REQUESTS_PER_SCRAPE = 10_000
GOOD = 'idp_token_requests_total{code="200"}'
BAD = 'idp_token_requests_total{code="500"}'

SLO = events_bad(objective=99.9, window_days=30)
GROUPS = generate_rule_groups([SLO])
EVAL = parse_duration(GROUPS[0]["interval"])
POLICY = {(w.severity, w.long_window): w for w in br.policy_for(SLO)}
TICKET_EVAL = 2 * MIN  # see ticket_only()
PAGE_1H = POLICY[("page", HOUR)]
TICKET_3D = POLICY[("ticket", 3 * DAY)]

pytestmark = pytest.mark.prometheus


def traffic(segments: list[tuple[float, float]]) -> dict[str, str]:
    """Counters for consecutive (error rate, seconds) segments at REQUESTS_PER_SCRAPE."""
    steps = [(rate, round(seconds / SCRAPE)) for rate, seconds in segments]
    return {
        GOOD: counter_values([((1 - r) * REQUESTS_PER_SCRAPE, n) for r, n in steps]),
        BAD: counter_values([(r * REQUESTS_PER_SCRAPE, n) for r, n in steps]),
    }


def detection(window, error_rate: float) -> float:
    seconds = br.detection_time(
        br.factor_of(SLO, window), SLO.objective, window.long_window, error_rate
    )
    assert seconds is not None, "this scenario's rate must cross the threshold"
    return seconds


def burn(window) -> dict:
    """The expected firing alert for one policy window pair."""
    return burn_alert_expectation(
        SLO,
        GROUPS,
        long_window=_nominal(window.long_window),
        short_window=_nominal(window.short_window),
    )


def _nominal(seconds: float) -> str:
    return format_duration(seconds)


def burn_check(at: float, *firing: dict) -> dict:
    return alert_check(at, c.BURN_ALERT, list(firing))


# --- scenarios: (name, series, checks) -------------------------------------------------------


def outage() -> dict:
    """a) 100 % errors after 6h healthy: the 1h/5m page fires within
    detection_time + one evaluation interval + for. The outage starts on a scrape
    boundary and 51.84s < SCRAPE, so the first sample with errors is also the
    first evaluation after the theoretical crossing: no scrape slack is needed."""
    t0 = 6 * HOUR
    theory = detection(PAGE_1H, 1.0)
    assert theory == pytest.approx(51.84)
    return promtool_group(
        "a-full-outage",
        SCRAPE,
        traffic([(0, t0), (1.0, 10 * MIN)]),
        [
            burn_check(t0 - MIN),
            burn_check(t0 + theory - 1),  # just before theory: not even pending
            burn_check(t0 + theory + PAGE_1H.for_ - 1),  # pending at most
            burn_check(t0 + theory + EVAL + PAGE_1H.for_, burn(PAGE_1H)),
        ],
    )


def two_percent() -> dict:
    """b) 2 % errors pages within 43.2 min + for + SCRAPE + EVAL."""
    t0 = 6 * HOUR
    theory = detection(PAGE_1H, 0.02)
    assert theory == pytest.approx(43.2 * MIN)
    slack = SCRAPE + EVAL
    return promtool_group(
        "b-two-percent",
        SCRAPE,
        traffic([(0, t0), (0.02, 90 * MIN)]),
        [
            burn_check(t0 + theory - 1),
            burn_check(t0 + theory + PAGE_1H.for_ + slack, burn(PAGE_1H)),
        ],
    )


def low_rate() -> dict:
    """c) 0.05 % (half the budget rate) never alerts over 3 days.

    Evaluated every TICKET_EVAL (2m): the error rate never changes, so no crossing can
    fall between two evaluations, and promtool's work (every evaluation sums the long
    windows' samples, so it grows with the square of their number) drops manifold.
    The 30s cadence itself is what a, b, e and f run at."""
    end = 3 * DAY
    assert all(
        br.detection_time(br.factor_of(SLO, w), SLO.objective, w.long_window, 0.0005) is None
        for w in POLICY.values()
    )
    checks = [burn_check(h * HOUR) for h in range(1, 72)] + [burn_check(end)]
    return promtool_group("c-half-budget", SCRAPE, traffic([(0.0005, end)]), checks)


def ticket_only() -> dict:
    """d) 0.2 % after 3d healthy opens the 3d/6h ticket at 36h (+ for + slack), never a page.

    Evaluated every TICKET_EVAL (2m), not 30s: promtool's test engine caps one range
    selection at 10 000 samples, which the 30d budget rule's range over 30s samples
    passes after 83h, and this scenario needs 3d of history plus 37.5h; each evaluation
    sums the 1d/3d/30d windows' samples, so a coarser cadence also cuts promtool's work
    by more than it coarsens. Against a 72m ``for`` it is immaterial; the slack includes it.
    """
    t0 = 3 * DAY
    theory = detection(TICKET_3D, 0.002)
    assert theory == pytest.approx(36 * HOUR)
    slack = BASE_WINDOW + SCRAPE + TICKET_EVAL
    pages = [w for w in POLICY.values() if w.severity == "page"]
    assert all(
        br.detection_time(br.factor_of(SLO, w), SLO.objective, w.long_window, 0.002) is None
        for w in pages
    )
    opens = t0 + theory + TICKET_3D.for_ + slack
    end = opens + 2 * HOUR
    checks = [burn_check(h * 6 * HOUR) for h in range(1, 12)]  # the healthy 3 days
    hour = t0 + HOUR
    while hour < end:
        if hour < t0 + theory - slack:
            checks.append(burn_check(hour))
        elif hour >= opens:
            checks.append(burn_check(hour, burn(TICKET_3D)))
        hour += HOUR
    checks += [
        burn_check(t0 + theory - slack),
        burn_check(opens, burn(TICKET_3D)),
        burn_check(end, burn(TICKET_3D)),
    ]
    return promtool_group(
        "d-ticket-not-page", SCRAPE, traffic([(0, t0), (0.002, end - t0 + MIN)]), checks
    )


def recovery() -> dict:
    """e) After a 1-minute full outage the page resolves within the 5m short window
    (pair_reset_time) ± SCRAPE + EVAL. One minute is past the 1h page's 51.84s but
    below every other pair's threshold, given a full day of healthy history."""
    t0, duration = DAY, MIN
    t1 = t0 + duration
    for w in POLICY.values():
        if w is not PAGE_1H:
            errors_allowed = br.threshold_of(SLO, w) * min(w.long_window, t0)
            assert duration < errors_allowed, f"{w} would also fire"
    reset = br.pair_reset_time(
        br.factor_of(SLO, PAGE_1H),
        SLO.objective,
        PAGE_1H.long_window,
        PAGE_1H.short_window,
        1.0,
        duration,
    )
    assert reset < PAGE_1H.short_window
    slack = SCRAPE + EVAL
    theory = detection(PAGE_1H, 1.0)
    series = traffic([(0, t0), (1.0, duration), (0, 20 * MIN)])
    return promtool_group(
        "e-recovery",
        SCRAPE,
        series,
        [
            burn_check(t0 + theory + EVAL + PAGE_1H.for_, burn(PAGE_1H)),
            burn_check(t1 + reset - slack, burn(PAGE_1H)),
            burn_check(t1 + reset + slack),
            burn_check(t1 + 20 * MIN),
        ],
    )


def no_data() -> dict:
    """f) When the SLI's counters vanish, SLONoData fires: the 5m count disappears once
    its window holds under two samples (≤ BASE after the last one), then ``for``."""
    stop = 2 * HOUR
    series = {name: values + " _x60" for name, values in traffic([(0, stop)]).items()}
    rule_for = parse_duration(find_alert(GROUPS, c.NO_DATA_ALERT)["for"])
    return promtool_group(
        "f-no-data",
        SCRAPE,
        series,
        [
            alert_check(stop + rule_for, c.NO_DATA_ALERT, []),
            alert_check(
                stop + BASE_WINDOW + rule_for + EVAL,
                c.NO_DATA_ALERT,
                [no_data_expectation(SLO, GROUPS)],
            ),
            burn_check(stop + BASE_WINDOW + rule_for + EVAL),
        ],
    )


# name → (scenario, evaluation interval of its promtool run)
SCENARIOS = {
    "a-full-outage": (outage, EVAL),
    "b-two-percent": (two_percent, EVAL),
    "c-half-budget": (low_rate, TICKET_EVAL),
    "d-ticket-not-page": (ticket_only, TICKET_EVAL),
    "e-recovery": (recovery, EVAL),
    "f-no-data": (no_data, EVAL),
}


def run_promtool_test(tmp_path: Path, groups: list[dict], evaluation_interval: float = EVAL):
    return run_rule_tests(tmp_path, [SLO], groups, evaluation_interval)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_alert_timing_matches_the_burn_rate_math(tmp_path, scenario):
    build, evaluation_interval = SCENARIOS[scenario]
    result = run_promtool_test(tmp_path, [build()], evaluation_interval)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_makes_promtool_fail(tmp_path):
    """The harness can fail: claim the page fires one second before the theory allows."""
    group = outage()
    early = 6 * HOUR + detection(PAGE_1H, 1.0) - 1
    group["alert_rule_test"].append(burn_check(early, burn(PAGE_1H)))
    result = run_promtool_test(tmp_path, [group])
    assert result.returncode == 1
    assert c.BURN_ALERT in result.stderr and "FAILED" in result.stderr
