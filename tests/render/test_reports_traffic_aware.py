"""Report threshold lines of a traffic-aware SLO, through a real Prometheus.

Backfilled history (1 sample a second, from 0): 50 requests/s without errors. 90 % over
10m, one page burning 10 % of the budget in 20s (short 5s): static threshold
0.1 × 600/20 × 0.1 = 0.3 (SLI line 70 %, burn line ×3). Traffic-aware, at ``a``
seconds of history (less than the 10m period): N_10m = 50 a, N_20s = 50 × 20 = 1000,
threshold (N_10m / N_20s) × 0.1 × 0.1 = a / 2000 — SLI line 1 − a / 2000, burn line
a / 200: the line climbs as the young period fills.
"""

from __future__ import annotations

import re
import time

import pytest
import yaml

from support import backfill_openmetrics
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.reports import data as rd
from tokenslo.reports.render import render_html
from tokenslo.spec.loader import load_paths

pytestmark = pytest.mark.prometheus


def slo(mode: str) -> dict:
    """90 % over 10m, one page burning 10 % of the budget in 20s (short 5s, no for)."""
    count = "sum(increase(demo_requests_total{selector}[{{{{window}}}}]))"
    page = {"severity": "page", "budget_percent": 10, "long_window": "20s",
            "short_window": "5s", "for": "0s"}  # fmt: skip
    return {
        "name": mode,
        "objective": 90,
        "window": "10m",
        "sli": {"events": {"total": count.format(selector=""),
                           "bad": count.format(selector='{code="500"}')}},
        "alerting": {"burn_rate": mode, "policy": [page]},
    }  # fmt: skip


def test_traffic_aware_threshold_lines_move_with_the_history(tmp_path):
    origin = float(int(time.time()) - 600)
    workdir = tmp_path / "prometheus"
    ok = [(origin + s, 50.0 * s) for s in range(300)]
    backfill_openmetrics(
        workdir / "data",
        "demo_requests_total",
        {'code="200"': ok, 'code="500"': [(t, 0.0) for t, _v in ok]},
    )
    path = tmp_path / "slos.yaml"
    doc = {"version": "tokenslo/v1", "service": "demo",
           "slos": [slo("static"), slo("traffic-aware")]}  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    slos = load_paths([path])
    start, end = origin + 150, origin + 210
    prom = start_prometheus({"global": {"scrape_interval": "1s"}}, workdir)
    try:
        with PromClient(prom.url) as client:
            model = rd.collect(slos, client, start, end, 10.0)
    finally:
        prom.stop()

    static, aware = model.series["static"], model.series["traffic-aware"]
    assert [(th.label, th.value, th.points) for th in static.sli_thresholds] == [
        ("page 20s/5s ×3", pytest.approx(0.7), ())
    ]
    assert [th.value for th in static.burn_thresholds] == pytest.approx([3.0])
    [sli_line], [burn_line] = aware.sli_thresholds, aware.burn_thresholds
    assert sli_line.label == burn_line.label == "page 20s/5s traffic-aware"
    ages = [t - origin for t, _v in sli_line.points]
    assert ages == [150, 160, 170, 180, 190, 200, 210]
    assert [v for _t, v in sli_line.points] == pytest.approx([1 - a / 2000 for a in ages])
    assert [v for _t, v in burn_line.points] == pytest.approx([a / 200 for a in ages])

    # the chart draws the moving line through every step, the static one as a flat line
    html = render_html(model)
    assert points(html, "c1-traffic-aware-sli-threshold-0") == len(ages)
    assert points(html, "c1-traffic-aware-burn-threshold-0") == len(ages)
    assert points(html, "c0-static-sli-threshold-0") == 2


def points(html: str, gid: str) -> int:
    match = re.search(rf'<g id="{re.escape(gid)}">\s*<path d="([^"]+)"', html)
    assert match is not None, gid
    return len(re.findall(r"[ML] ", match[1]))
