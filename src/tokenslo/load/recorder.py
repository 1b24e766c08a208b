"""Exact per-request results, fed by Locust's ``events.request`` and merged from workers.

Locust's own percentiles are rounded (to 2 significant digits above 100 ms) and
its failure flag counts every 4xx; the gate needs the exact share of requests at
or under an SLO's threshold. So every request's latency is kept as a count per
whole microsecond, rounded *up* (a request is never counted faster than it was).
Counts add up, which makes worker reports mergeable on the master without loss.

``Recorder`` is pure; ``install(environment, out_path)`` wires it to Locust's events.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_KEY = "tokenslo_recorder"
ENV_OUT = "TOKENSLO_RECORDER_OUT"  # where the master (or a lone process) writes the results
MAX_ERROR_KINDS = 20  # distinct failure messages kept per request name


@dataclass
class NameStats:
    """One request name: how many, how many failed, latencies of the successful ones."""

    requests: int = 0
    failures: int = 0
    latency_us: Counter[int] = field(default_factory=Counter)  # successful requests only
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, latency_ms: float, error: str | None) -> None:
        self.requests += 1
        if error is None:
            self.latency_us[math.ceil(round(latency_ms * 1000.0, 6))] += 1
            return
        self.failures += 1
        if error in self.errors or len(self.errors) < MAX_ERROR_KINDS:
            self.errors[error] += 1

    @property
    def successes(self) -> int:
        return self.requests - self.failures

    def at_or_under(self, threshold_s: float) -> int:
        """Successful requests that took at most ``threshold_s`` seconds (exact, µs resolution)."""
        limit = round(threshold_s * 1_000_000)
        return sum(count for us, count in self.latency_us.items() if us <= limit)

    def merge(self, other: NameStats) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.latency_us.update(other.latency_us)
        for message, count in other.errors.items():
            if message in self.errors or len(self.errors) < MAX_ERROR_KINDS:
                self.errors[message] += count

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "latency_us": sorted([us, n] for us, n in self.latency_us.items()),
            "errors": dict(self.errors.most_common()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NameStats:
        return cls(
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            latency_us=Counter({int(us): int(n) for us, n in data.get("latency_us", [])}),
            errors=Counter({str(k): int(v) for k, v in data.get("errors", {}).items()}),
        )


@dataclass
class Recorder:
    names: dict[str, NameStats] = field(default_factory=dict)
    first_start: float | None = None  # unix time the first request started
    last_end: float | None = None  # unix time the last request ended
    workers: Counter[str] = field(default_factory=Counter)  # worker id → requests it reported
    unsent: dict[str, str] = field(default_factory=dict)  # name → why the target made it moot
    stopped: str | None = None  # why the run stopped before its duration (earlystop)

    def note_unsent(self, name: str, reason: str) -> None:
        """The target cannot serve ``name`` (e.g. no refresh tokens): not the run's failure."""
        self.unsent.setdefault(name, reason)

    def record(
        self, name: str, latency_ms: float, error: str | None, start: float | None = None
    ) -> None:
        self.names.setdefault(name, NameStats()).add(latency_ms, error)
        if start is not None:
            self._span(start, start + latency_ms / 1000.0)

    def _span(self, start: float | None, end: float | None) -> None:
        if start is not None:
            self.first_start = start if self.first_start is None else min(self.first_start, start)
        if end is not None:
            self.last_end = end if self.last_end is None else max(self.last_end, end)

    @property
    def total(self) -> int:
        return sum(s.requests for s in self.names.values())

    def merge(self, other: Recorder, worker: str | None = None) -> None:
        for name, stats in other.names.items():
            self.names.setdefault(name, NameStats()).merge(stats)
        self._span(other.first_start, other.last_end)
        if worker is not None:
            self.workers[worker] += other.total
        self.workers.update(other.workers)
        for name, reason in other.unsent.items():
            self.note_unsent(name, reason)
        self.stopped = self.stopped or other.stopped

    def drain(self) -> dict[str, Any]:
        """This recorder as JSON, then empty: what a worker sends in each report."""
        data = self.to_json()
        self.names, self.first_start, self.last_end = {}, None, None
        self.workers, self.unsent, self.stopped = Counter(), {}, None
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "names": {name: s.to_json() for name, s in sorted(self.names.items())},
            "first_start": self.first_start,
            "last_end": self.last_end,
            "workers": dict(self.workers),
            "unsent": dict(self.unsent),
            "stopped": self.stopped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recorder:
        return cls(
            names={n: NameStats.from_json(s) for n, s in data.get("names", {}).items()},
            first_start=data.get("first_start"),
            last_end=data.get("last_end"),
            workers=Counter({str(k): int(v) for k, v in data.get("workers", {}).items()}),
            unsent={str(k): str(v) for k, v in data.get("unsent", {}).items()},
            stopped=data.get("stopped"),
        )

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()), encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> Recorder:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def error_text(exception: BaseException | None) -> str | None:
    """A short failure description; our own failure messages never contain token values."""
    if exception is None:
        return None
    text = str(exception).strip() or type(exception).__name__
    return text.splitlines()[0][:160]


# -- Locust wiring (I/O) --------------------------------------------------------------------


def install(environment: Any, out_path: str | None) -> Recorder:
    """Feed a recorder from ``environment.events``.

    Workers send their counts with each report to the master (and drain them, so
    nothing is counted twice); the master merges; the master (or a stand-alone
    run) writes the result to ``out_path`` on ``quit``, after the workers' final
    reports have arrived.
    """
    from locust.runners import WorkerRunner

    recorder = Recorder()
    events = environment.events

    @events.request.add_listener
    def on_request(name, response_time, exception=None, start_time=None, **_kw):
        recorder.record(name, float(response_time or 0.0), error_text(exception), start_time)

    @events.report_to_master.add_listener
    def on_report(client_id, data):
        if isinstance(environment.runner, WorkerRunner):
            data[REPORT_KEY] = recorder.drain()

    @events.worker_report.add_listener
    def on_worker_report(client_id, data):
        if REPORT_KEY in data:
            recorder.merge(Recorder.from_json(data[REPORT_KEY]), worker=str(client_id))

    @events.quit.add_listener
    def on_quit(exit_code, **_kw):
        if out_path and not isinstance(environment.runner, WorkerRunner):
            recorder.write(out_path)

    environment.tokenslo_recorder = recorder
    return recorder
