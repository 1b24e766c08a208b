"""Alert-policy scoring over a real range: a real Prometheus holding a backfilled history
with two outages and a blip, scored against an incidents file naming them. Every expected
number below is worked out by hand from the history.

The SLO: 99% (budget 0.01) over 3d; requests at 10/s, always; errors only in the events.
The policies: slo/policies/static.yaml (pages without ``for``) and static-page-for.yaml
(pages ``for`` 1m and 6m). Their pages over a 3d period, from budget_percent × 3d / long:
1h/5m at 1.44 × 0.01 = 0.0144 (an error count above 518.4 in 1h and 43.2 in 5m) and 6h/30m
at 0.6 × 0.01 = 0.006 (above 1296 in 6h, 108 in 30m). The rules evaluate every 30 s, so
the steps are 30 s: ``n`` failed 30 s steps of an outage hold ``n ×`` its errors per step.

A second SLO, ghost, has no series at all. S is the range start; the range is 17h.
Events (errors per 30 s step):

- A, outage: 100% (300) over (S+1h, S+1h20m]. Page 1h/5m: 300n > 518.4 from n = 2
  (S+3660); 6h/30m: 300n > 1296 from n = 5 (S+3750). The 5m window is empty again at
  S+4800+300, the 30m one at S+4800+1800 = S+6600: page alert [S+3660, S+6600] (static);
  with for, 1h/5m fires at S+3720 and 6h/30m at S+3750+360 = S+4110: [S+3720, S+6600].
- B, partial outage: 50% (150) over (S+8h, S+8h10m] (A is out of every page window).
  1h/5m: 150n > 518.4 from n = 4 (S+28920); 6h/30m: 150n > 1296 from n = 9 (S+29070);
  windows empty at S+29400+300 and S+29400+1800 = S+31200. Static [S+28920, S+31200];
  with for: 1h/5m from S+28980 to S+29700 and 6h/30m from S+29070+360 = S+29430, which
  overlaps it: one alert [S+28980, S+31200].
- C, blip: 100% (300) over (S+15h, S+15h1m], in the file as "should not alert". 1h/5m:
  600 > 518.4 at S+54060, 5m window empty at S+54360; 6h/30m never (600 < 1296). Static
  [S+54060, S+54360], with for [S+54120, S+54360]: a false alert for each.

At a 60 s step (a multiple of the interval: evaluated every 60 s) every time above is on
the 60 s grid and each page's first threshold crossing (the 1h/5m one: A's first 600 at
S+3660, B's 600 at S+28920, C's at S+54060) comes at the same time, so nothing changes.

So for pages: 3 alerts, 2 true, precision 2/3; recall 2/2. Detection of A: 60 s (static),
120 s (for); of B: 120 s and 180 s; reset 1800 s for both. The budget: 0.01 × 10/s × 3d =
25,920 failed requests; burnt before detection: A 2 × 300 (static) or 4 × 300 (for), B
4 × 150 or 6 × 150.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pytest

from support import backfill_openmetrics
from tokenslo.cli import main

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
POLICIES = [str(REPO / "slo" / "policies" / f) for f in ("static.yaml", "static-page-for.yaml")]
RATE = 10.0  # requests per second
SAMPLE = 15.0  # seconds between backfilled samples
HOUR = 3600.0
RANGE = 17 * HOUR
PERIOD = 3 * 86400.0
BUDGET = 0.01 * RATE * PERIOD  # 25,920 failed requests
# (start, end, error rate per second) relative to S
EVENTS = {
    "A": (1 * HOUR, 1 * HOUR + 1200, 10.0),
    "B": (8 * HOUR, 8 * HOUR + 600, 5.0),
    "C": (15 * HOUR, 15 * HOUR + 60, 10.0),
}

SLO_FILE = """\
version: tokenslo/v1
service: demo
slos:
  - name: login
    objective: 99
    window: 3d
    sli:
      events:
        bad: sum(increase(demo_requests_total{svc="login",code="500"}[{{window}}]))
        total: sum(increase(demo_requests_total{svc="login"}[{{window}}]))
  - name: ghost
    objective: 99
    window: 3d
    sli:
      events:
        bad: sum(increase(absent_requests_total{code="500"}[{{window}}]))
        total: sum(increase(absent_requests_total[{{window}}]))
"""


def _failed_by(t: float, s: float) -> float:
    """Failed requests from the start of the history to ``t`` (S = ``s``)."""
    return sum(
        rate * max(0.0, min(t, s + end) - (s + start)) for start, end, rate in EVENTS.values()
    )


def _history(data_dir: Path, s: float) -> None:
    """From one period and an hour before S to its end, a sample every 15 s."""
    first = s - PERIOD - HOUR
    times = [first + i * SAMPLE for i in range(round((RANGE + PERIOD + HOUR) / SAMPLE) + 1)]
    failed = [(t, _failed_by(t, s)) for t in times]
    ok = [(t, RATE * (t - first) - f) for t, f in failed]
    backfill_openmetrics(
        data_dir,
        "demo_requests_total",
        {'svc="login",code="200"': ok, 'svc="login",code="500"': failed},
    )


def _incidents(path: Path, s: float) -> str:
    def iso(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s + offset))

    a, b, c = EVENTS["A"], EVENTS["B"], EVENTS["C"]
    path.write_text(
        textwrap.dedent(f"""\
        incidents:
          - {{slo: login, start: {iso(a[0])}, end: {iso(a[1])}, kind: outage}}
          - slo: login
            start: {s + b[0]:.0f}
            end: "{s + b[1]:.0f}"
            kind: partial
          - {{start: {iso(c[0])}, end: {iso(c[1])}, kind: blip, should_alert: false}}
        """)
    )
    return str(path)


# per policy: page alerts (start, end) from S, detection and budget burnt (failed requests)
# of A and B, by hand (module docstring)
EXPECTED = {
    "static": {
        "alerts": [(3660, 6600), (28920, 31200), (54060, 54360)],
        "detection": [60, 120],
        "burnt": [2 * 300, 4 * 150],
    },
    "static-page-for": {
        "alerts": [(3720, 6600), (28980, 31200), (54120, 54360)],
        "detection": [120, 180],
        "burnt": [4 * 300, 6 * 150],
    },
}


@pytest.mark.parametrize("step", [None, "60s"])
def test_real_range_scores_match_the_hand_computed_history(
    prometheus_factory, tmp_path, capsys, step
):
    s = float((int(time.time()) // 3600) * 3600 - 24 * 3600)  # a whole hour, a day ago
    _history(tmp_path / "prometheus-0" / "data", s)
    prom = prometheus_factory({"global": {"scrape_interval": "15s"}})
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(SLO_FILE)
    incidents = _incidents(tmp_path / "incidents.yaml", s)
    out = tmp_path / "report"
    argv = ["slo", "backtest", str(slo_file), "--prometheus", prom.url]
    argv += ["--start", f"{s:.0f}", "--end", f"{s + RANGE:.0f}", "--incidents", incidents]
    argv += [arg for p in POLICIES for arg in ("--policy", p)] + ["-o", str(out)]
    argv += ["--step", step] if step else []
    # ghost has no series: left out and named, exit 3 as the backtest, after the report
    assert main(argv) == 3
    output = capsys.readouterr()
    assert "report written to" in output.out
    assert "no data in the range for SLO(s): ghost" in output.err

    data = json.loads((out / "policies.json").read_text())
    assert data["seed"] is None and data["no_data"] == ["ghost"]
    assert list(data["incidents"]) == ["login"]
    assert data["range"]["prometheus"] == prom.url
    assert data["range"]["step_s"] == (60.0 if step else 30.0)  # default: the policies' 30s
    assert data["range"]["steps_without_data"] == {"login": 0.0}
    assert data["range"]["incidents_file"] == incidents
    assert [i["kind"] for i in data["incidents"]["login"]] == ["outage", "partial", "blip"]
    assert [i["should_alert"] for i in data["incidents"]["login"]] == [True, True, False]
    login = data["incidents"]["login"]
    for incident, (start, end, rate) in zip(login, EVENTS.values(), strict=True):
        assert (incident["start_s"], incident["end_s"]) == (start, end)
        assert incident["budget_share"] == pytest.approx(rate * (end - start) / BUDGET)
        assert incident["error_ratio"] == pytest.approx(rate / RATE)

    scores = {(s_["policy"], s_["severity"]): s_ for s_ in data["scores"]}
    for policy, want in EXPECTED.items():
        pages = data["alerts"][f"{policy}/login"]["page"]
        assert [(a["start_s"], a["end_s"]) for a in pages] == want["alerts"], policy
        page = scores[(policy, "page")]
        assert (page["alerts"], page["true_alerts"]) == (3, 2)
        assert page["precision"] == pytest.approx(2 / 3) and page["recall"] == 1.0
        outcomes = page["outcomes"]
        assert [o["incident"] for o in outcomes] == [0, 1]  # C should not alert: not scored
        assert [o["detection_s"] for o in outcomes] == want["detection"]
        assert [o["reset_s"] for o in outcomes] == [1800, 1800]
        for o, burnt in zip(outcomes, want["burnt"], strict=True):
            assert o["budget_before"] == pytest.approx(burnt / BUDGET)

    start_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    markdown = (out / "policies.md").read_text()
    assert "Real range: " + start_iso in markdown and prom.url in markdown
    assert "seed" not in markdown and "Synthetic" not in markdown
    assert "No data in the range (left out): ghost" in markdown
    html = (out / "policies.html").read_text()
    assert "Real range: " + start_iso in html
    assert re.findall(r'<figure class="policy-chart" id="chart-(\d)">\s*<svg', html) == ["0", "1"]
    assert len(re.findall(r'id="c0-static-alert-page-0-\d+"', html)) == 3
    if step is None:
        _same_as_the_backtest(data, argv[:5], s, capsys)


def _same_as_the_backtest(data: dict, head: list[str], s: float, capsys) -> None:
    """`slo backtest` over the same range (the SLO's own alerting is the static policy's
    default) fires the same intervals, merged per severity, tickets (1d and 3d windows,
    summed from 5m counts) included: the scoring replays exactly what the backtest does."""
    argv = [*head, "--start", f"{s:.0f}", "--end", f"{s + RANGE:.0f}", "--step", "30s"]
    assert main([*argv, "--format", "json"]) == 3  # ghost again
    intervals = json.loads(capsys.readouterr().out)["slos"]["login"]
    assert intervals, "the backtest found no alert at all"
    for severity in ("page", "ticket"):
        spans = sorted(
            (_unix(i["start"]) - s, None if i["end"] is None else _unix(i["end"]) - s)
            for i in intervals
            if i["severity"] == severity
        )
        merged: list[list[float | None]] = []
        for start, end in spans:
            last = merged[-1] if merged else None
            if last is not None and (last[1] is None or start <= last[1]):
                last[1] = None if last[1] is None or end is None else max(last[1], end)
            else:
                merged.append([start, end])
        scored = data["alerts"]["static/login"][severity]
        assert scored and [[a["start_s"], a["end_s"]] for a in scored] == merged, severity


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
