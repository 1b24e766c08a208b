"""Evaluator, backtest and client against a real Prometheus scraping a known exporter.

The exporter's counters are linear in time, so every error ratio is known exactly
and the evaluator's numbers must match the counters to 1e-6.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
from engine_backtest import flip_intervals
from engine_exporter import LinearExporter, linear

from support import backfill_openmetrics
from tokenslo.cli import main
from tokenslo.core import burnrate
from tokenslo.engine.evaluator import evaluate
from tokenslo.errors import InputError, UnavailableError
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.spec.loader import load_paths

pytestmark = pytest.mark.prometheus

# Short windows so a test needs seconds of data: period 1h; conditions on 30s/10s and 1m/15s.
POLICY = """\
    alerting:
      policy:
        - {severity: page, budget_percent: 2, long_window: 30s, short_window: 10s, for: 0s}
        - {severity: ticket, budget_percent: 5, long_window: 1m, short_window: 15s, for: 0s}
"""


def _slo(name: str, objective: float, sli: str, window: str = "1h", policy: str = POLICY) -> str:
    body = f"  - name: {name}\n    objective: {objective}\n    window: {window}\n"
    body += textwrap.indent(textwrap.dedent(sli), "    ")
    return body + policy


def _events(svc: str, metric: str = "demo_requests_total") -> str:
    return f"""\
        sli:
          events:
            total: sum(rate({metric}{{svc="{svc}"}}[{{{{window}}}}]))
            bad: sum(rate({metric}{{svc="{svc}",code="500"}}[{{{{window}}}}]))
        """


def _write(path: Path, *slos: str) -> str:
    path.write_text("version: tokenslo/v1\nservice: demo\nslos:\n" + "".join(slos))
    return str(path)


def _wait_for_samples(client: PromClient, selector: str, count: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = client.query(f"count_over_time({selector}[1h])", time.time())
        if result and float(result[0]["value"][1]) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not collect {count} samples of {selector} in time")


@pytest.fixture
def exporter():
    started: list[LinearExporter] = []

    def start(**kwargs) -> LinearExporter:
        exp = LinearExporter(**kwargs).start()
        started.append(exp)
        return exp

    yield start
    for exp in started:
        exp.stop()


def test_status_matches_the_counters_exactly(prometheus_factory, exporter, tmp_path, capsys):
    exp = exporter(
        requests={
            ("alpha", "200"): linear(98.0),
            ("alpha", "500"): linear(2.0),  # error ratio 0.02
            ("beta", "200"): linear(49.5),
            ("beta", "500"): linear(0.5),  # 0.01
            ("idle", "200"): linear(0.0),  # present, never moves
            ("hot", "200"): linear(5.0),
            ("hot", "500"): linear(5.0),  # 0.5
        },
        histograms={"gamma": (20.0, {"0.1": 10.0, "0.25": 19.0})},  # 5% slower than 0.25s
    )
    prom = prometheus_factory(exp.scrape_config())
    slos = _write(
        tmp_path / "demo.yaml",
        _slo("alpha", 95, _events("alpha")),
        _slo(
            "beta",
            98,
            """\
            sli:
              events:
                total: sum(increase(demo_requests_total{svc="beta"}[{{window}}]))
                good: sum(increase(demo_requests_total{svc="beta",code="200"}[{{window}}]))
            """,
        ),
        _slo(
            "gamma",
            90,
            """\
            sli:
              latency: {metric: demo_duration_seconds, threshold: 0.25, selector: 'svc="gamma"'}
            """,
        ),
        _slo("missing", 99, _events("nothing", metric="absent_requests_total")),
        _slo("idle", 99, _events("idle")),
    )
    hot = _write(tmp_path / "hot.yaml", _slo("hot", 90, _events("hot")))
    with PromClient(prom.url) as client:
        _wait_for_samples(client, 'demo_requests_total{svc="alpha",code="500"}', 8)

        # one HTTP query per distinct window (1h, 1m, 30s, 15s, 10s), whatever the SLO count
        before = client.queries
        statuses = evaluate(load_paths([slos]), client)
        assert client.queries - before == 5
        assert [s.state for s in statuses] == ["ok", "ok", "ok", "no_data", "no_traffic"]

    code = main(["slo", "status", slos, "--prometheus", prom.url, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert err.strip() == (
        "tokenslo: no data for SLO(s): missing; no traffic for SLO(s): idle (no data never passes)"
    )
    rows = {row["name"]: row for row in json.loads(out)}
    for name, objective, ratio in (("alpha", 95, 0.02), ("beta", 98, 0.01), ("gamma", 90, 0.05)):
        row = rows[name]
        burn = ratio / (1 - objective / 100)
        assert row["state"] == "ok"
        assert row["sli"] == pytest.approx(1 - ratio, abs=1e-6)
        assert row["error_budget_remaining"] == pytest.approx(1 - burn, abs=1e-6)
        assert set(row["burn_rates"]) == {"10s", "15s", "30s", "1m"}
        for value in row["burn_rates"].values():
            assert value == pytest.approx(burn, abs=1e-6)
        assert row["time_to_exhaustion"] == pytest.approx((1 - burn) * 3600 / burn, rel=1e-6)
    assert rows["missing"]["state"] == "no_data" and rows["missing"]["sli"] is None
    assert rows["idle"]["state"] == "no_traffic" and rows["idle"]["burn_rates"]["30s"] is None

    # a paging SLO fails the command (exit 1) and says which
    code = main(["slo", "status", hot, "--prometheus", prom.url, "--format", "markdown"])
    out, err = capsys.readouterr()
    assert code == 1 and err.strip() == "tokenslo: paging: hot"
    assert out.splitlines()[2].startswith("| hot | 90% | 50.000% |") and "| page |" in out

    # --at pins the instant: before the exporter existed there is no data at all
    code = main(["slo", "status", hot, "--prometheus", prom.url, "--at", "1000000000"])
    assert code == 3 and "no data for SLO(s): hot" in capsys.readouterr().err


def test_client_errors_map_to_exit_codes(
    prometheus_factory, exporter, tmp_path, capsys, monkeypatch
):
    exp = exporter(requests={("a", "200"): linear(1.0)})
    prom = prometheus_factory(exp.scrape_config())
    client = PromClient(prom.url)
    with pytest.raises(InputError) as info:
        client.query("sum(rate(demo_requests_total[5m])", time.time())
    assert info.value.exit_code == 2
    assert "bad_data" in str(info.value) and "sum(rate(demo_requests_total[5m])" in str(info.value)

    slos = _write(tmp_path / "a.yaml", _slo("a", 99, _events("a")))
    prom.stop()
    # Fail fast is a count, not a stopwatch: a connection attempt and one retry per
    # request, never a retry loop with backoff.
    import urllib3.util.connection as urllib3_connection

    attempts: list[object] = []
    connect = urllib3_connection.create_connection

    def counted(address, *args, **kwargs):
        attempts.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", counted)
    with pytest.raises(UnavailableError, match=f"Prometheus at {prom.url} unreachable"):
        client.query("up", time.time())
    assert 1 <= len(attempts) <= 2, attempts
    attempts.clear()
    code = main(["slo", "status", slos, "--prometheus", prom.url])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith(f"tokenslo: Prometheus at {prom.url} unreachable")
    assert "Traceback" not in err
    assert 1 <= len(attempts) <= 2, attempts  # one evaluation stops at the first failure


def _backfill(data_dir: Path, series: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    """``demo_requests_total`` history per (svc, code) as TSDB blocks."""
    backfill_openmetrics(
        data_dir,
        "demo_requests_total",
        {f'svc="{svc}",code="{code}"': samples for (svc, code), samples in series.items()},
    )


def test_backtest_alert_starts_when_the_math_says(tmp_path, capsys):
    # 90% objective over 10m. page: 10% budget in 20s → factor 3, threshold 0.3, no for;
    # ticket: 5% in 30s → factor 1, threshold 0.1, for 10s. Errors jump from 0 to 50%:
    # page after 12s; ticket's condition holds after 6s and fires 10s later, at 16s
    # (ignoring for would be 10s off, far outside the slack).
    policy = """\
    alerting:
      policy:
        - {severity: page, budget_percent: 10, long_window: 20s, short_window: 5s, for: 0s}
        - {severity: ticket, budget_percent: 5, long_window: 30s, short_window: 10s, for: 10s}
"""
    error_rate = 0.5
    # The history: 100 req/s without errors for 40 s (more than a long window), then
    # 50 ok + 50 failing per second, one sample a second, ending minutes ago.
    switch = float(int(time.time()) - 300)
    start = switch - 40
    seconds = range(71)
    ok = [(start + s, 100.0 * min(s, 40) + 50.0 * max(0, s - 40)) for s in seconds]
    failed = [(start + s, 50.0 * max(0, s - 40)) for s in seconds]
    workdir = tmp_path / "prometheus"
    _backfill(workdir / "data", {("flip", "200"): ok, ("flip", "500"): failed})
    prom = start_prometheus({"global": {"scrape_interval": "1s"}}, workdir)
    try:
        slos = _write(
            tmp_path / "flip.yaml",
            _slo("flip", 90, _events("flip"), window="10m", policy=policy),
            _slo("ghost", 90, _events("ghost"), window="10m", policy=policy),
        )
        argv = ["slo", "backtest", slos, "--prometheus", prom.url, "--format", "json"]
        window = ["--start", f"{switch - 15:.3f}", "--end", f"{switch + 20:.3f}"]
        intervals = flip_intervals([*argv, *window], capsys)
    finally:
        prom.stop()
    # The samples are exact, so only how PromQL sees them differs from the math: one
    # step of the range query, and rate() seeing a change one sample (1 s) late.
    slack = 1.0 + 1.0
    [flip] = [s for s in load_paths([slos]) if s.name == "flip"]
    for bw in flip.alerting.policy:
        interval = intervals[bw.severity]
        factor = burnrate.factor_of(flip, bw)
        detect = burnrate.detection_time(factor, flip.objective, bw.long_window, error_rate)
        expected = switch + detect + bw.for_
        started_at = _unix(interval["start"])
        assert abs(started_at - expected) <= slack, (bw.severity, started_at - expected)
        assert interval["end"] is None  # still burning at the end of the range
        print(
            f"{bw.severity}: fired {started_at - switch:.3f}s after the switch, "
            f"math says {expected - switch:.3f}s"
        )


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
