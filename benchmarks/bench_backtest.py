"""Benchmark: backtest 50 SLOs over 30 days at a 1 m step against a real Prometheus.

History for 50 services (good and bad request counters, one sample a minute, a
steady error ratio plus one 40-minute incident each) is written as OpenMetrics and
turned into TSDB blocks by the real ``promtool tsdb create-blocks-from openmetrics``;
a real Prometheus then serves it and ``backtest`` replays 30 days at a 1 m step (the
history reaches 3 days + the longest ``for`` further back, as the 3d windows need).
The SLOs use the default policy (two pages, two tickets; 1d and 3d windows derived
from 5m counts). Target: under 60 s.

Run: .venv/bin/python benchmarks/bench_backtest.py [--slos 50] [--days 30] [--profile]
[--data DIR] [--json FILE] (DIR keeps the backfilled history; a later run with fewer
SLOs or days reuses it; FILE receives the result, to compare two versions' answers)
Prints ``slos=50 days=30 step_s=60 steps=... queries=... points=... intervals=...
wall_s=... cpu_s=... prom_cpu_s=... request_s=...``: ``cpu_s`` is this process's CPU
time (all threads), ``prom_cpu_s`` Prometheus's over the backtest, ``request_s`` the
time spent in range queries summed over the parallel requests (so it can exceed
``wall_s``), ``points`` the samples they returned. CPU seconds vary less than wall time
on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tokenslo.core.model import SLO, EventsSLI
from tokenslo.engine import backtest as bt
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import run_promtool, start_prometheus

DAY = 86400.0
MIN = 60.0
HISTORY_EXTRA_DAYS = 4  # 3d window + `for` + lead before the replayed range
PER_MINUTE = 600.0
TARGET_S = 60.0


def slos(count: int) -> list[SLO]:
    return [
        SLO(
            name=f"svc{i:03d}",
            service="bench",
            objective=99.9,
            window=30 * DAY,
            sli=EventsSLI(
                total=f'increase(bench_requests_total{{svc="svc{i:03d}"}}[{{{{window}}}}])',
                bad=f'increase(bench_requests_total{{svc="svc{i:03d}",code="500"}}[{{{{window}}}}])',
            ),
        )
        for i in range(count)
    ]


def error_ratio(service: int, minute: int, days: int) -> float:
    """A steady ratio below budget, and one 40-minute 5 % incident per service."""
    incident = int((HISTORY_EXTRA_DAYS + (service * 7) % days) * 1440 + service * 13)
    if incident <= minute < incident + 40:
        return 0.05
    return (service % 5) / 10_000


def write_history(work: Path, services: int, days: int, t0: float) -> list[Path]:
    """OpenMetrics files of every counter sample, one per day: promtool re-reads its
    whole input for every 2h block it writes, so one month-long file takes ages."""
    minutes = int((days + HISTORY_EXTRA_DAYS) * 1440)
    counters = []
    for i in range(services):
        bad = [0.0]
        for m in range(minutes):
            bad.append(bad[-1] + error_ratio(i, m, days) * PER_MINUTE)
        good = [m * PER_MINUTE - b for m, b in enumerate(bad)]
        counters += [(f'svc="svc{i:03d}",code="500"', bad), (f'svc="svc{i:03d}",code="200"', good)]
    files = []
    for day in range(days + HISTORY_EXTRA_DAYS):
        path = work / f"history-{day:03d}.om"
        last = minutes + 1 if day == days + HISTORY_EXTRA_DAYS - 1 else (day + 1) * 1440
        with path.open("w") as out:
            out.write("# HELP bench_requests requests\n# TYPE bench_requests counter\n")
            for labels, values in counters:
                out.writelines(
                    f"bench_requests_total{{{labels}}} {values[m]:.17g} {t0 + m * MIN:.3f}\n"
                    for m in range(day * 1440, last)
                )
            out.write("# EOF\n")
        files.append(path)
    return files


def backfill(files: list[Path], data_dir: Path) -> None:
    for path in files:
        done = run_promtool(
            "tsdb",
            "create-blocks-from",
            "--quiet",
            "openmetrics",
            str(path),
            str(data_dir),
            timeout=3600,
        )
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        path.unlink()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Spent:
    """Wall time, this process's CPU time and a server's CPU time over a ``with`` block."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.wall = self.cpu = self.server_cpu = 0.0

    def __enter__(self) -> Spent:
        self.server_cpu = -cpu_seconds(self.server_pid)
        self.cpu, self.wall = -time.process_time(), -time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter()
        self.cpu += time.process_time()
        self.server_cpu += cpu_seconds(self.server_pid)


class RangeQueryMeter:
    """Counts the points and seconds of every range query (any client, any thread)
    by wrapping ``PromClient.query_range`` while the benchmark runs."""

    def __init__(self) -> None:
        self.points = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._original = PromClient.query_range

    def __enter__(self) -> RangeQueryMeter:
        original, meter = self._original, self

        def timed(client: PromClient, *args: Any, **kwargs: Any) -> list[dict]:
            began = time.perf_counter()
            result = original(client, *args, **kwargs)
            with meter._lock:
                meter.seconds += time.perf_counter() - began
                meter.points += sum(len(series.get("values", [])) for series in result)
            return result

        PromClient.query_range = timed
        return self

    def __exit__(self, *exc: object) -> None:
        PromClient.query_range = self._original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step", type=float, default=60.0)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    parser.add_argument("--data", type=Path, help="keep the backfilled history here (reused)")
    parser.add_argument("--json", type=Path, help="write the backtest result here (to compare)")
    args = parser.parse_args()
    t0 = (time.time() // DAY - args.days - HISTORY_EXTRA_DAYS - 1) * DAY
    end = t0 + (args.days + HISTORY_EXTRA_DAYS) * DAY
    start = end - args.days * DAY
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        work = args.data or Path(tmp)
        stamp = work / "t0"
        if stamp.exists():
            t0 = float(stamp.read_text())
            end = t0 + (args.days + HISTORY_EXTRA_DAYS) * DAY
            start = end - args.days * DAY
        else:
            work.mkdir(parents=True, exist_ok=True)
            began = time.perf_counter()
            files = write_history(work, args.slos, args.days, t0)
            backfill(files, work / "prom" / "data")
            stamp.write_text(repr(t0))
            samples = args.slos * 2 * ((args.days + HISTORY_EXTRA_DAYS) * 1440 + 1)
            print(f"backfill samples={samples} wall_s={time.perf_counter() - began:.1f}")
        prom = start_prometheus(
            {"global": {"scrape_interval": "1m"}},
            work / "prom",
            extra_args=[
                "--storage.tsdb.retention.time=10y",
                # no compaction racing the timed queries
                "--storage.tsdb.min-block-duration=2h",
                "--storage.tsdb.max-block-duration=2h",
            ],
        )
        try:
            with PromClient(prom.url, timeout=600) as client, RangeQueryMeter() as meter:
                profile = cProfile.Profile() if args.profile else None
                with Spent(prom.pid) as spent:
                    if profile:
                        profile.enable()
                    result = bt.backtest(slos(args.slos), client, start, end, args.step)
                    if profile:
                        profile.disable()
                queries = client.queries
        finally:
            prom.stop()
    steps = len(bt.step_grid(start, end, args.step, limit=None))
    intervals = sum(len(v) for v in result.intervals.values())
    print(
        f"slos={args.slos} days={args.days} step_s={args.step:g} steps={steps} "
        f"queries={queries} points={meter.points} intervals={intervals} "
        f"no_data={len(result.no_data)} wall_s={spent.wall:.1f} cpu_s={spent.cpu:.1f} "
        f"prom_cpu_s={spent.server_cpu:.1f} request_s={meter.seconds:.1f} "
        f"target_s={TARGET_S:g} {'ok' if spent.wall < TARGET_S else 'SLOW'}"
    )
    if args.json:
        args.json.write_text(json.dumps(bt.to_json(result), indent=1, sort_keys=True))
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
