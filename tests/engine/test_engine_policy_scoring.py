"""Alert-policy scoring on a hand-built timeline: every number below is computed by hand.

The SLO: 90% (budget 0.1) over a 1h period. The policy: one page condition, 50% of the
budget in a 10m window (factor 0.5 × 60m / 10m = 3, threshold 0.3) with a 2m short
window, ``for`` 60s, evaluated every 30s. Traffic: 10 requests per 30s step, always;
the period therefore holds 1200 requests and the budget is 120 failed requests.

- outage A, 100% errors over (0, 300]: at t the 10m window holds t/30 × 10 errors of
  200, above 0.3 first at t = 210 (0.35); the 2m window is all errors from 120 on.
  Pending at 210, firing at 270 (for 60s). At 390 the 2m window (270, 390] holds one
  failed step of four (0.25): resolved. Detection 270 s, reset 390 − 300 = 90 s,
  budget before detection: 9 steps × 10 = 90 of 120 = 75%.
- blip B, one failed step (1800, 1830]: 10m window 10/200 = 0.05, never alerts.
- noise C, 7 failed steps (2400, 2610] (marked "should not alert"): the 10m window
  reaches 70/200 = 0.35 at 2610; 2m window (2490, 2610] all errors. Pending 2610,
  firing 2670 (2m window at 2670: (2550, 2670] two failed steps, 0.5); at 2700 one
  failed step (0.25): resolved. One false alert.
- slow burn D, 2 errors per step over (3000, 3600] (should alert): 10m ratio 0.2 < 0.3,
  missed; it burnt 20 × 2 = 40 of 120 = 1/3 of the budget.

Precision 1/2 (A's alert true, C's false), recall 1/2 (A of A and D).
Without ``for``: A fires at 210 (budget 70/120), C at 2610.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from tokenslo.cli import main
from tokenslo.core import burnrate
from tokenslo.core.model import SLO, TRAFFIC_AWARE, Alerting, BurnWindow, EventsSLI, Timeslices
from tokenslo.engine import incidents as inc
from tokenslo.engine import scoring as sc
from tokenslo.errors import InputError
from tokenslo.spec.policy import Policy, apply, load_policies, load_policy

STEP = 30.0
ORIGIN = -3600.0
END = 4200.0


def _slo() -> SLO:
    return SLO(
        name="login",
        service="idp",
        objective=90.0,
        window=3600.0,
        sli=EventsSLI(
            total="sum(increase(x_total[{{window}}]))", bad="sum(increase(x_bad[{{window}}]))"
        ),
    )


def _policy(for_: float = 60.0, burn_rate: str = "static") -> Policy:
    window = BurnWindow("page", 0.5, long_window=600.0, short_window=120.0, for_=for_)
    return Policy(name=f"p{for_:g}", alerting=Alerting(policy=(window,), burn_rate=burn_rate))  # type: ignore[arg-type]


def _timeline() -> inc.Timeline:
    n = round((END - ORIGIN) / STEP)
    errors = [0] * n

    def fail(start: float, end: float, per_step: int) -> None:
        for j in range(round((start - ORIGIN) / STEP), round((end - ORIGIN) / STEP)):
            errors[j] = per_step

    fail(0, 300, 10)
    fail(1800, 1830, 10)
    fail(2400, 2610, 10)
    fail(3000, 3600, 2)
    incidents = (
        inc.Incident("outage", 0, 300, 1.0, 100 / 120, True),
        inc.Incident("blip", 1800, 1830, 1.0, 10 / 120, False),
        inc.Incident("low-traffic", 2400, 2610, 1.0, 70 / 120, False),
        inc.Incident("slow-burn", 3000, 3600, 0.2, 40 / 120, True),
    )
    return inc.Timeline("login", STEP, ORIGIN, END, tuple(errors), (10,) * n, incidents, 120.0)


def _run(policy: Policy) -> tuple[list[sc.Alert], sc.Score, sc.Summary]:
    slo = apply(policy, _slo())
    alerts = sc.merge(sc.replay(slo, _timeline(), 30.0), "page")
    score = sc.score(policy.name, _timeline(), alerts, "page")
    return alerts, score, sc.summarize([score], policy.name, "page")


@pytest.mark.parametrize("burn_rate", ["static", TRAFFIC_AWARE])
def test_hand_computed_alerts_and_measures(burn_rate):
    # At constant traffic the traffic-aware threshold, 1200/200 × 0.5 × 0.1, is the static 0.3.
    alerts, score, pooled = _run(_policy(60.0, burn_rate))
    assert [(a.start, a.end) for a in alerts] == [(270.0, 390.0), (2670.0, 2700.0)]
    assert (score.alerts, score.true_alerts, pooled.precision) == (2, 1, 0.5)
    assert pooled.recall == 0.5
    outage, slow = score.outcomes
    assert (outage.incident, outage.detection, outage.reset) == (0, 270.0, 90.0)
    assert outage.budget_before == pytest.approx(90 / 120)
    assert (slow.incident, slow.detection, slow.reset) == (3, None, None)
    assert slow.budget_before == pytest.approx(40 / 120)


def test_without_for_alerts_a_minute_earlier_and_as_often():
    alerts, score, pooled = _run(_policy(0.0))
    assert [(a.start, a.end) for a in alerts] == [(210.0, 390.0), (2610.0, 2700.0)]
    assert pooled.precision == 0.5 and pooled.recall == 0.5
    assert score.outcomes[0].detection == 210.0
    assert score.outcomes[0].budget_before == pytest.approx(70 / 120)


def test_summary_pools_slos():
    _, first, _ = _run(_policy(60.0))
    second = replace(first, slo="other")
    summary = sc.summarize([first, second], first.policy, "page")
    assert (summary.alerts, summary.true_alerts, summary.incidents, summary.detected) == (
        4,
        2,
        4,
        2,
    )
    assert summary.detection == (270.0, 270.0) and sc.median(summary.reset) == 90.0


def test_merge_joins_overlapping_intervals_of_a_severity():
    from tokenslo.engine.backtest import AlertInterval

    spans = [
        AlertInterval("s", "page", 3600, 300, 100, 400),
        AlertInterval("s", "page", 21600, 1800, 300, 900),
        AlertInterval("s", "ticket", 86400, 7200, 500, None),
        AlertInterval("s", "page", 3600, 300, 1000, 1100),
    ]
    assert [(a.start, a.end) for a in sc.merge(spans, "page")] == [(100, 900), (1000, 1100)]
    assert [(a.start, a.end) for a in sc.merge(spans, "any")] == [(100, None)]


def test_alert_matches_latest_incident_within_a_long_window():
    incidents = [
        inc.Incident("outage", 0, 100, 1.0, 0.5, True),
        inc.Incident("blip", 500, 530, 1.0, 0.01, False),
    ]
    alerts = [
        sc.Alert("page", 50, 60, 3600),  # inside the outage
        sc.Alert("page", 520, 600, 3600),  # both qualify: the later incident
        sc.Alert("page", 5000, 5100, 3600),  # 4470 s after the blip ended: none
        sc.Alert("page", -10, 5, 3600),  # before any incident
    ]
    assert sc.match(alerts, incidents) == [0, 1, None, None]


# ---------------------------------------------------------------- synthetic incident set


def test_synthetic_set_is_deterministic_and_labelled_by_the_budget_rule():
    slo = replace(_slo(), objective=99.9, window=7 * 86400.0)
    first = inc.synthetic(slo, days=8, seed=7, resolution=30.0, warmup=slo.window)
    again = inc.synthetic(slo, days=8, seed=7, resolution=30.0, warmup=slo.window)
    other = inc.synthetic(slo, days=8, seed=8, resolution=30.0, warmup=slo.window)
    assert first == again and first.errors != other.errors
    assert sorted({i.kind for i in first.incidents}) == [
        "blip",
        "low-traffic",
        "outage",
        "partial",
        "slow-burn",
    ]
    budget = 0.001 * inc.BASE_RATE * slo.window
    assert first.budget_events == pytest.approx(budget)
    for incident in first.incidents:
        lo = round((incident.start - first.origin) / 30.0)
        hi = round((incident.end - first.origin) / 30.0)
        share = sum(first.errors[lo:hi]) / budget
        assert incident.budget_share == pytest.approx(share)
        assert incident.should_alert == (share >= 0.02)
    outage = next(i for i in first.incidents if i.kind == "outage")
    lo = round((outage.start - first.origin) / 30.0)
    hi = round((outage.end - first.origin) / 30.0)
    assert first.errors[lo:hi] == first.total[lo:hi]  # 100% errors
    assert 600 <= outage.end - outage.start <= 1800


# ---------------------------------------------------------------- policy files


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_policy_file_is_the_slo_alerting_schema(tmp_path):
    path = _write(
        tmp_path / "p.yaml",
        "name: quick\ninterval: 15s\nalerting:\n  burn_rate: traffic-aware\n  ticket: false\n"
        "  policy:\n    - {severity: page, budget_percent: 2, long_window: 1h, short_window: 5m,"
        " for: 0s}\n",
    )
    policy = load_policy(path)
    assert (policy.name, policy.interval, policy.alerting.ticket) == ("quick", 15.0, False)
    applied = apply(policy, replace(_slo(), window=30 * 86400.0))
    assert applied.alerting.traffic_aware and applied.alerting.policy == (
        BurnWindow("page", 0.02, 3600.0, 300.0, 0.0),
    )
    assert applied.name == "login"


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("name: x\n", 1, None),
        ("name: x\nalerting:\n  burn_rate: dynamic\n", 3, "alerting.burn_rate"),
        ("name: x\ninterval: 0.5s\nalerting: {}\n", 2, "interval"),
        ("name: x\nalerting:\n  for: 1m\n", 3, "alerting"),
        (
            "name: x\nalerting:\n  policy:\n"
            "    - {severity: page, budget_percent: 2, long_window: 5m, short_window: 1h}\n",
            4,
            "alerting.policy[0]",
        ),
    ],
)
def test_policy_file_errors_name_file_line_and_field(tmp_path, capsys, text, line, field):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_policy(path)
    assert info.value.file == path and info.value.line == line
    if field:
        assert info.value.field == field or (info.value.field or "").startswith(field)
    slo_file = _write(tmp_path / "slo.yaml", SLO_FILE)
    code = main(
        ["slo", "backtest", slo_file, "--synthetic", "--policy", path, "-o", str(tmp_path / "r")]
    )
    assert code == 2
    assert f"{path}:{line}" in capsys.readouterr().err


def test_policy_longer_than_the_slo_window_and_duplicate_names(tmp_path):
    path = _write(
        tmp_path / "long.yaml",
        "name: long\nalerting:\n  policy:\n"
        "    - {severity: page, budget_percent: 2, long_window: 2h, short_window: 5m}\n",
    )
    with pytest.raises(InputError) as info:
        apply(load_policy(path), _slo())
    assert info.value.file == path and info.value.field == "alerting.policy[0].long_window"
    with pytest.raises(InputError) as dup:
        load_policies([path, path])
    assert "long" in str(dup.value) and dup.value.field == "name"


# ---------------------------------------------------------------- command line


SLO_FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: issuance
    objective: 99.9
    window: 7d
    sli:
      events:
        bad: sum(increase(t_total{code=~"5.."}[{{window}}]))
        total: sum(increase(t_total[{{window}}]))
"""


def test_cli_writes_markdown_json_and_html_with_a_chart_per_policy(tmp_path, capsys):
    slo_file = _write(tmp_path / "slo.yaml", SLO_FILE)
    static = _write(tmp_path / "a.yaml", "name: calm\nalerting: {burn_rate: static}\n")
    aware = _write(tmp_path / "b.yaml", "name: aware\nalerting: {burn_rate: traffic-aware}\n")
    out = tmp_path / "report"
    args = ["slo", "backtest", slo_file, "--synthetic", "--days", "8", "--seed", "3"]
    assert main([*args, "--policy", static, "--policy", aware, "-o", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    data = json.loads((out / "policies.json").read_text())
    assert [p["name"] for p in data["policies"]] == ["calm", "aware"]
    assert {(s["policy"], s["severity"]) for s in data["summary"]} == {
        (p, s) for p in ("calm", "aware") for s in ("page", "ticket", "any")
    }
    incidents = data["incidents"]["issuance"]
    assert len(incidents) == len(inc.EVENT_KINDS)
    for row in data["summary"]:
        if row["alerts"]:
            assert row["precision"] == row["true_alerts"] / row["alerts"]
        assert row["incidents"] == sum(i["should_alert"] for i in incidents)
    html = (out / "policies.html").read_text()
    charts = re.findall(r'<figure class="policy-chart" id="chart-(\d)">\s*<svg', html)
    assert charts == ["0", "1"]
    for prefix in ("c0-calm", "c1-aware"):
        assert len(re.findall(rf'id="{prefix}-incident-0-\d"', html)) == len(incidents)
    pages = len(data["alerts"]["calm/issuance"]["page"])
    assert len(re.findall(r'id="c0-calm-alert-page-0-\d+"', html)) == pages
    assert "http" not in html.replace("http-equiv", "") and "<script" not in html
    markdown = (out / "policies.md").read_text()
    assert "| page | calm |" in markdown and "| page | aware |" in markdown


def test_cli_needs_synthetic_and_a_policy(tmp_path, capsys):
    slo_file = _write(tmp_path / "slo.yaml", SLO_FILE)
    policy = _write(tmp_path / "a.yaml", "name: calm\nalerting: {}\n")
    assert main(["slo", "backtest", slo_file, "--policy", policy]) == 2
    assert "--synthetic" in capsys.readouterr().err
    assert main(["slo", "backtest", slo_file, "--synthetic"]) == 2
    assert "--policy" in capsys.readouterr().err
    assert (
        main(["slo", "backtest", slo_file, "--synthetic", "--policy", policy, "--days", "0"]) == 2
    )
    assert main(["slo", "backtest", slo_file]) == 2
    assert "--start" in capsys.readouterr().err


def test_shipped_policies_apply_to_the_starter_slos():
    from pathlib import Path

    from tokenslo.spec.loader import load_paths

    repo = Path(__file__).resolve().parents[2]
    files = sorted(str(p) for p in (repo / "slo" / "policies").glob("*.yaml"))
    policies = {p.name: p for p in load_policies(files)}
    assert {"static", "traffic-aware"} <= set(policies)
    slos = load_paths([str(repo / "slo")])
    for policy in policies.values():
        for slo in slos:
            applied = apply(policy, slo)
            assert applied.alerting.burn_rate == policy.alerting.burn_rate
            assert applied.sli == slo.sli and applied.objective == slo.objective
    assert policies["static-15s"].interval == 15.0
    windows = policies["static-page-for"].alerting.policy or ()
    assert [w.for_ for w in windows] == [60.0, 360.0, 24 * 60.0, 72 * 60.0]
    # the default the study chose: pages without for, tickets with a fifth of the short window
    default = apply(policies["static"], slos[0])
    assert [w.for_ for w in burnrate.policy_for(default)] == [0.0, 0.0, 24 * 60.0, 72 * 60.0]


def test_long_windows_are_summed_from_5m_counts_as_the_rules_do():
    # 10 requests per 30s step, 10 errors in the step (0, 30] only. The rules record the
    # 5m counts every 30s; the ten samples at 30 … 300 s each hold the 10 errors and every
    # sample 100 requests. A 7h window (derived: over 6h) sums 7h/30s + 1 = 841 samples
    # (Prometheus 2 includes the one exactly 7h old): 10 × 10 / (841 × 100) = 1/841,
    # where a count from the raw counters would say 10 / 8400.
    window = BurnWindow("page", 0.5, long_window=7 * 3600.0, short_window=300.0, for_=0.0)
    slo = replace(_slo(), window=86400.0, alerting=Alerting(policy=(window,)))
    origin, end = -86400.0, 3600.0
    n = round((end - origin) / STEP)
    errors = [0] * n
    errors[round(-origin / STEP)] = 10  # the step (0, 30]
    timeline = inc.Timeline("login", STEP, origin, end, tuple(errors), (10,) * n, (), 1.0)
    times = [300.0, 600.0]
    ratios = sc.static_ratios(slo, timeline, 30.0, times)
    assert ratios[7 * 3600.0] == [pytest.approx(1 / 841), pytest.approx(1 / 841)]
    assert ratios[300.0] == [pytest.approx(10 / 100), 0.0]  # exact: (0, 300] and (300, 600]


def test_a_timeslices_slo_is_replayed_on_its_slice_judgements():
    """The hand-built timeline for good slices: 1m slices (two steps), a slice
    bad above 5 % errors, the same page policy (bad-slice share above 0.3). The slice
    judged at t is (t − 60, t]; the 10m window holds the 21 judgements of [t − 600, t]
    (the judgement 600 s old included, as on Prometheus 2), so it needs 7 bad.

    - A: slices judged 30 … 330 are bad (t/30 of them at t): 7 at 210, firing at 270;
      the 2m window [t − 120, t] holds one bad judgement of five at 450: reset 150 s.
    - C: bad judgements 2430 … 2640, 7 at 2610, firing 2670, resolved at 2760.
    - D, 20 % errors: every slice is bad (judged 3030 … 3630), so the slow burn the
      event ratio misses (0.2 < 0.3) pages. At 3060 the 10m window still holds C's
      2460 … 2640 (7) and 3030, 3060: 9 bad; the 2m window 2 of 5: pending, firing at
      3120 (detection 120 s), resolved at 3750 (one bad judgement, 3630, of five)."""
    sliced = replace(_slo(), timeslices=Timeslices(window=60.0, target=95.0))
    policy = _policy(60.0)
    timeline = _timeline()
    alerts = sc.merge(sc.replay(apply(policy, sliced), timeline, 30.0), "page")
    assert [(a.start, a.end) for a in alerts] == [
        (270.0, 450.0),
        (2670.0, 2760.0),
        (3120.0, 3750.0),
    ]
    score = sc.score(policy.name, timeline, alerts, "page")
    assert (score.alerts, score.true_alerts) == (3, 2)
    outage, slow = score.outcomes
    assert (outage.detection, outage.reset) == (270.0, 150.0)
    assert (slow.detection, slow.reset) == (120.0, 150.0)


def test_slices_must_be_whole_steps_of_the_timeline():
    sliced = replace(_slo(), timeslices=Timeslices(window=45.0, target=95.0))
    with pytest.raises(InputError, match="45s slices"):
        sc.replay(apply(_policy(60.0), sliced), _timeline(), 30.0)
