"""PromClient's non-PromQL reads (alerts, rules, config, targets, Alertmanagers) against a
loopback stub serving answers shaped like Prometheus' HTTP API.

The stub covers request shape and the error mapping; the same methods run against a
real Prometheus in the lab tests (``wait_wired`` on every ``lab up``; alerts, rules and
config in the chaos and game-day runs).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from support import JSONStub, serving
from tokenslo.chaos import targets
from tokenslo.errors import UnavailableError
from tokenslo.prometheus.client import PromClient

ALERT = {
    "labels": {"alertname": "SLOErrorBudgetBurn", "slo": "availability", "severity": "page"},
    "annotations": {"summary": "burning"},
    "state": "firing",
    "activeAt": "2026-01-01T00:00:00.123456789Z",
    "value": "1.5e+01",
}
OTHER_ALERT = {**ALERT, "labels": {"alertname": "Watchdog"}, "state": "pending"}
RULE_GROUP = {
    "name": "slo-availability",
    "file": "/lab/rules.yaml",
    "rules": [
        {
            "name": "SLOErrorBudgetBurn",
            "query": "x > 1",
            "duration": 120,
            "labels": {"slo": "availability", "long_window": "1h"},
            "type": "alerting",
        }
    ],
    "interval": 1,
}
CONFIG_YAML = "global:\n  scrape_interval: 1s\n  evaluation_interval: 2s\n"
TARGET = {"labels": {"job": "idp", "instance": "127.0.0.1:1"}, "health": "up"}
ALERTMANAGER = {"url": "http://127.0.0.1:9093/api/v2/alerts"}

ANSWERS = {
    "/api/v1/alerts": {"alerts": [ALERT, OTHER_ALERT]},
    "/api/v1/rules": {"groups": [RULE_GROUP]},
    "/api/v1/status/config": {"yaml": CONFIG_YAML},
    "/api/v1/targets": {"activeTargets": [TARGET], "droppedTargets": []},
    "/api/v1/alertmanagers": {"activeAlertmanagers": [ALERTMANAGER], "droppedAlertmanagers": []},
}


class _Stub(JSONStub):
    override: tuple[int, str] | None = None  # (status, body) instead of the API's answer
    seen: list[tuple[str, dict]] = []

    def do_GET(self):  # noqa: N802 - http.server naming
        parts = urlsplit(self.path)
        type(self).seen.append((parts.path, parse_qs(parts.query)))
        if type(self).override is not None:
            status, text = type(self).override
        elif parts.path in ANSWERS:
            status, text = 200, json.dumps({"status": "success", "data": ANSWERS[parts.path]})
        else:
            status, text = 404, "404 page not found"
        self.answer(status, text)


@pytest.fixture(scope="module")
def server_url():
    """One stub for the module: shutting a server down takes half a second."""
    with serving(_Stub) as url:
        yield url


@pytest.fixture
def stub(server_url):
    _Stub.seen, _Stub.override = [], None
    return _Stub, server_url


def test_reads_what_prometheus_runs_without_counting_queries(stub):
    handler, url = stub
    with PromClient(url) as client:
        assert client.alerts() == [ALERT, OTHER_ALERT]
        assert client.rules() == [RULE_GROUP]
        assert client.config_yaml() == CONFIG_YAML
        assert client.targets() == [TARGET]
        assert client.alertmanagers() == [ALERTMANAGER]
        assert client.queries == 0  # the counter is for PromQL batching only
        assert client.transport_error is None
    assert [path for path, _ in handler.seen] == list(ANSWERS)


def test_rule_type_is_sent_only_when_given(stub):
    handler, url = stub
    with PromClient(url) as client:
        client.rules(type="alert")
        client.rules()
    assert [params for _, params in handler.seen] == [{"type": ["alert"]}, {}]


def test_a_null_list_is_empty(stub):
    """vmalert's answer while no alert is pending or firing."""
    handler, url = stub
    handler.override = (200, '{"status":"success","data":{"alerts":null}}')
    with PromClient(url) as client:
        assert client.alerts() == []
        with pytest.raises(UnavailableError, match="non-API response"):
            client.rules()  # null is read as empty only under the key the API names


@pytest.mark.parametrize(
    "status, body, message",
    [
        (503, '{"status":"error","errorType":"unavailable","error":"starting"}', "HTTP 503"),
        (200, "<html>Grafana</html>", "non-API response"),
        (200, '{"status":"error","error":"no"}', "non-API response"),
        (200, '{"status":"success","data":{"something":"else"}}', "non-API response"),
        (200, '{"status":"success","data":[]}', "non-API response"),
    ],
)
def test_failures_are_unavailable_naming_prometheus(stub, status, body, message):
    handler, url = stub
    handler.override = (status, body)
    with PromClient(url) as client:
        for read in (client.alerts, client.rules, client.config_yaml, client.targets):
            with pytest.raises(UnavailableError, match=f"Prometheus at {url} .*{message}"):
                read()
        assert client.transport_error is None  # it answered; just not as wanted


def test_unreachable_is_unavailable_with_the_transport_error_kept():
    with PromClient("http://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(UnavailableError, match="Prometheus at http://127.0.0.1:9 unreachable"):
            client.alerts()
        assert client.transport_error is not None


def test_chaos_helpers_read_through_the_client(stub):
    _, url = stub
    assert targets.active_alerts(url, "SLOErrorBudgetBurn") == [ALERT]
    assert targets.burn_alert_rules(url, "availability") == RULE_GROUP["rules"]
    assert targets.burn_alert_rules(url, "latency") == []
    timing = targets.prometheus_timing(url)
    assert (timing.scrape_interval, timing.evaluation_interval) == (1.0, 2.0)


def test_config_that_is_not_a_mapping_is_unreadable(stub):
    handler, url = stub
    handler.override = (200, json.dumps({"status": "success", "data": {"yaml": "- a list"}}))
    with pytest.raises(UnavailableError, match="unreadable /api/v1/status/config"):
        targets.prometheus_timing(url)
