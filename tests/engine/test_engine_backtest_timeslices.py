"""The backtest of a timeslices SLO against Prometheus' own evaluation of its rules.

As in ``test_engine_backtest_rules``: one history (a sample every 15s) goes into a real
Prometheus as TSDB blocks, which the backtest queries, and sample for sample into
``promtool test rules``, where Prometheus' rule engine evaluates the generated rules
every 30s; the promtool file asserts, at every evaluation of the range, exactly the
burn alerts the backtest has firing then.

The SLO: 99.9 % of 1m slices good over 30d, a slice good at >= 95 % good requests,
the default policy. The history (100 requests a sample unless quiet):

- a 30-minute stretch at 3 % errors: every slice is good, so nothing alerts (an
  occurrence SLO of 99.9 % would page: 3 % is above its 1.44 % page threshold);
- a quiet stretch without requests: its slices are not judged, so windows over it
  hold fewer judgements;
- a 2-minute blip at 20 % errors from B = minute 290: a few bad judgements page
  through the 1h/5m pair, and the page resolves once the 5m window holds none. By
  hand: the slice judged at t holds the increments of the samples t-45s … t; the
  first with a failing increment (B+15s, B+30s: 10 % failed, above 5 %) is judged at
  B+30s, the last (B+105s, B+120s) at B+150s. The 1h window needs 2 bad judgements
  (0.0144 × 120 = 1.73), so the page fires at B+60s; the 5m window includes the
  judgement exactly 5m old on Prometheus 2, so it holds at B+150s+5m and the page
  resolves at the next evaluation, B+480s (Prometheus 3's left-open ranges: at B+450s);
- a 10-minute outage: every page, then both tickets after their ``for``, all
  resolving during the recovery.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from engine_backtest import (
    assert_rules_agree,
    backfilled_backtest,
    backfilled_prometheus,
    cumulative,
)
from engine_slos import good_events_slo

from tokenslo.core.durations import format_duration
from tokenslo.core.model import Timeslices
from tokenslo.engine import backtest as bt
from tokenslo.engine import observed
from tokenslo.engine import scoring as sc
from tokenslo.spec.incidents import IncidentEntry, IncidentsFile
from tokenslo.spec.policy import Policy

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
SCRAPE, EVAL = 15.0, 30.0
PER_SAMPLE = 100  # requests a sample
SLO = good_events_slo("sliced", objective=99.9, timeslices=Timeslices(window=MIN, target=95.0))
QUIET = None
# (error ratio or QUIET, minutes)
SEGMENTS = [
    (0.0, 120),
    (0.03, 30),  # minutes 120-150: good slices only
    (0.0, 60),
    (QUIET, 20),
    (0.0, 60),
    (0.2, 2),  # the blip: minutes 290-292
    (0.0, 58),
    (1.0, 10),  # the outage: minutes 350-360
    (0.0, 440),
]
MILD = (120 * MIN, 150 * MIN)
BLIP = 290 * MIN
RANGE = (HOUR, 800 * MIN)  # seconds after the history starts
LABELS = {"good": 'job="sliced",code="200"', "bad": 'job="sliced",code="500"'}


def increments() -> dict[str, list[tuple[float, int]]]:
    """(increment a sample, samples) per counter (label text)."""
    out: dict[str, list[tuple[float, int]]] = {LABELS["good"]: [], LABELS["bad"]: []}
    for ratio, minutes in SEGMENTS:
        samples = round(minutes * MIN / SCRAPE)
        bad = 0 if ratio is None else round(ratio * PER_SAMPLE)
        good = 0 if ratio is None else PER_SAMPLE - bad
        out[LABELS["good"]].append((good, samples))
        out[LABELS["bad"]].append((bad, samples))
    return out


def test_timeslices_backtest_starts_and_ends_equal_prometheus_rule_evaluation(tmp_path):
    t0 = (time.time() // DAY - 3) * DAY  # whole days, so 30s evaluations line up
    result, left_closed = backfilled_backtest(
        tmp_path / "prometheus", SLO, cumulative(increments()), SCRAPE, t0, RANGE, EVAL
    )
    intervals = result.intervals[SLO.name]
    # The scenario must exercise what it claims: pages and tickets that start and end,
    # the blip's page apart from the outage's, and nothing in the mild stretch.
    assert {i.severity for i in intervals} == {"page", "ticket"}, intervals
    assert all(i.end is not None for i in intervals), intervals
    pages_1h = [i for i in intervals if i.long_window == HOUR]
    assert len(pages_1h) == 2, pages_1h
    assert not [i for i in intervals if i.start - t0 < MILD[1] + 5 * MIN], intervals
    blip = pages_1h[0]
    resolved = BLIP + 150 + 5 * MIN + (EVAL if left_closed else 0)
    assert (blip.start - t0, blip.end - t0) == (BLIP + 60, resolved), blip
    assert result.no_data == []
    assert_rules_agree(tmp_path, result, SLO, increments(), SCRAPE, t0, RANGE, EVAL)
    for i in intervals:
        print(
            f"{i.severity} {format_duration(i.long_window)}: "
            f"{(i.start - t0) / MIN:.1f}m – {(i.end - t0) / MIN:.1f}m"
        )


def test_mean_ratio_backtest_starts_and_ends_equal_prometheus_rule_evaluation(tmp_path):
    """The same history for a mean-ratio SLO (the mean of the slices' error ratios): the
    3 % stretch now pages too (3 % is above the 1h page's 1.44 %)."""
    mean = dataclasses.replace(SLO, timeslices=Timeslices(window=MIN, method="mean-ratio"))
    t0 = (time.time() // DAY - 3) * DAY
    result, _ = backfilled_backtest(
        tmp_path / "prometheus", mean, cumulative(increments()), SCRAPE, t0, RANGE, EVAL
    )
    intervals = result.intervals[mean.name]
    assert {i.severity for i in intervals} == {"page", "ticket"}, intervals
    assert all(i.end is not None for i in intervals), intervals
    assert [i for i in intervals if MILD[0] < i.start - t0 < MILD[1]], intervals
    assert_rules_agree(tmp_path, result, mean, increments(), SCRAPE, t0, RANGE, EVAL)


def test_policy_scoring_pages_where_the_rules_do(tmp_path):
    """``slo backtest --policy`` over this history, with the SLO's own policy: its step
    counts (30 s, as the rules evaluate) judge the same slices, so its page alerts start
    and end where the backtest's (the rules') do; the mild stretch, which an event
    ratio would page on, stays quiet."""
    t0 = (time.time() // DAY - 3) * DAY
    start, end = t0 + RANGE[0], t0 + RANGE[1]
    own = Policy(name="own", alerting=SLO.alerting)
    labels = IncidentsFile(
        "incidents.yaml",
        (
            IncidentEntry(t0 + BLIP, t0 + BLIP + 2 * MIN, "blip"),
            IncidentEntry(t0 + 350 * MIN, t0 + 360 * MIN, "outage"),
        ),
    )
    real = sc.RealRange(start, end, EVAL, "prometheus", "incidents.yaml")
    with backfilled_prometheus(
        tmp_path / "prometheus", cumulative(increments()), SCRAPE, t0
    ) as client:
        rules = bt.backtest([SLO], client, start, end, EVAL)
        scored = observed.score_range([SLO], [own], client, real, labels)
    pages = sc.merge([i for i in rules.intervals[SLO.name] if i.severity == "page"], "page")
    expected = [(p.start - start, p.end - start) for p in pages]
    drawn = [(a.start, a.end) for a in scored.alerts[("own", SLO.name)]["page"]]
    assert len(expected) == 2 and drawn == expected
