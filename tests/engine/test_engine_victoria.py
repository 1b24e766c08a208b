"""``slo status``, ``slo backtest`` and the generated rules against VictoriaMetrics, the
second PromQL backend, from the Debian package's real victoria-metrics and vmalert.

History goes in through VictoriaMetrics' import API at exact timestamps (one sample a
second). VictoriaMetrics counts a window's increase from the last sample before the
window to the last one inside it, without Prometheus' extrapolation, so with the
evaluation instant half a second after a sample every window's error count is the
difference of two imported values: the oracle below reads those values, not tokenslo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from engine_backtest import flip_intervals
from engine_exporter import LinearExporter, linear

from tokenslo.cli import main
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import ManagedProcess, start_victoria_metrics, start_vmalert
from tokenslo.waiting import wait_until

pytestmark = pytest.mark.prometheus

Samples = list[tuple[float, float]]  # (unix time, counter value)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start real VictoriaMetrics servers for a test; every one is stopped by PID."""
    started: list[ManagedProcess] = []

    def start(**kwargs) -> ManagedProcess:
        proc = start_victoria_metrics(tmp_path / f"victoria-{len(started)}", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def _import(url: str, series: dict[str, Samples]) -> None:
    """Write ``series`` (``name{labels}`` → samples) through ``/api/v1/import/prometheus``
    (text format, millisecond timestamps) and wait until every sample is queryable."""
    lines = [
        f"{name} {v} {round(t * 1000)}" for name, samples in series.items() for t, v in samples
    ]
    answer = requests.post(
        url + "/api/v1/import/prometheus", data="\n".join(lines) + "\n", timeout=30
    )
    assert answer.status_code == 204, answer.text
    first = min(t for samples in series.values() for t, _ in samples)
    last = max(t for samples in series.values() for t, _ in samples)
    span = f"{int(last - first) + 2}s"

    def stored() -> bool:
        requests.get(url + "/internal/force_flush", timeout=10)
        with PromClient(url) as client:
            result = client.query(f'sum(count_over_time({{__name__=~"demo_.+"}}[{span}]))', last)
        return bool(result) and float(result[0]["value"][1]) == len(lines)

    wait_until(stored, 30, 0.2, f"VictoriaMetrics to store {len(lines)} imported samples")


def _counter(start: float, seconds: int, rate: Callable[[int], float]) -> Samples:
    """A counter sampled every second from ``start``: the sum of ``rate(s)`` so far."""
    value, samples = 0.0, [(start, 0.0)]
    for s in range(1, seconds + 1):
        value += rate(s)
        samples.append((start + s, value))
    return samples


def _spec(path: Path, body: str) -> str:
    path.write_text("version: tokenslo/v1\nservice: demo\nslos:\n" + body)
    return str(path)


def _events_slo(name: str, objective: float, policy: str, svc: str | None = None) -> str:
    svc = svc or name
    return f"""\
  - name: {name}
    objective: {objective}
    window: 10m
    sli:
      events:
        total: sum(rate(demo_requests_total{{svc="{svc}"}}[{{{{window}}}}]))
        bad: sum(rate(demo_requests_total{{svc="{svc}",code="500"}}[{{{{window}}}}]))
{policy}"""


# 10m period. page: 30% of the budget in 2m → factor 1.5; ticket: 50% in 5m → factor 1.
STATUS_POLICY = """\
    alerting:
      policy:
        - {severity: page, budget_percent: 30, long_window: 2m, short_window: 30s, for: 0s}
        - {severity: ticket, budget_percent: 50, long_window: 5m, short_window: 1m, for: 0s}
"""


def test_status_numbers_are_the_imported_increases(victoria, tmp_path, capsys):
    vm = victoria()
    start = float(int(time.time()) - 900)  # 600 s of history ending 5 min ago
    # steady: 100 req/s, 2% failing. spike: 100 req/s, 1/s failing, 20/s in the last minute.
    # lat: 10 req/s, 9.5/s within 0.25 s.
    steady_bad = _counter(start, 600, lambda s: 2.0)
    spike_bad = _counter(start, 600, lambda s: 20.0 if s > 540 else 1.0)
    series = {
        'demo_requests_total{svc="steady",code="200"}': _counter(start, 600, lambda s: 98.0),
        'demo_requests_total{svc="steady",code="500"}': steady_bad,
        'demo_requests_total{svc="spike",code="200"}': _counter(
            start, 600, lambda s: 80.0 if s > 540 else 99.0
        ),
        'demo_requests_total{svc="spike",code="500"}': spike_bad,
        'demo_duration_seconds_count{svc="lat"}': _counter(start, 600, lambda s: 10.0),
        'demo_duration_seconds_bucket{svc="lat",le="0.25"}': _counter(start, 600, lambda s: 9.5),
        'demo_duration_seconds_bucket{svc="lat",le="+Inf"}': _counter(start, 600, lambda s: 10.0),
    }
    _import(vm.url, series)
    at = start + 600.5

    def ratio(bad: Samples, seconds: int) -> float:
        """Errors over the last ``seconds`` / 100 req/s: imported values, by hand."""
        return (bad[600][1] - bad[600 - seconds][1]) / (100.0 * seconds)

    latency_slo = """\
  - name: lat
    objective: 90
    window: 10m
    sli:
      latency: {metric: demo_duration_seconds, threshold: 0.25, selector: 'svc="lat"'}
"""
    calm = _spec(
        tmp_path / "calm.yaml",
        _events_slo("steady", 95, STATUS_POLICY)
        + latency_slo
        + STATUS_POLICY
        + _events_slo("missing", 95, STATUS_POLICY, svc="nothing"),
    )
    argv = ["slo", "status", "--prometheus", vm.url, "--at", f"{at:.3f}", "--format", "json"]
    code = main([*argv, calm])
    out, err = capsys.readouterr()
    assert code == 3 and err.strip() == (
        "tokenslo: no data for SLO(s): missing (no data never passes)"
    )
    rows = {row["name"]: row for row in json.loads(out)}
    windows = {"30s": 30, "1m": 60, "2m": 120, "5m": 300}
    # steady: 2% everywhere, budget 5% → burn 0.4; lat: 5% slow, budget 10% → burn 0.5
    for name, error_ratio, budget in (("steady", ratio(steady_bad, 600), 0.05), ("lat", 0.05, 0.1)):
        row = rows[name]
        burn = error_ratio / budget
        assert row["state"] == "ok"
        assert row["sli"] == pytest.approx(1 - error_ratio, abs=1e-9)
        assert row["error_budget_remaining"] == pytest.approx(1 - burn, abs=1e-9)
        assert row["burn_rates"] == {w: pytest.approx(burn, abs=1e-9) for w in windows}
        assert row["time_to_exhaustion"] == pytest.approx((1 - burn) * 600 / burn, rel=1e-9)
    assert ratio(steady_bad, 600) == pytest.approx(0.02)
    assert rows["missing"]["state"] == "no_data" and rows["missing"]["sli"] is None

    # spike: 30s and 1m 20%, 2m 10.5%, 5m 4.8%, 10m 2.9% → the page condition
    # (threshold 1.5 × 5% = 7.5% on 2m and 30s) holds, the ticket's (5% on 5m) does not.
    hot = _spec(tmp_path / "hot.yaml", _events_slo("spike", 95, STATUS_POLICY))
    code = main([*argv, hot])
    out, err = capsys.readouterr()
    assert code == 1 and err.strip() == "tokenslo: paging: spike"
    [row] = json.loads(out)
    assert row["state"] == "page"
    assert [a["firing"] for a in row["alerts"]] == [True, False]
    assert row["sli"] == pytest.approx(1 - ratio(spike_bad, 600), abs=1e-9)
    assert ratio(spike_bad, 600) == pytest.approx(0.029)
    assert row["error_budget_remaining"] == pytest.approx(1 - 0.029 / 0.05, abs=1e-9)
    for window, seconds in windows.items():
        assert row["burn_rates"][window] == pytest.approx(ratio(spike_bad, seconds) / 0.05)
    assert [ratio(spike_bad, s) for s in windows.values()] == pytest.approx(
        [0.2, 0.2, 0.105, 0.048]
    )


def test_backtest_alert_starts_where_the_imported_history_says(victoria, tmp_path, capsys):
    # 90% objective over 10m. page: 10% of the budget in 20s → factor 3, threshold 0.3;
    # ticket: 5% in 30s → factor 1, threshold 0.1, for 10s. From the switch on, 40 of
    # 100 req/s fail, so a window of w seconds t seconds after it holds 0.4·t/w errors:
    # the page's 20s window passes 0.3 after 15 s; the ticket's 30s window passes 0.1
    # after 7.5 s and fires 10 s later, at 17.5 s (its short windows pass earlier).
    policy = """\
    alerting:
      policy:
        - {severity: page, budget_percent: 10, long_window: 20s, short_window: 5s, for: 0s}
        - {severity: ticket, budget_percent: 5, long_window: 30s, short_window: 10s, for: 10s}
"""
    expected = {"page": 0.3 * 20 / 0.4, "ticket": 0.1 * 30 / 0.4 + 10}
    vm = victoria()
    switch = float(int(time.time()) - 300)
    begin = switch - 60
    _import(
        vm.url,
        {
            'demo_requests_total{svc="flip",code="200"}': _counter(
                begin, 100, lambda s: 60.0 if begin + s > switch else 100.0
            ),
            'demo_requests_total{svc="flip",code="500"}': _counter(
                begin, 100, lambda s: 40.0 if begin + s > switch else 0.0
            ),
        },
    )
    slos = _spec(
        tmp_path / "flip.yaml",
        _events_slo("flip", 90, policy) + _events_slo("ghost", 90, policy),
    )
    # Steps half a second after the samples, as in the status test; 56 of them with the
    # ticket's 10 s lead, more than the ~50 past which VictoriaMetrics would move the
    # grid onto whole seconds unless asked not to (the client's nocache=1).
    argv = ["slo", "backtest", slos, "--prometheus", vm.url, "--format", "json", "--step", "1s"]
    window = ["--start", f"{switch - 14.5:.3f}", "--end", f"{switch + 30.5:.3f}"]
    intervals = flip_intervals([*argv, *window], capsys)
    for severity, after in expected.items():
        fired = datetime.fromisoformat(intervals[severity]["start"]).timestamp() - switch
        # A condition is strict (>), the steps lag the samples by 0.5 s and come 1 s apart:
        # the first step past the math is at most 1.5 s after it, never before it.
        assert after <= fired <= after + 1.5, (severity, fired, after)
        assert intervals[severity]["end"] is None  # still burning at the end of the range
        print(f"{severity}: fired {fired:.3f}s after the switch, math says {after:.3f}s")


def test_generated_rules_on_vmalert_page_for_an_outage_only(
    victoria, alertmanager_factory, tmp_path
):
    # Two 99.9%/30d SLOs with the default policy, rules compressed 60×: the page's
    # windows 1h and 5m become 1m and 5s, its threshold is 14.4 × 0.1% = 1.44%.
    # outage fails 50% of its requests from the start, clean none.
    exp = LinearExporter(
        requests={
            ("clean", "200"): linear(100.0),
            ("clean", "500"): linear(0.0),
            ("outage", "200"): linear(50.0),
            ("outage", "500"): linear(50.0),
        }
    ).start()
    try:
        spec = _spec(
            tmp_path / "demo.yaml",
            "".join(
                f"""\
  - name: {name}
    objective: 99.9
    window: 30d
    sli:
      events:
        total: sum(rate(demo_requests_total{{svc="{name}"}}[{{{{window}}}}]))
        bad: sum(rate(demo_requests_total{{svc="{name}",code="500"}}[{{{{window}}}}]))
"""
                for name in ("clean", "outage")
            ),
        )
        rules = tmp_path / "rules.yml"
        assert main(["rules", "generate", spec, "-o", str(rules), "--time-scale", "60"]) == 0
        vm = victoria(scrape_config=exp.scrape_config())
        am = alertmanager_factory({"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})
        vmalert = start_vmalert(rules.read_text(), tmp_path / "vmalert", vm.url, am.url)
        try:
            with PromClient(vmalert.url) as api, PromClient(vm.url) as db:
                began = time.monotonic()
                firing = wait_until(
                    lambda: _alerts(api, "outage", "page", "firing"), 90, 0.5, "the outage page"
                )
                print(f"page firing {time.monotonic() - began:.1f}s after vmalert was ready")
                # The same instant: the clean SLO has no burn-rate alert, not even pending.
                clean = [a for a in api.alerts() if a["labels"].get("slo") == "clean"]
                assert [a for a in clean if a["labels"]["alertname"] == "SLOErrorBudgetBurn"] == []
                # without a page ``for`` the 6h/30m page may fire at the same evaluation
                assert "1h" in {a["labels"]["long_window"] for a in firing}

                # Every generated rule parses as MetricsQL and evaluates without error.
                groups = api.rules()
                evaluated = [r for g in groups for r in g["rules"]]
                assert {g["name"] for g in groups} == {"tokenslo-slo-clean", "tokenslo-slo-outage"}
                assert [r["name"] for r in evaluated if r.get("lastError")] == []
                # The recorded 5m ratios reached VictoriaMetrics: 50/100 and 0/100.
                for slo, ratio in (("outage", 0.5), ("clean", 0.0)):
                    expr = f'tokenslo:slo_error_ratio:5m{{slo="{slo}"}}'
                    [sample] = wait_until(
                        lambda e=expr: db.query(e, time.time()), 30, 0.5, f"{expr} recorded"
                    )
                    assert float(sample["value"][1]) == pytest.approx(ratio, abs=1e-6)
        finally:
            vmalert.stop()
    finally:
        exp.stop()


def _alerts(api: PromClient, slo: str, severity: str, state: str) -> list[dict]:
    """vmalert's burn-rate alerts of ``slo`` at ``severity`` in ``state``."""
    return [
        a
        for a in api.alerts()
        if a["labels"].get("alertname") == "SLOErrorBudgetBurn"
        and a["labels"].get("slo") == slo
        and a["labels"].get("severity") == severity
        and a["state"] == state
    ]
