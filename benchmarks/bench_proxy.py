"""What the fault proxy costs: direct vs through ``tokenslo proxy`` to the same upstream,
side by side in ONE run, with the CPU each process spends per request.

Starts the real lab IdP (``python -m tokenslo.lab.idp``) and the real proxy
(``python -m tokenslo proxy``) in front of it, one uvicorn worker each, loopback
only, no fault active. For each endpoint (``GET /jwks``: nearly free upstream, the
worst case for the ratio; ``POST /token``: client_credentials, ES256 signing, what
an IdP really spends per request):

* latency: N sequential requests over one keep-alive connection per path,
  interleaved in blocks so drift hits both alike → p50/p99 and the added p50
  (target < 1 ms);
* throughput: C load-generator threads (``http.client``, keep-alive, one process)
  for D seconds per path, direct and proxied alternately, R rounds → median
  requests/s and ratio (target >= 0.5), and CPU ms per request of the load
  generator, the proxy and the upstream (from /proc, so the bottleneck is visible).

Client, proxy and upstream share the machine's cores, so the figures are for
comparison within the run, not absolute capacity; on a shared machine, compare
medians of several runs. Processes are stopped by PID whatever happens.

    .venv/bin/python benchmarks/bench_proxy.py [--endpoint jwks|token|both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

TARGET_ADDED_P50_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.5
BLOCK = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENT_SECRET = secrets.token_urlsafe(32)
REQUESTS = {
    # endpoint → (method, path, body, headers)
    "jwks": ("GET", "/jwks", None, {}),
    "token": (
        "POST",
        "/token",
        "grant_type=client_credentials",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic "
            + base64.b64encode(f"bench:{CLIENT_SECRET}".encode()).decode(),
        },
    ),
}


@dataclass
class Phase:
    """One throughput phase: requests/s and CPU ms per request of each process."""

    rate: float
    cpu_ms: dict[str, float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU of a process (all threads); ``None`` → this process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def call(conn: http.client.HTTPConnection, endpoint: str) -> None:
    method, path, body, headers = REQUESTS[endpoint]
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{method} {path}: HTTP {response.status}")


def latencies(ports: dict[str, int], endpoint: str, n: int, warmup: int) -> dict[str, list[float]]:
    conns = {k: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for k, p in ports.items()}
    samples: dict[str, list[float]] = {k: [] for k in ports}
    for conn in conns.values():
        for _ in range(warmup):
            call(conn, endpoint)
    for _ in range(max(1, n // BLOCK)):
        for kind, conn in conns.items():
            for _ in range(BLOCK):
                start_ns = time.perf_counter_ns()
                call(conn, endpoint)
                samples[kind].append((time.perf_counter_ns() - start_ns) / 1e6)
    for conn in conns.values():
        conn.close()
    return samples


def throughput(
    port: int, endpoint: str, concurrency: int, seconds: float, pids: dict[str, int]
) -> Phase:
    """Requests/s from ``concurrency`` keep-alive clients for ``seconds`` (bounded),
    with the CPU that the load generator and each process in ``pids`` spent per request."""
    counts = [0] * concurrency
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            call(conn, endpoint)
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    cpu_before = {"client": cpu_seconds(None)} | {k: cpu_seconds(p) for k, p in pids.items()}
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    elapsed = time.monotonic() - began
    cpu_after = {"client": cpu_seconds(None)} | {k: cpu_seconds(p) for k, p in pids.items()}
    total = max(1, sum(counts))
    cpu_ms = {k: (cpu_after[k] - cpu_before[k]) * 1000 / total for k in cpu_before}
    return Phase(rate=sum(counts) / elapsed, cpu_ms=cpu_ms)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def write_idp_config(directory: Path, port: int) -> Path:
    client = {
        "client_id": "bench",
        "secret_sha256": hashlib.sha256(CLIENT_SECRET.encode()).hexdigest(),
        "audiences": ["api://lab"],
    }
    (directory / "clients.yaml").write_text(yaml.safe_dump({"clients": [client]}))
    config = directory / "idp.yaml"
    config.write_text(
        yaml.safe_dump(
            {"host": "127.0.0.1", "port": port, "clients_file": str(directory / "clients.yaml")}
        )
    )
    return config


def bench_endpoint(endpoint: str, ports: dict[str, int], pids: dict[str, int], args) -> dict:
    """Latency, then ``rounds`` throughput phases per path in alternating order."""
    samples = latencies(ports, endpoint, args.requests, args.warmup)
    phases: dict[str, list[Phase]] = {k: [] for k in ports}
    for i in range(args.rounds):
        order = list(ports) if i % 2 == 0 else list(reversed(ports))
        for kind in order:
            phases[kind].append(
                throughput(ports[kind], endpoint, args.concurrency, args.seconds, pids)
            )
    return {"samples": samples, "phases": phases}


def report(endpoint: str, result: dict, args) -> bool:
    samples, phases = result["samples"], result["phases"]
    method, path = REQUESTS[endpoint][:2]
    print(f"\n{method} {path}")
    print(
        f"{'path':<8}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}"
        f"{'CPU ms/req: client':>20}{'proxy':>7}{'idp':>7}"
    )
    total_cpu: dict[str, float] = {}
    for kind in ("direct", "proxy"):
        med_rate = statistics.median(p.rate for p in phases[kind])
        cpu = {
            k: statistics.median(p.cpu_ms[k] for p in phases[kind])
            for k in ("client", "proxy", "idp")
        }
        total_cpu[kind] = sum(cpu.values())
        values = samples[kind]
        print(
            f"{kind:<8}{pct(values, 50):>8.3f}{pct(values, 99):>8.3f}{med_rate:>8.0f}"
            f"{cpu['client']:>20.3f}{cpu['proxy']:>7.3f}{cpu['idp']:>7.3f}"
        )
    # With every core busy, requests/s ~ cores / (CPU per request of all processes together).
    direct_cpu, proxied_cpu = total_cpu["direct"], total_cpu["proxy"]
    print(
        f"CPU ms per request, all processes: direct {direct_cpu:.3f}, proxied {proxied_cpu:.3f}"
        f" -> CPU-bound ratio ~{direct_cpu / proxied_cpu:.2f}"
    )
    ratios = [p.rate / d.rate for p, d in zip(phases["proxy"], phases["direct"], strict=True)]
    ratio = statistics.median(ratios)
    added = pct(samples["proxy"], 50) - pct(samples["direct"], 50)
    latency_ok = added < TARGET_ADDED_P50_MS
    ratio_ok = ratio >= TARGET_THROUGHPUT_RATIO
    print(
        f"added p50: {added:.3f} ms (target < {TARGET_ADDED_P50_MS:g} ms: "
        f"{'met' if latency_ok else 'NOT met'})"
    )
    print(
        f"throughput ratio: median {ratio:.2f} of {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(target >= {TARGET_THROUGHPUT_RATIO:g}: {'met' if ratio_ok else 'NOT met'})"
    )
    return latency_ok and ratio_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="latency samples per path")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="load-generator threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="one throughput phase")
    parser.add_argument("--rounds", type=int, default=3, help="throughput phases per path")
    parser.add_argument("--endpoint", choices=[*sorted(REQUESTS), "both"], default="both")
    args = parser.parse_args()
    if not (
        0 < args.requests <= 100_000
        and 0 < args.seconds <= 60
        and 0 < args.concurrency <= 64
        and 0 < args.rounds <= 20
    ):
        parser.error(
            "keep --requests <= 100000, --seconds <= 60, --concurrency <= 64, --rounds <= 20"
        )
    endpoints = sorted(REQUESTS) if args.endpoint == "both" else [args.endpoint]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        directory = Path(tmp)
        idp_port, proxy_port = free_port(), free_port()
        env = {"TOKENSLO_ADMIN_SECRET": secrets.token_urlsafe(32)}
        idp_log, proxy_log = directory / "idp.log", directory / "proxy.log"
        idp_config = write_idp_config(directory, idp_port)
        idp = start(
            [sys.executable, "-m", "tokenslo.lab.idp", "--config", str(idp_config)], env, idp_log
        )
        proxy = None
        try:
            wait_ready(f"http://127.0.0.1:{idp_port}/healthz", idp, idp_log)
            proxy = start(
                [
                    sys.executable,
                    "-m",
                    "tokenslo",
                    "proxy",
                    "--upstream",
                    f"http://127.0.0.1:{idp_port}",
                    "--listen",
                    f"127.0.0.1:{proxy_port}",
                    "--log-level",
                    "warning",
                ],  # fmt: skip
                env,
                proxy_log,
            )
            wait_ready(f"http://127.0.0.1:{proxy_port}/-/healthz", proxy, proxy_log)
            ports = {"direct": idp_port, "proxy": proxy_port}
            pids = {"idp": idp.pid, "proxy": proxy.pid}
            for endpoint in endpoints:
                results[endpoint] = bench_endpoint(endpoint, ports, pids, args)
        finally:
            for proc in (proxy, idp):
                if proc is not None:
                    stop(proc)
    print(
        f"fault proxy benchmark: lab IdP direct vs through `tokenslo proxy`, one uvicorn worker "
        f"each; load generator: {args.concurrency} http.client keep-alive threads in one Python "
        f"process; latency {args.requests} sequential requests per path; throughput "
        f"{args.rounds} x {args.seconds:g} s per path (medians); {os.cpu_count()} CPUs shared "
        f"by load generator, proxy and IdP"
    )
    ok = [report(endpoint, results[endpoint], args) for endpoint in endpoints]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
