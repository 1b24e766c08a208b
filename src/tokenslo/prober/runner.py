"""The prober's loop and its metrics endpoint (the I/O edge of this component).

``Prober.run_once()`` runs one transaction and records it; ``Prober.run(stop)``
repeats that every ``interval`` seconds until ``stop`` is set (SIGTERM/SIGINT in
the CLI) or ``max_runs`` transactions ran. Each transaction is bounded by the
config's timeouts, so stopping takes at most one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import requests
from prometheus_client import CollectorRegistry, start_http_server

from tokenslo.errors import InputError
from tokenslo.prober.config import ProbeConfig
from tokenslo.prober.metrics import ProbeMetrics
from tokenslo.prober.result import TransactionResult
from tokenslo.prober.transaction import run_transaction
from tokenslo.signals import handle_stop_signals

log = logging.getLogger("tokenslo.prober")


class Prober:
    def __init__(self, config: ProbeConfig, metrics: ProbeMetrics | None = None):
        self.config = config
        self.metrics = metrics or ProbeMetrics()
        self.metrics.init_target(config.label)
        self.runs = 0

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def run_once(self) -> TransactionResult:
        """A fresh HTTP session per transaction, so connection set-up is measured too."""
        with requests.Session() as session:
            result = run_transaction(self.config, session)
        self.metrics.record(result)
        self.runs += 1
        log.info("%s", summary_line(result))
        return result

    def run(self, stop: threading.Event, max_runs: int | None = None) -> int:
        """Transactions every ``interval`` seconds until ``stop``; returns how many ran."""
        while not stop.is_set() and (max_runs is None or self.runs < max_runs):
            began = time.monotonic()
            self.run_once()
            if max_runs is not None and self.runs >= max_runs:
                break
            stop.wait(max(0.0, self.config.interval - (time.monotonic() - began)))
        return self.runs


def summary_line(result: TransactionResult) -> str:
    """One log line per transaction: verdict, failed steps with reasons, the token's hash."""
    verdict = "ok" if result.ok else "FAILED"
    failed = [f"{s.step}: {s.detail}" for s in result.steps.values() if s.result == "failure"]
    failed = [f for f in failed if not f.startswith("transaction:")]
    parts = [f"probe {result.target} {verdict}"]
    if failed:
        parts.append("; ".join(failed))
    if result.token_ref:
        parts.append(f"token={result.token_ref}")
    return " ".join(parts)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve ``/metrics`` in a daemon thread; the caller shuts the returned server down."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="--listen"
        ) from None
    return server


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT, SIGTERM or SIGHUP; the previous handlers come back afterwards."""
    stop = threading.Event()
    with handle_stop_signals(lambda _signum, _frame: stop.set()):
        yield stop
