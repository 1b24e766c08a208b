"""Soak the lab: a steady, paced mix of token issuance and validated API calls.

    .venv/bin/python benchmarks/soak_lab.py --duration 600 [--rate 50] [--state-dir DIR]

Without ``--state-dir`` a private lab is started on free ports and stopped at the
end; with it, the lab recorded there is used (and left running). Every 5th
request issues a token (client_credentials), the others call the gateway's
protected API with the latest token. Expected: zero errors, and resident memory
(RSS) of the IdP and gateway growing less than 10 % between the end of the
warm-up and the end of the run. Exit 0 when both hold, 1 otherwise, 3 when the
lab cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests

from tokenslo.errors import InputError, TokensloError, UnavailableError
from tokenslo.lab.config import load_lab_config
from tokenslo.lab.orchestrator import lab_down, lab_up
from tokenslo.lab.state import LabState, load_state
from tokenslo.prometheus.process import free_port

GROWTH_LIMIT_PERCENT = 10.0
ISSUE_EVERY = 5
DEFAULT_CLIENT = "loadtest"


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise UnavailableError(f"no VmRSS for pid {pid}")


def growth_percent(start: int, end: int) -> float:
    return (end - start) * 100.0 / start if start else 0.0


@dataclass
class Tally:
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def record(self, kind: str, outcome: str | None, seconds: float) -> None:
        if outcome is None:
            self.ok += 1
            self.latencies.append(seconds)
        else:
            self.errors[f"{kind}: {outcome}"] += 1

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Driver:
    """One keep-alive session per service; a token is refreshed every ISSUE_EVERY requests."""

    def __init__(self, lab: LabState, client: str):
        self.lab = lab
        self.client = client
        creds = lab.credentials()
        if client not in creds:
            raise InputError(f"unknown lab client {client!r} (have: {', '.join(sorted(creds))})")
        self.secret = creds[client]
        self.idp = requests.Session()
        self.gateway = requests.Session()
        self.token: str | None = None

    def step(self, n: int) -> tuple[str, str | None]:
        if self.token is None or n % ISSUE_EVERY == 0:
            return "issue", self._issue()
        return "api", self._call()

    def _issue(self) -> str | None:
        try:
            response = self.idp.post(
                self.lab.urls["idp"] + "/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client, self.secret),
                timeout=5,
            )
        except requests.RequestException as exc:
            return type(exc).__name__
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        self.token = response.json()["access_token"]
        return None

    def _call(self) -> str | None:
        try:
            response = self.gateway.get(
                self.lab.urls["gateway"] + "/api/resource",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=5,
            )
        except requests.RequestException as exc:
            return type(exc).__name__
        return None if response.status_code == 200 else f"HTTP {response.status_code}"


def run(lab: LabState, duration: float, rate: float, warmup: float, client: str) -> int:
    driver = Driver(lab, client)
    pids = {name: lab.components[name].pid for name in ("idp", "gateway")}
    rss_before = {name: rss_kib(pid) for name, pid in pids.items()}
    tally = Tally()
    interval = 1.0 / rate
    started = time.monotonic()
    rss_start: dict[str, int] | None = None
    max_requests = int(duration * rate) + 1  # bounded in count as well as time
    next_at = started
    last_report = started
    for n in range(max_requests):
        now = time.monotonic()
        if now - started >= duration:
            break
        if rss_start is None and now - started >= warmup:
            rss_start = {name: rss_kib(pid) for name, pid in pids.items()}
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        t0 = time.perf_counter()
        kind, outcome = driver.step(n)
        tally.record(kind, outcome, time.perf_counter() - t0)
        if time.monotonic() - last_report >= 60:
            last_report = time.monotonic()
            errors = sum(tally.errors.values())
            print(
                f"  t={last_report - started:5.0f}s requests={tally.ok + errors} errors={errors}",
                flush=True,
            )
    elapsed = time.monotonic() - started
    rss_start = rss_start or rss_before
    rss_end = {name: rss_kib(pid) for name, pid in pids.items()}
    return report(tally, elapsed, rate, warmup, rss_before, rss_start, rss_end)


def report(
    tally: Tally,
    elapsed: float,
    rate: float,
    warmup: float,
    rss_before: dict[str, int],
    rss_start: dict[str, int],
    rss_end: dict[str, int],
) -> int:
    total = tally.ok + sum(tally.errors.values())
    print(f"duration {elapsed:.0f}s, target {rate:g} req/s, achieved {total / elapsed:.1f} req/s")
    print(f"requests {total}, ok {tally.ok}, errors {sum(tally.errors.values())}")
    for what, count in tally.errors.most_common():
        print(f"  error {what}: {count}")
    print(
        f"latency p50 {tally.percentile(0.5) * 1000:.1f} ms, "
        f"p99 {tally.percentile(0.99) * 1000:.1f} ms (client side, both request kinds)"
    )
    print(f"RSS (KiB)   before  after-warmup({warmup:.0f}s)  end   growth")
    failed = bool(tally.errors)
    for name in rss_start:
        growth = growth_percent(rss_start[name], rss_end[name])
        flag = "" if growth < GROWTH_LIMIT_PERCENT else f"  >= {GROWTH_LIMIT_PERCENT:g}%!"
        failed |= growth >= GROWTH_LIMIT_PERCENT
        print(
            f"  {name:<8} {rss_before[name]:>7} {rss_start[name]:>12} {rss_end[name]:>13}"
            f"  {growth:+.1f}%{flag}"
        )
    print("verdict:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s (default 50)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before the start RSS (default 5%%)"
    )
    parser.add_argument("--state-dir", type=Path, help="use the lab recorded here")
    parser.add_argument(
        "--client",
        default=DEFAULT_CLIENT,
        help="lab client that issues the tokens (default loadtest, which also gets refresh "
        "tokens: the IdP keeps their state for refresh_ttl, 1 h, so its RSS grows until then)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 500 or args.duration <= 0:
        parser.error("--rate must be in (0, 500] and --duration > 0")
    warmup = args.warmup if args.warmup is not None else min(30.0, args.duration * 0.05)
    try:
        if args.state_dir:
            lab = load_state(args.state_dir)
            if lab is None:
                raise UnavailableError(f"no lab recorded in {args.state_dir}; run tokenslo lab up")
            return run(lab, args.duration, args.rate, warmup, args.client)
        with tempfile.TemporaryDirectory(prefix="tokenslo-soak-") as tmp:
            state_dir = Path(tmp) / "state"
            ports = {
                k: free_port() for k in ("idp", "gateway", "webhook", "prometheus", "alertmanager")
            }
            config = replace(load_lab_config().with_ports(**ports), slo_paths=())
            try:
                lab = lab_up(config, state_dir)
                print(f"lab up in {state_dir}", flush=True)
                return run(lab, args.duration, args.rate, warmup, args.client)
            finally:
                lab_down(state_dir)
    except TokensloError as exc:
        print(f"soak_lab: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
