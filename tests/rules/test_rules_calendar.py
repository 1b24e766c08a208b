"""Period-to-date records of a calendar SLO, proven with the real ``promtool test rules``;
and which calendar SLOs get none (DST zones, time-scaled rules), with a warning.

The SLO: 80 % over a calendar day in UTC. promtool's clock starts at 1970-01-01 00:00
UTC, so day n starts at n × 24h. Counters sampled every minute: day 0 sees 10 requests
a minute, 1 failing; days 1 and 2 see 20 a minute, 1 failing. By hand (the record sums
the 5m counts of the steps 5m, 10m, … since midnight, so it moves every 5m):

Checks sit a minute after a step: the calendar group is a group of its own, which
promtool may evaluate before the SLO group at the same instant, so the newest step then
reads the 5m count of one evaluation (1m) earlier (in Prometheus: at most one 30s
interval earlier).

- at 23h56m and 23h59m: 1435 minutes counted, 14 350 events, 1 435 errors, error ratio
  0.1, budget remaining 1 − 0.1 / 0.2 = 0.5;
- from 24h00m to 24h04m: no step of day 1 has ended yet: all three records are absent;
- at 24h06m: 100 events, 5 errors; at 30h01m: 360 minutes, 7 200 events, 360 errors;
  ratio 0.05, budget remaining 1 − 0.05 / 0.2 = 0.75;
- at 47h56m: 1435 minutes of day 1, 28 700 and 1 435; at 48h06m day 2 restarts: 100, 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from promtool_run import run_rule_tests

from tokenslo.cli import main
from tokenslo.core.durations import format_duration
from tokenslo.rules import calendar as cal
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, render_rules, series_labels
from tokenslo.rules.promtool_tests import counter_values
from tokenslo.spec.loader import load_text

pytestmark = pytest.mark.prometheus

MIN, HOUR = 60.0, 3600.0
SLO_TEXT = """\
version: tokenslo/v1
service: idp
slos:
  - name: daily
    objective: 80
    window: 1d
    calendar: {{period: day, timezone: {zone}}}
    sli:
      events:
        total: sum(increase(req_total[{{{{window}}}}]))
        bad: sum(increase(req_total{{code="500"}}[{{{{window}}}}]))
    alerting:
      policy:
        - {{severity: page, budget_percent: 10, long_window: 1h, short_window: 5m}}
"""
((SLO,), _) = load_text(SLO_TEXT.format(zone="UTC"), "daily.yaml")
DAY0, DAY1_AND_2 = 1440, 2 * 1440 + 30  # sample minutes at each rate (to 48h30m)
ERRORS = c.errors_record(c.PERIOD_TO_DATE)
EVENTS = c.events_record(c.PERIOD_TO_DATE)
BUDGET = c.CALENDAR_BUDGET_REMAINING_RECORD


def check(at: float, record: str, value: float | None) -> dict:
    """``record`` of the SLO at ``at`` seconds equals ``value`` (None: absent)."""
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series_labels(SLO).items()))
    samples = [] if value is None else [{"labels": f"{record}{{{labels}}}", "value": value}]
    return {"expr": record, "eval_time": format_duration(at), "exp_samples": samples}


def day_checks(at: float, events: float | None, errors: float | None, budget: float | None):
    return [check(at, EVENTS, events), check(at, ERRORS, errors), check(at, BUDGET, budget)]


def run(tmp_path: Path, checks: list[dict]):
    group = {
        "name": "calendar-day",
        "interval": "1m",
        "input_series": [
            {
                "series": 'req_total{code="200"}',
                "values": counter_values([(9, DAY0), (19, DAY1_AND_2)]),
            },
            {
                "series": 'req_total{code="500"}',
                "values": counter_values([(1, DAY0), (1, DAY1_AND_2)]),
            },
        ],
        "promql_expr_test": checks,
    }
    return run_rule_tests(tmp_path, [SLO], [group], MIN)


@pytest.mark.slow
def test_day_records_count_since_midnight_and_restart_at_it(tmp_path):
    checks = [
        *day_checks(23 * HOUR + 56 * MIN, 14350, 1435, 0.5),
        *day_checks(23 * HOUR + 59 * MIN, 14350, 1435, 0.5),
        *day_checks(24 * HOUR, None, None, None),
        *day_checks(24 * HOUR + 4 * MIN, None, None, None),
        *day_checks(24 * HOUR + 6 * MIN, 100, 5, 0.75),
        *day_checks(30 * HOUR + 1 * MIN, 7200, 360, 0.75),
        *day_checks(47 * HOUR + 56 * MIN, 28700, 1435, 0.75),
        *day_checks(48 * HOUR + 6 * MIN, 100, 5, 0.75),
    ]
    result = run(tmp_path, checks)
    assert result.returncode == 0, result.stdout + result.stderr


def test_budget_is_absent_while_the_period_has_no_events(tmp_path):
    """Counters present but flat for 30 minutes: at 20m the counts are 0 and the budget
    is absent, as ``slo status`` has no budget (``no_traffic``) then."""
    group = {
        "name": "calendar-no-events",
        "interval": "1m",
        "input_series": [
            {"series": 'req_total{code="200"}', "values": "0+0x30"},
            {"series": 'req_total{code="500"}', "values": "0+0x30"},
        ],
        "promql_expr_test": day_checks(20 * MIN, 0, 0, None),
    }
    result = run_rule_tests(tmp_path, [SLO], [group], MIN)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_count_makes_promtool_fail(tmp_path):
    """The proof can fail: the day-0 total just after midnight instead of a restart."""
    result = run(tmp_path, [check(24 * HOUR + 6 * MIN, EVENTS, 14400 + 100)])
    assert result.returncode == 1
    assert "FAILED" in result.stderr


# --- which SLOs get calendar records -------------------------------------------------------


def groups_of(zone: str, **kwargs) -> list[dict]:
    ((slo,), _) = load_text(SLO_TEXT.format(zone=zone), "daily.yaml")
    return generate_rule_groups([slo], **kwargs)


def test_calendar_records_live_in_their_own_slower_group():
    slo_group, calendar_group = groups_of("UTC")
    assert slo_group["name"] == "tokenslo-slo-daily" and slo_group["interval"] == "30s"
    assert calendar_group["name"] == "tokenslo-calendar-daily"
    assert calendar_group["interval"] == "5m"
    assert [r["record"] for r in calendar_group["rules"]] == [ERRORS, EVENTS, BUDGET]
    assert all(r["labels"] == series_labels(SLO) for r in calendar_group["rules"])


@pytest.mark.parametrize(
    ("zone", "shift"),
    [
        ("Etc/GMT-3", "time() + 10800"),
        ("Etc/GMT+5", "time() - 18000"),
        ("Asia/Kolkata", "time() + 19800"),
    ],
)
def test_a_fixed_offset_zone_shifts_the_clock(zone, shift):
    """Etc/GMT-3 is UTC+3 (POSIX signs); Kolkata is UTC+5:30 all year."""
    expr = groups_of(zone)[1]["rules"][1]["expr"]
    assert f"vector({shift})" in expr and "[1d:5m]" in expr


def test_months_sum_hourly_counts_unless_the_offset_is_not_whole_hours():
    """A month sums 1h counts at a 1h step (the SLO group then records them); a zone
    half an hour off UTC would put midnight between two steps, so it stays on 5m."""
    text = SLO_TEXT.replace("period: day", "period: month")
    ((utc,), _) = load_text(text.format(zone="UTC"))
    ((kolkata,), _) = load_text(text.format(zone="Asia/Kolkata"))
    utc_groups = generate_rule_groups([utc])
    assert c.events_record("1h") in [r.get("record") for r in utc_groups[0]["rules"]]
    assert "tokenslo:slo_events:1h{" in utc_groups[1]["rules"][1]["expr"]
    assert "[31d:1h]" in utc_groups[1]["rules"][1]["expr"]
    assert "[31d:5m]" in generate_rule_groups([kolkata])[1]["rules"][1]["expr"]


def test_operator_format_keeps_the_calendar_group_with_its_slo():
    (doc,) = yaml.safe_load_all(render_rules([SLO], fmt="operator"))
    names = [g["name"] for g in doc["spec"]["groups"]]
    assert names == ["tokenslo-slo-daily", "tokenslo-calendar-daily"]


def test_dst_zone_gets_no_calendar_records_and_a_warning(tmp_path, capsys):
    path = tmp_path / "berlin.yaml"
    path.write_text(SLO_TEXT.format(zone="Europe/Berlin"))
    out = tmp_path / "rules.yml"
    assert main(["rules", "generate", str(path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    # line 7 of the file holds the calendar; the zone is its value at column 39
    assert f"{path}:7:39: slos[0].calendar.timezone: Europe/Berlin" in err
    assert "daylight saving" in err
    names = [g["name"] for g in yaml.safe_load(out.read_text())["groups"]]
    assert names == ["tokenslo-slo-daily"]


def test_dst_is_judged_around_now():
    """Europe/Berlin has DST; it had none in 1979 (before 1980), so a clock then sees
    a fixed offset; Asia/Kolkata is fixed today."""
    now = 1_764_720_000.0  # 2025-12-03 00:00 UTC
    assert cal.fixed_offset("Europe/Berlin", now) is None
    assert cal.fixed_offset("Europe/Berlin", 283_996_800.0 - 2 * 366 * 86400) == 3600
    assert cal.fixed_offset("Asia/Kolkata", now) == 19800
    assert cal.fixed_offset("UTC", now) == 0


def test_timeslices_slo_gets_no_calendar_records_and_a_warning(tmp_path, capsys):
    path = tmp_path / "slices.yaml"
    text = SLO_TEXT.format(zone="UTC").replace(
        "    sli:\n", "    timeslices: {window: 1m, target: 95}\n    sli:\n"
    )
    path.write_text(text)
    assert main(["rules", "generate", str(path), "-o", str(tmp_path / "r.yml")]) == 0
    err = capsys.readouterr().err
    assert f"{path}:8:" in err and "slos[0].timeslices: a timeslices SLO gets no" in err
    names = [g["name"] for g in yaml.safe_load((tmp_path / "r.yml").read_text())["groups"]]
    assert names == ["tokenslo-slo-daily"]


def test_time_scaled_rules_get_no_calendar_records(tmp_path, capsys):
    path = tmp_path / "daily.yaml"
    path.write_text(SLO_TEXT.format(zone="UTC"))
    assert (
        main(["rules", "generate", str(path), "--time-scale", "60", "-o", str(tmp_path / "r.yml")])
        == 0
    )
    err = capsys.readouterr().err
    assert f"{path}:7:" in err and "slos[0].calendar: calendar periods are dates" in err
    assert len(groups_of("UTC", time_scale=60)) == 1
