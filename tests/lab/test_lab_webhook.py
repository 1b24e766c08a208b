"""The Alertmanager webhook receiver over real HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from tokenslo.lab.webhook import NOTIFICATIONS_FILE, create_app

PAYLOAD = {
    "version": "4",
    "receiver": "tokenslo-webhook",
    "groupKey": '{}:{alertname="X"}',
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "IdPAvailabilityBurn", "severity": "page"},
            "annotations": {"summary": "burning"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "abc",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "Other"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T00:05:00Z",
        },
    ],
}


@pytest.fixture
def receiver(serve_app, tmp_path):
    clock = iter([1000.0, 2000.0])
    return serve_app(create_app(tmp_path, clock=lambda: next(clock))), tmp_path


def metric(base: str, status: str) -> float:
    for line in requests.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(f'tokenslo_webhook_notifications_total{{status="{status}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no series for status={status}")


def test_records_each_alert_with_its_arrival_time(receiver):
    server, state_dir = receiver
    assert requests.post(f"{server.url}/alerts", json=PAYLOAD, timeout=5).json() == {"recorded": 2}
    only_firing = {**PAYLOAD, "alerts": PAYLOAD["alerts"][:1]}
    requests.post(f"{server.url}/alerts", json=only_firing, timeout=5)
    records = requests.get(f"{server.url}/notifications", timeout=5).json()["notifications"]
    assert [(r["labels"]["alertname"], r["status"], r["received_at"]) for r in records] == [
        ("IdPAvailabilityBurn", "firing", 1000.0),
        ("Other", "resolved", 1000.0),
        ("IdPAvailabilityBurn", "firing", 2000.0),
    ]
    assert records[1]["endsAt"] == "2026-01-01T00:05:00Z"
    lines = (state_dir / NOTIFICATIONS_FILE).read_text().splitlines()
    assert json.loads(lines[0])["startsAt"] == "2026-01-01T00:00:00Z"
    filtered = requests.get(f"{server.url}/notifications?alertname=Other", timeout=5).json()
    assert len(filtered["notifications"]) == 1
    assert metric(server.url, "firing") == 2
    assert metric(server.url, "resolved") == 1


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"alerts": 3}', b'{"alerts": [1]}'])
def test_bad_payload_is_400_and_not_recorded(receiver, body):
    server, state_dir = receiver
    response = requests.post(f"{server.url}/alerts", data=body, timeout=5)
    assert response.status_code == 400
    assert (
        not (state_dir / NOTIFICATIONS_FILE).exists()
        or not (state_dir / NOTIFICATIONS_FILE).read_text()
    )
    assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
