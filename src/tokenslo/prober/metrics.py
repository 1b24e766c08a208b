"""The prober's ``probe_*`` metrics, in a registry of its own.

``ProbeMetrics.record(result)`` turns one ``TransactionResult`` into metric updates
and does no I/O, so tests can check the exported values without a network.

Names (labels ``target`` plus):

- ``probe_success{step}`` gauge, 1/0 for the last transaction. A step skipped
  because an earlier one failed reads 0; a step the target does not offer (no
  ``--api``, no introspection endpoint advertised) has no series.
- ``probe_steps_total{step,result}`` counter, result ∈ success, failure, skipped
  (for events SLIs: bad = failure, total = success + failure).
- ``probe_step_duration_seconds{step}`` histogram of *successful* steps (a
  refused connection is fast and must not look like good latency; failures are
  the events SLI's business).
- ``probe_revocation_propagation_seconds{stage}`` gauge, and
  ``probe_revocation_propagation_duration_seconds{stage}`` histogram (stage ∈
  introspection, api): seconds from the revocation's acknowledgement until the
  stage rejected the token. A timeout records the time waited, so it lands above
  any SLO threshold shorter than ``--propagation-timeout``.
- ``probe_clock_skew_seconds{source}`` gauge, source ∈ date_header, token_iat:
  the IdP's clock minus ours.
- ``probe_token_size_bytes``, ``probe_token_ttl_seconds``, ``probe_token_kid_published``
  (1 when the token's ``kid`` is in the JWKS) and ``probe_last_run_timestamp_seconds``.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tokenslo.prober.result import (
    RESULTS,
    SKEW_SOURCES,
    STAGES,
    STEPS,
    StepResult,
    TransactionResult,
)

# Every SLO latency threshold (0.05, 0.1, 0.3) is a bucket, as in the lab's contract.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
# Revocation propagation: the lab's gateway polls every 2 s, SaaS caches for minutes.
PROPAGATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TIMED_STEPS = tuple(s for s in STEPS if s != "propagation")


class ProbeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.success = Gauge(
            "probe_success",
            "1 if the step succeeded in the last transaction",
            ["target", "step"],
            registry=r,
        )
        self.steps = Counter(
            "probe_steps", "Probe steps by result", ["target", "step", "result"], registry=r
        )
        self.duration = Histogram(
            "probe_step_duration_seconds",
            "Duration of successful probe steps",
            ["target", "step"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.propagation = Gauge(
            "probe_revocation_propagation_seconds",
            "Seconds from revocation until the stage rejected the token (last transaction)",
            ["target", "stage"],
            registry=r,
        )
        self.propagation_hist = Histogram(
            "probe_revocation_propagation_duration_seconds",
            "Seconds from revocation until the stage rejected the token",
            ["target", "stage"],
            buckets=PROPAGATION_BUCKETS,
            registry=r,
        )
        self.skew = Gauge(
            "probe_clock_skew_seconds",
            "IdP clock minus local clock",
            ["target", "source"],
            registry=r,
        )
        self.token_size = Gauge(
            "probe_token_size_bytes", "Size of the last access token", ["target"], registry=r
        )
        self.token_ttl = Gauge(
            "probe_token_ttl_seconds",
            "Lifetime granted to the last access token",
            ["target"],
            registry=r,
        )
        self.kid_published = Gauge(
            "probe_token_kid_published",
            "1 if the last JWT access token's kid is in the JWKS",
            ["target"],
            registry=r,
        )
        self.last_run = Gauge(
            "probe_last_run_timestamp_seconds",
            "End of the last transaction",
            ["target"],
            registry=r,
        )

    def init_target(self, target: str) -> None:
        """Counters at 0 for every step and result, so ratios exist before the first failure."""
        for step in STEPS:
            for result in RESULTS:
                self.steps.labels(target, step, result)

    def record(self, result: TransactionResult) -> None:
        target = result.target
        for step in STEPS:
            outcome = result.steps.get(step)
            if outcome is not None:
                self._record_step(target, outcome)
        for stage in STAGES:
            seconds = result.propagation.get(stage)
            if seconds is not None:
                self.propagation.labels(target, stage).set(seconds)
                self.propagation_hist.labels(target, stage).observe(seconds)
        for source in SKEW_SOURCES:
            skew = result.skew.get(source)
            if skew is not None:
                self.skew.labels(target, source).set(skew)
        if result.token_size is not None:
            self.token_size.labels(target).set(result.token_size)
        if result.token_ttl is not None:
            self.token_ttl.labels(target).set(result.token_ttl)
        if result.kid_published is not None:
            self.kid_published.labels(target).set(1.0 if result.kid_published else 0.0)
        self.last_run.labels(target).set(result.finished_at)

    def _record_step(self, target: str, outcome: StepResult) -> None:
        self.steps.labels(target, outcome.step, outcome.result).inc()
        if outcome.result == "skipped" and not outcome.blocked:
            # Not offered by this target: no series rather than a misleading 0.
            with contextlib.suppress(KeyError):
                self.success.remove(target, outcome.step)
            return
        self.success.labels(target, outcome.step).set(1.0 if outcome.result == "success" else 0.0)
        if (
            outcome.result == "success"
            and outcome.duration is not None
            and outcome.step in TIMED_STEPS
        ):
            self.duration.labels(target, outcome.step).observe(outcome.duration)
