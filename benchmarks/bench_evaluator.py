"""Benchmark: evaluate() over 50, 100 and 200 SLOs against a real Prometheus.

A synthetic exporter serves request counters and latency histograms for 200
services; a real Prometheus scrapes it every second for ~20 s; then each SLO
set is evaluated (median of 3 runs). HTTP queries must equal the number of
distinct windows, whatever the SLO count. Target: 200 SLOs in < 3 s.

Run: .venv/bin/python benchmarks/bench_evaluator.py [--scrape-seconds 20]
Prints lines like ``slos=200 windows=8 queries=8 wall_s=0.84``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from tokenslo.core.model import SLO, EventsSLI, LatencySLI
from tokenslo.engine.evaluator import evaluate, plan_queries
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import free_port, start_prometheus

SERVICES = 200
THRESHOLDS = ("0.1", "0.25", "0.5")
TARGET_S = 3.0


class SyntheticExporter:
    """Counters linear in time; each service gets its own error and slow ratio."""

    def __init__(self, services: int):
        self.services = [f"svc{i:03d}" for i in range(services)]
        self.started = time.time()

    def collect(self):
        s = time.time() - self.started
        requests = CounterMetricFamily("bench_requests", "requests", labels=["svc", "code"])
        latency = HistogramMetricFamily("bench_duration_seconds", "latency", labels=["svc"])
        for i, svc in enumerate(self.services):
            rate = 10.0 + i % 7
            bad = rate * (i % 5) / 1000.0
            requests.add_metric([svc, "200"], (rate - bad) * s)
            requests.add_metric([svc, "500"], bad * s)
            buckets = [(le, rate * (0.90 + 0.03 * k) * s) for k, le in enumerate(THRESHOLDS)]
            latency.add_metric([svc], buckets=[*buckets, ("+Inf", rate * s)], sum_value=rate * s)
        yield requests
        yield latency


def make_slos(count: int) -> list[SLO]:
    """Alternate events (bad-based, good-based) and latency SLIs over distinct services."""
    slos = []
    for i in range(count):
        svc = f"svc{i % SERVICES:03d}"
        kind = i % 3
        if kind == 0:
            sli = EventsSLI(
                total=f'rate(bench_requests_total{{svc="{svc}"}}[{{{{window}}}}])',
                bad=f'rate(bench_requests_total{{svc="{svc}",code="500"}}[{{{{window}}}}])',
            )
        elif kind == 1:
            sli = EventsSLI(
                total=f'increase(bench_requests_total{{svc="{svc}"}}[{{{{window}}}}])',
                good=f'increase(bench_requests_total{{svc="{svc}",code="200"}}[{{{{window}}}}])',
            )
        else:
            threshold = float(THRESHOLDS[(i // 3) % len(THRESHOLDS)])
            sli = LatencySLI("bench_duration_seconds", threshold, f'svc="{svc}"')
        slos.append(SLO(f"slo-{i:03d}", svc, 99.0, 30 * 86400.0, sli))
    return slos


def wait_for_samples(client: PromClient, seconds: float) -> None:
    """Let Prometheus scrape for ``seconds`` (bounded), checking it actually does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    result = client.query(
        'count_over_time(bench_requests_total{svc="svc000",code="200"}[1h])', time.time()
    )
    samples = float(result[0]["value"][1]) if result else 0
    if samples < 2:
        raise SystemExit(f"Prometheus collected {samples:g} samples; cannot benchmark")


def bench(client: PromClient, slos: list[SLO], runs: int = 3) -> tuple[int, int, float, Counter]:
    """(windows, queries per evaluation, median wall seconds, states)."""
    windows = len({w for w, _ in plan_queries(slos)})
    times, states, queries = [], Counter(), 0
    for _ in range(runs):
        before = client.queries
        started = time.perf_counter()
        statuses = evaluate(slos, client)
        times.append(time.perf_counter() - started)
        queries = client.queries - before
        states = Counter(s.state for s in statuses)
    return windows, queries, statistics.median(times), states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrape-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)

    exporter = SyntheticExporter(SERVICES)
    registry = CollectorRegistry()
    registry.register(exporter)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    prom = None
    try:
        with tempfile.TemporaryDirectory(prefix="tokenslo-bench-") as tmp:
            config = {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "bench", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                ],
            }
            prom = start_prometheus(config, Path(tmp) / "prometheus")
            try:
                with PromClient(prom.url, timeout=30) as client:
                    wait_for_samples(client, args.scrape_seconds)
                    worst = 0.0
                    for count in (50, 100, 200):
                        windows, queries, wall, states = bench(client, make_slos(count))
                        worst = max(worst, wall) if count == 200 else worst
                        print(
                            f"slos={count} windows={windows} queries={queries} wall_s={wall:.2f} "
                            f"states={dict(sorted(states.items()))}"
                        )
            finally:
                prom.stop()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    verdict = "ok" if worst < TARGET_S else "SLOW"
    print(f"target: 200 SLOs < {TARGET_S:g}s: {verdict}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
