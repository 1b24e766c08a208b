"""Benchmark: one evaluation of a calendar SLO's period-to-date record in a real Prometheus.

The expression is the generated one (``tokenslo.rules.calendar.period_to_date``) for a
year, on 31 December (the whole 366d range holds steps), with the step count
``vector(1)``, present at every step as a recorded count would be (no history needed).
Two plans: UTC (1h counts at a 1h step, 3 × 8 784 inner steps) and Asia/Kolkata
(UTC+5:30: 5m counts at a 5m step, 3 × 105 408 inner steps). A calendar group runs two
such records (errors and events) every 5m.

Run: .venv/bin/python benchmarks/bench_calendar_rules.py [--repeat 5]
Prints one line per plan: ``period=year step_s=... inner_steps=... median_s=... max_s=...
prom_cpu_s=...`` (wall time of the instant query; Prometheus's CPU over all repeats).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tokenslo.core.model import Calendar
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.rules.calendar import LONGEST, RESIDUES, CalendarPlan, period_to_date


def prometheus_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = 100.0  # USER_HZ on Linux
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    at = datetime(2024, 12, 31, 12, 0, tzinfo=UTC).timestamp()  # 17:30 in Kolkata
    plans = [
        CalendarPlan(Calendar("year"), 0.0, 3600.0),
        CalendarPlan(Calendar("year", "Asia/Kolkata"), 19800.0, 300.0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        prom = start_prometheus({"global": {"scrape_interval": "15s"}}, Path(tmp))
        try:
            with PromClient(prom.url) as client:
                for plan in plans:
                    expr = period_to_date("vector(1)", plan)
                    cpu0, walls = prometheus_cpu(prom.pid), []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        result = client.query(expr, at)
                        walls.append(time.perf_counter() - t0)
                    assert len(result) == 1, result
                    inner = RESIDUES * round(LONGEST["year"] / plan.step)
                    print(
                        f"period=year step_s={plan.step:g} inner_steps={inner}"
                        f" median_s={statistics.median(walls):.3f} max_s={max(walls):.3f}"
                        f" prom_cpu_s={prometheus_cpu(prom.pid) - cpu0:.2f}"
                        f" value={float(result[0]['value'][1]):g}"
                    )
        finally:
            prom.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
