"""Alertmanager webhook receiver: records every notification with the time it arrived.

The game-day backtest compares these arrival times with the fault timeline
(detection time), so each alert of a notification becomes one JSON line in
``notifications.jsonl`` with ``received_at``. Run as
``python -m tokenslo.lab.webhook --port 9402 --state-dir DIR --secret-file FILE``.

A recorded notification is evidence (the ``alert_delivered`` probe and a game
day's verdict rest on it), so ``POST /alerts`` takes nobody's word: it needs
``Authorization: Bearer <secret>``, the secret ``lab up`` writes to
``webhook-secret`` in the state dir (0600) and hands to Alertmanager through
``http_config.authorization.credentials_file``. Anything else is 401 and not
recorded. The 1 MB body limit is enforced while reading, before anything is
buffered beyond it.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.exposition import metrics_response, zeroed_counter
from tokenslo.lab.logsafe import clean
from tokenslo.lab.serving import BodyTooLarge, read_limited, server_options

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


def authorized(request: Request, secret: str) -> bool:
    """``Authorization: Bearer <secret>``, compared in constant time."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8"), secret.encode("utf-8")
    )


def create_app(state_dir: Path, *, secret: str, clock=time.time) -> Starlette:
    if not secret:
        raise ValueError("a webhook secret is required")
    path = Path(state_dir) / NOTIFICATIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    counter = zeroed_counter(
        "tokenslo_webhook_notifications",
        "Alerts received from Alertmanager, by alert status.",
        "status",
        ("firing", "resolved"),
        registry,
    )
    refused = zeroed_counter(
        "tokenslo_webhook_refused",
        "POST /alerts requests refused before recording, by reason.",
        "reason",
        ("unauthorized", "too_large", "invalid"),
        registry,
    )
    lock = threading.Lock()

    async def alerts(request: Request) -> Response:
        if not authorized(request, secret):
            refused.labels(reason="unauthorized").inc()
            log.warning("notification refused: not authenticated")
            return JSONResponse(
                {"error": "unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="tokenslo-webhook"'},
            )
        try:
            raw = await read_limited(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            refused.labels(reason="too_large").inc()
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("body: must be a JSON object")
            records = alert_records(payload, clock())
        except (ValueError, RecursionError) as exc:
            refused.labels(reason="invalid").inc()
            reason = exc if isinstance(exc, ValueError) else "nested too deeply"
            return JSONResponse({"error": f"invalid notification: {reason}"}, status_code=400)
        with lock, path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        for record in records:
            counter.labels(status=str(record["status"])).inc()
            log.info(
                "alert %s status=%s startsAt=%s",
                clean(record["labels"].get("alertname", "?")),
                clean(record["status"]),
                clean(record["startsAt"]),
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
        return metrics_response(registry)

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
    parser.add_argument(
        "--secret-file", type=Path, required=True, help="bearer secret Alertmanager must send"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--host must be a loopback address")
    try:
        secret = args.secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"tokenslo webhook: {args.secret_file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    if not secret:
        print(f"tokenslo webhook: {args.secret_file}: is empty", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # uvicorn handles SIGTERM: it stops accepting, finishes in-flight requests, exits 0.
    uvicorn.run(
        create_app(args.state_dir, secret=secret),
        host=args.host,
        port=args.port,
        log_level="warning",
        **server_options(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
