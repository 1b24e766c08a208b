"""A tiny exporter whose counters are exact linear functions of time.

Every scrape computes all series from one timestamp, so over any window the
ratio of two counters' increases is exactly the ratio of their rates — which
lets the integration tests assert SLIs and burn rates to 1e-6.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from tokenslo.prometheus.process import free_port

Rate = Callable[[float], float]  # seconds since start → counter value


def linear(per_second: float) -> Rate:
    return lambda s: per_second * s


@dataclass(eq=False)  # the registry keys collectors by identity
class LinearExporter:
    """``demo_requests_total{svc, code}`` counters and a ``demo_duration_seconds`` histogram."""

    requests: dict[tuple[str, str], Rate] = field(default_factory=dict)
    # svc → (count rate, {le: cumulative rate}); +Inf is the count
    histograms: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    switch: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    switch_at: float | None = None  # absolute unix time for ``switch`` counters
    started: float = field(default_factory=time.time)
    port: int = 0
    _server: object = None
    _thread: threading.Thread | None = None

    def collect(self):
        now = time.time()
        s = now - self.started
        counter = CounterMetricFamily("demo_requests", "requests", labels=["svc", "code"])
        for (svc, code), rate in self.requests.items():
            counter.add_metric([svc, code], rate(s))
        for (svc, code), (before, after) in self.switch.items():
            counter.add_metric([svc, code], self._switched(before, after, now))
        yield counter
        hist = HistogramMetricFamily("demo_duration_seconds", "latency", labels=["svc"])
        for svc, (count_rate, buckets) in self.histograms.items():
            cumulative = [(le, r * s) for le, r in buckets.items()] + [("+Inf", count_rate * s)]
            hist.add_metric([svc], buckets=cumulative, sum_value=0.1 * count_rate * s)
        yield hist

    def _switched(self, before: float, after: float, now: float) -> float:
        """Value of a counter that changes rate at ``switch_at``."""
        if self.switch_at is None or now <= self.switch_at:
            return before * (now - self.started)
        return before * (self.switch_at - self.started) + after * (now - self.switch_at)

    def start(self) -> LinearExporter:
        registry = CollectorRegistry()
        registry.register(self)
        self.port = free_port()
        server, thread = start_http_server(self.port, addr="127.0.0.1", registry=registry)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    def scrape_config(self, interval: str = "1s") -> dict:
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": "demo", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
            ],
        }
