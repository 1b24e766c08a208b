"""A latency threshold that is not a bucket boundary is no data, never a page (issue 11 item 7).

A real Prometheus scrapes a healthy histogram (95% of requests under 0.1 s) whose
buckets are 0.1 and 0.5. An SLO at 0.25 s has no bucket to count: ``slo status`` must say
``no_data`` (exit 3) and why, not SLI 0% / page (exit 1). The SLO at 0.1 s on the same
histogram is the control. ``slo validate`` says what it could not check offline.
"""

from __future__ import annotations

import json

import pytest
from engine_exporter import linear
from test_engine_prometheus import _slo, _wait_for_samples, _write, exporter  # noqa: F401

from tokenslo.cli import main
from tokenslo.prometheus.client import PromClient

pytestmark = pytest.mark.prometheus


def _latency(threshold: float) -> str:
    return f"""\
        sli:
          latency: {{metric: demo_duration_seconds, threshold: {threshold}, selector: 'svc="web"'}}
        """


def test_missing_bucket_is_no_data_not_a_page(prometheus_factory, exporter, tmp_path, capsys):  # noqa: F811
    exp = exporter(
        requests={("web", "200"): linear(1.0)},
        histograms={"web": (20.0, {"0.1": 19.0, "0.5": 20.0})},
    )
    prom = prometheus_factory(exp.scrape_config())
    missing = _write(tmp_path / "missing.yaml", _slo("between-buckets", 90, _latency(0.25)))
    control = _write(tmp_path / "control.yaml", _slo("on-a-bucket", 90, _latency(0.1)))
    with PromClient(prom.url) as client:
        _wait_for_samples(client, 'demo_duration_seconds_count{svc="web"}', 8)

    code = main(["slo", "status", missing, "--prometheus", prom.url, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 3, err
    row = json.loads(out)[0]
    assert row["state"] == "no_data" and row["sli"] is None
    assert "bucket le=0.25 of demo_duration_seconds" in row["reason"]
    assert err.strip() == "tokenslo: no data for SLO(s): between-buckets (no data never passes)"

    code = main(["slo", "status", control, "--prometheus", prom.url, "--format", "json"])
    row = json.loads(capsys.readouterr().out)[0]
    assert code == 0 and row["state"] == "ok"
    assert row["sli"] == pytest.approx(0.95, abs=1e-6)

    # offline, validate cannot know the buckets and says so (a note: --strict still passes)
    assert main(["slo", "validate", "--strict", missing]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "OK: 1 SLOs in 1 file"
    assert err.strip() == (
        f"{missing}:8:59: note: slos[0].sli.latency.threshold: threshold 0.25s must be an le "
        "bucket of demo_duration_seconds; not checked without --prometheus "
        "(a missing bucket makes the SLO no_data)"
    )
    # with Prometheus it is bad input at the threshold
    assert main(["slo", "validate", missing, "--prometheus", prom.url]) == 2
    err = capsys.readouterr().err
    assert "threshold 0.25s is not a bucket of demo_duration_seconds" in err
    assert "0.1, 0.5, +Inf" in err
