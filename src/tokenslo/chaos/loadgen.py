"""Bounded background traffic for experiments: ``python -m tokenslo.chaos.loadgen``.

A small stand-in for the Locust ``mixed`` scenario so burn-rate windows have
traffic while a fault is active: one thread per flow (issue a token as the target's
load client and call the API with it, if the target has one; introspect; fetch the
JWKS), at the endpoints discovered through the target (its proxy, if any), each
paced at ``--rate`` loops per second, so a slowed endpoint never starves the others.
Always bounded: it exits at ``--duration`` on its own (an experiment killed with
SIGKILL cannot leave it running for long), on SIGTERM/SIGINT it stops at once.
Client-side outcomes are written to ``--stats`` as JSON (the only view of faults the
server does not count, such as dropped connections). Tokens are never written anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from tokenslo.errors import TokensloError
from tokenslo.signals import handle_stop_signals
from tokenslo.target.credentials import credentials
from tokenslo.target.discovery import Endpoints, discover
from tokenslo.target.loader import load_target
from tokenslo.target.model import Target

MAX_DURATION = 3600.0
REQUEST_TIMEOUT = 2.0


class Flows:
    """The paced flows against one target: endpoints from discovery, clients by role."""

    def __init__(self, target: Target, endpoints: Endpoints, rate: float):
        self.endpoints = endpoints
        self.api = target.api_url
        client = target.client("load")
        self.token_params = client.token_params
        self.auth = credentials(client).auth
        # Introspect with the introspection client when the target has one, else skip the flow.
        self.introspector = (
            credentials(target.clients["introspection"]).auth
            if "introspection" in target.clients and endpoints.introspection_endpoint
            else None
        )
        self.interval = 1.0 / rate
        self.stop = threading.Event()
        self.stats: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.token: str | None = None

    def count(self, flow: str, outcome: str) -> None:
        with self.lock:
            self.stats[f"{flow}:{outcome}"] += 1

    def call(self, flow: str, session: requests.Session, method: str, url: str, **kw):
        try:
            response = session.request(method, url, timeout=REQUEST_TIMEOUT, **kw)
        except requests.ConnectionError:
            self.count(flow, "connection_error")
            return None
        except requests.Timeout:
            self.count(flow, "timeout")
            return None
        except requests.RequestException:
            self.count(flow, "error")
            return None
        self.count(flow, str(response.status_code))
        return response

    def issue_and_call(self, session: requests.Session) -> None:
        response = self.call(
            "token",
            session,
            "POST",
            self.endpoints.token_endpoint,
            data={"grant_type": "client_credentials", **self.token_params},
            auth=self.auth,
        )
        token = _access_token(response)
        if token:
            self.token = token
        if self.token and self.api:
            for _ in range(2):
                self.call(
                    "api",
                    session,
                    "GET",
                    self.api,
                    headers={"Authorization": f"Bearer {self.token}"},
                )

    def introspect(self, session: requests.Session) -> None:
        if self.token and self.introspector and self.endpoints.introspection_endpoint:
            self.call(
                "introspect",
                session,
                "POST",
                self.endpoints.introspection_endpoint,
                data={"token": self.token},
                auth=self.introspector,
            )

    def jwks(self, session: requests.Session) -> None:
        if self.endpoints.jwks_uri:
            self.call("jwks", session, "GET", self.endpoints.jwks_uri)

    def loop(self, step, deadline: float) -> None:
        session = requests.Session()
        next_at = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < deadline:
            step(session)
            next_at = max(next_at + self.interval, time.monotonic())
            self.stop.wait(max(0.0, min(next_at, deadline) - time.monotonic()))
        session.close()


def _access_token(response) -> str | None:
    if response is None or response.status_code != 200:
        return None
    try:
        token = response.json().get("access_token")
    except ValueError:
        return None
    return token if isinstance(token, str) and token else None


def run(flows: Flows, duration: float) -> dict:
    deadline = time.monotonic() + min(duration, MAX_DURATION)
    steps = (flows.issue_and_call, flows.introspect, flows.jwks)
    threads = [
        threading.Thread(target=flows.loop, args=(step, deadline), daemon=True) for step in steps
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=min(duration, MAX_DURATION) + REQUEST_TIMEOUT + 5)
    return {"started_at": started, "ended_at": time.time(), "counts": dict(flows.stats)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenslo.chaos.loadgen")
    parser.add_argument("--target-file", required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--stats", type=Path)
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION or not 0 < args.rate <= 100:
        parser.error(f"--duration must be in (0, {MAX_DURATION:g}] and --rate in (0, 100]")
    try:
        target = load_target(args.target_file)
        flows = Flows(target, discover(target), args.rate)
    except TokensloError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return exc.exit_code
    with handle_stop_signals(lambda *_: flows.stop.set()):
        summary = run(flows, args.duration)
    if args.stats:
        args.stats.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
