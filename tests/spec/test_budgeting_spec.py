"""The ``timeslices`` and ``calendar`` blocks: loading, round trips, and what ``slo validate``
rejects."""

from __future__ import annotations

import dataclasses

import pytest

from tokenslo.core.model import Calendar, Timeslices
from tokenslo.errors import InputError
from tokenslo.rules.generate import generate_rule_groups
from tokenslo.spec.loader import load_text
from tokenslo.spec.writer import dump_v1

FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: avail
    objective: 99.9
    window: 30d
    timeslices: {timeslices}
    sli:
      events:
        bad: sum(increase(x{{code=~"5.."}}[{{{{window}}}}]))
        total: sum(increase(x[{{{{window}}}}]))
{alerting}"""


def _load(timeslices: str = "{window: 1m, target: 95}", alerting: str = ""):
    return load_text(FILE.format(timeslices=timeslices, alerting=alerting), "s.yaml")


def test_loads_and_round_trips_through_the_writer():
    [slo], findings = _load("{window: 5m, target: 99.5}")
    assert findings == []
    assert slo.timeslices == Timeslices(window=300.0, target=99.5)
    assert slo.timeslices.allowed_error_ratio == 0.005
    [again], _ = load_text(dump_v1([slo]))
    assert dataclasses.replace(again, source=None) == dataclasses.replace(slo, source=None)


def test_mean_ratio_loads_without_a_target_and_round_trips():
    [slo], findings = _load("{window: 2m, method: mean-ratio}")
    assert findings == []
    assert slo.timeslices == Timeslices(window=120.0, method="mean-ratio")
    assert slo.timeslices.mean_ratio and slo.timeslices.target is None
    [again], _ = load_text(dump_v1([slo]))
    assert dataclasses.replace(again, source=None) == dataclasses.replace(slo, source=None)
    [explicit], _ = _load("{window: 1m, target: 95, method: good-slices}")
    assert explicit.timeslices == Timeslices(window=60.0, target=95.0)


def test_absent_means_occurrences():
    [slo], _ = load_text(FILE.replace("    timeslices: {timeslices}\n", "").format(alerting=""))
    assert slo.timeslices is None


@pytest.mark.parametrize(
    ("timeslices", "alerting", "field", "words"),
    [
        ("{window: 30d, target: 95}", "", "slos[0].timeslices.window", "shorter than the SLO"),
        ("{window: 1m, target: 0}", "", "slos[0].timeslices.target", ""),
        ("{window: 1m, target: 101}", "", "slos[0].timeslices.target", ""),
        ("{window: 1m}", "", "slos[0].timeslices.target", "required"),
        ("{window: 1m, method: good-slices}", "", "slos[0].timeslices.target", "required"),
        ("{window: 1m, method: mean-ratio, target: 95}", "", "slos[0].timeslices.target", "remove"),
        ("{window: 1m, method: median}", "", "slos[0].timeslices.method", ""),
        (
            "{window: 1m, target: 95}",
            "    alerting: {burn_rate: traffic-aware}\n",
            "slos[0].alerting.burn_rate",
            "budgets slices, not events",
        ),
    ],
)
def test_bad_timeslices_name_the_field(timeslices, alerting, field, words):
    with pytest.raises(InputError) as caught:
        _load(timeslices, alerting)
    assert caught.value.file == "s.yaml" and caught.value.line is not None
    assert caught.value.field == field
    assert words in caught.value.message


def test_the_rule_generator_refuses_traffic_aware_timeslices_from_any_source():
    """A model built elsewhere (an import) gets the same refusal as the YAML."""
    [slo], _ = _load()
    aware = dataclasses.replace(
        slo, alerting=dataclasses.replace(slo.alerting, burn_rate="traffic-aware")
    )
    with pytest.raises(InputError, match="budgets slices"):
        generate_rule_groups([aware])


CALENDAR_FILE = FILE.replace("    timeslices: {timeslices}\n", "    calendar: {calendar}\n")


def test_calendar_loads_and_round_trips_through_the_writer():
    [slo], findings = load_text(
        CALENDAR_FILE.format(calendar="{period: month, timezone: Europe/Berlin}", alerting="")
    )
    assert findings == []
    assert slo.calendar == Calendar(period="month", timezone="Europe/Berlin")
    [again], _ = load_text(dump_v1([slo]))
    assert again.calendar == slo.calendar
    [utc], _ = load_text(CALENDAR_FILE.format(calendar="{period: week}", alerting=""))
    assert utc.calendar == Calendar(period="week", timezone="UTC")


@pytest.mark.parametrize(
    ("calendar", "field", "words"),
    [
        ("{period: fortnight}", "slos[0].calendar.period", ""),
        ("{period: month, timezone: Mars/Olympus}", "slos[0].calendar.timezone", "unknown time"),
        ("{timezone: UTC}", "slos[0].calendar.period", "required"),
    ],
)
def test_bad_calendars_name_the_field(calendar, field, words):
    with pytest.raises(InputError) as caught:
        load_text(CALENDAR_FILE.format(calendar=calendar, alerting=""), "s.yaml")
    assert caught.value.file == "s.yaml" and caught.value.line is not None
    assert caught.value.field == field
    assert words in caught.value.message
