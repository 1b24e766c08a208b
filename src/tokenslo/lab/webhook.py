"""Alertmanager webhook receiver: records every notification with the time it arrived.

The game-day backtest compares these arrival times with the fault timeline
(detection time), so each alert of a notification becomes one JSON line in
``notifications.jsonl`` with ``received_at``. Run as
``python -m tokenslo.lab.webhook --port 9402 --state-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.serving import server_options

log = logging.getLogger("tokenslo.lab.webhook")

NOTIFICATIONS_FILE = "notifications.jsonl"
MAX_BODY_BYTES = 1_000_000
MAX_RETURNED = 10_000


def alert_records(payload: dict[str, Any], received_at: float) -> list[dict[str, Any]]:
    """One record per alert of an Alertmanager webhook payload (version 4)."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("alerts: missing or not a list")
    records = []
    for alert in alerts:
        if not isinstance(alert, dict):
            raise ValueError("alerts: each alert must be an object")
        records.append(
            {
                "received_at": received_at,
                "receiver": payload.get("receiver"),
                "group_key": payload.get("groupKey"),
                "status": alert.get("status"),
                "labels": alert.get("labels") or {},
                "annotations": alert.get("annotations") or {},
                "startsAt": alert.get("startsAt"),
                "endsAt": alert.get("endsAt"),
                "fingerprint": alert.get("fingerprint"),
            }
        )
    return records


def read_notifications(path: Path, limit: int = MAX_RETURNED) -> list[dict[str, Any]]:
    """The last ``limit`` recorded notifications (skipping a torn last line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines[-limit:]:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def create_app(state_dir: Path, clock=time.time) -> Starlette:
    path = Path(state_dir) / NOTIFICATIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    counter = Counter(
        "tokenslo_webhook_notifications",
        "Alerts received from Alertmanager, by alert status.",
        ["status"],
        registry=registry,
    )
    for status in ("firing", "resolved"):
        counter.labels(status=status)
    lock = threading.Lock()

    async def alerts(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("body: must be a JSON object")
            records = alert_records(payload, clock())
        except ValueError as exc:
            return JSONResponse({"error": f"invalid notification: {exc}"}, status_code=400)
        with lock, path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        for record in records:
            counter.labels(status=str(record["status"])).inc()
            log.info(
                "alert %s status=%s startsAt=%s",
                record["labels"].get("alertname", "?"),
                record["status"],
                record["startsAt"],
            )
        return JSONResponse({"recorded": len(records)})

    async def notifications(request: Request) -> Response:
        records = read_notifications(path)
        alertname = request.query_params.get("alertname")
        if alertname:
            records = [r for r in records if r.get("labels", {}).get("alertname") == alertname]
        return JSONResponse({"notifications": records})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/alerts", alerts, methods=["POST"]),
            Route("/notifications", notifications),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tokenslo.lab.webhook")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9402)
    parser.add_argument("--state-dir", type=Path, default=Path(".tokenslo/lab"))
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--host must be a loopback address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # uvicorn handles SIGTERM: it stops accepting, finishes in-flight requests, exits 0.
    uvicorn.run(
        create_app(args.state_dir),
        host=args.host,
        port=args.port,
        log_level="warning",
        **server_options(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
