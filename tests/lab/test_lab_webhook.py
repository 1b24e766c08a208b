"""The Alertmanager webhook receiver over real HTTP."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tokenslo.lab.webhook import MAX_BODY_BYTES, NOTIFICATIONS_FILE, create_app

SECRET = "s3cret-" + "x" * 32
AUTH = {"Authorization": f"Bearer {SECRET}"}

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
    return serve_app(create_app(tmp_path, secret=SECRET, clock=lambda: next(clock))), tmp_path


def metric(base: str, status: str) -> float:
    for line in requests.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(f'tokenslo_webhook_notifications_total{{status="{status}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no series for status={status}")


def test_records_each_alert_with_its_arrival_time(receiver):
    server, state_dir = receiver
    assert requests.post(f"{server.url}/alerts", json=PAYLOAD, headers=AUTH, timeout=5).json() == {
        "recorded": 2
    }
    only_firing = {**PAYLOAD, "alerts": PAYLOAD["alerts"][:1]}
    requests.post(f"{server.url}/alerts", json=only_firing, headers=AUTH, timeout=5)
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


NESTED = b'{"alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"alerts": 3}', b'{"alerts": [1]}', NESTED])
def test_bad_payload_is_400_and_not_recorded(receiver, body):
    server, state_dir = receiver
    response = requests.post(f"{server.url}/alerts", data=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert (
        not (state_dir / NOTIFICATIONS_FILE).exists()
        or not (state_dir / NOTIFICATIONS_FILE).read_text()
    )
    assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}


def recorded(state_dir) -> str:
    path = state_dir / NOTIFICATIONS_FILE
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {SECRET}"}],
    ids=["none", "wrong-secret", "wrong-scheme"],
)
def test_a_forged_notification_is_401_and_not_recorded(receiver, headers):
    server, state_dir = receiver
    response = requests.post(f"{server.url}/alerts", json=PAYLOAD, headers=headers, timeout=5)
    assert response.status_code == 401
    assert recorded(state_dir) == ""
    assert requests.get(f"{server.url}/notifications", timeout=5).json() == {"notifications": []}


def test_a_declared_oversized_body_is_refused_unread(receiver):
    server, state_dir = receiver
    body = b'{"alerts": []}'.ljust(MAX_BODY_BYTES + 1)
    response = requests.post(f"{server.url}/alerts", data=body, headers=AUTH, timeout=10)
    assert response.status_code == 413
    assert recorded(state_dir) == ""


def test_an_undeclared_oversized_body_is_refused_while_reading(receiver):
    """Chunked, no Content-Length, and the body never ends: only a limit enforced while
    reading can answer; one applied after reading would wait for the end forever."""
    server, state_dir = receiver
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /alerts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {SECRET}\r\n\r\n".encode()
        )
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")
    assert recorded(state_dir) == ""
