"""`slo validate --prometheus`: latency thresholds against a real Prometheus's buckets."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from tokenslo.cli import main
from tokenslo.prometheus.process import free_port

pytestmark = pytest.mark.prometheus

BUCKETS = (0.05, 0.1, 0.3, 1.0)
METRIC = "spec_test_request_duration_seconds"

SLO_FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: latency
    objective: 95
    window: 30d
    sli:
      latency:
        metric: {metric}
        selector: '{{grant_type="client_credentials"}}'
        threshold: {threshold}
"""


@pytest.fixture
def exporter() -> Iterator[int]:
    """A prometheus_client exporter on loopback with one histogram; shut down afterwards."""
    registry = CollectorRegistry()
    histogram = Histogram(
        METRIC, "test latency", ["grant_type"], buckets=BUCKETS, registry=registry
    )
    for value in (0.01, 0.2, 0.5):
        histogram.labels(grant_type="client_credentials").observe(value)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def prometheus_url(prometheus_factory, exporter) -> str:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "exporter", "static_configs": [{"targets": [f"127.0.0.1:{exporter}"]}]}
        ],
    }
    prom = prometheus_factory(config)
    query = f"count by (le) ({METRIC}_bucket)"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = requests.get(f"{prom.url}/api/v1/query", params={"query": query}, timeout=5).json()
        if len(body["data"]["result"]) == len(BUCKETS) + 1:
            return prom.url
        time.sleep(0.25)
    pytest.fail("Prometheus did not scrape the exporter within 30s")


def _validate(tmp_path, capsys, url: str, threshold: float, metric: str = METRIC):
    path = tmp_path / "lat.yaml"
    path.write_text(SLO_FILE.format(metric=metric, threshold=threshold))
    code = main(["slo", "validate", "--prometheus", url, str(path)])
    out, err = capsys.readouterr()
    return code, out, err, path


def test_threshold_on_a_bucket_passes(tmp_path, capsys, prometheus_url):
    for threshold in (0.3, 1):
        code, out, err, _ = _validate(tmp_path, capsys, prometheus_url, threshold)
        assert code == 0, err
        assert out.strip() == "OK: 1 SLOs in 1 file"


def test_threshold_between_buckets_names_position_and_buckets(tmp_path, capsys, prometheus_url):
    code, out, err, path = _validate(tmp_path, capsys, prometheus_url, 0.25)
    assert code == 2
    assert out == ""
    assert err.startswith(f"tokenslo: {path}:11:")
    assert "slos[0].sli.latency.threshold: threshold 0.25s is not a bucket" in err
    assert "available le buckets: 0.05, 0.1, 0.3, 1, +Inf" in err
    assert "Traceback" not in err


def test_metric_without_series_is_no_data(tmp_path, capsys, prometheus_url):
    code, _, err, _ = _validate(tmp_path, capsys, prometheus_url, 0.3, metric="absent_seconds")
    assert code == 3
    assert "no series" in err and "absent_seconds_bucket" in err


def test_unreachable_prometheus_exits_3(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err, _ = _validate(tmp_path, capsys, url, 0.3)
    assert code == 3
    assert err.count("\n") == 1 and f"Prometheus at {url} is unreachable" in err
