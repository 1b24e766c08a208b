"""What the fault proxy costs: direct vs through ``tokenslo proxy`` to the same upstream,
side by side in ONE run.

Starts the real lab IdP (``python -m tokenslo.lab.idp``) and the real proxy
(``python -m tokenslo proxy``) in front of it, one uvicorn worker each, loopback
only, no fault active. Then, for ``GET /jwks`` (``--endpoint token``: ``POST /token``,
client_credentials, ES256):

* latency: N sequential requests over one keep-alive connection per path,
  interleaved in blocks so drift hits both alike → p50/p99 and the added p50
  (target < 1 ms);
* throughput: C client threads with keep-alive connections for D seconds per
  path, direct then proxied → requests/s and their ratio (target >= 0.5).

Client, proxy and upstream share the machine's cores, so the figures are for
comparison within the run, not absolute capacity. Processes are stopped by PID
whatever happens.

    .venv/bin/python benchmarks/bench_proxy.py [--endpoint jwks|token] [--seconds 4]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

TARGET_ADDED_P50_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.5
BLOCK = 100
CLIENT_SECRET = secrets.token_urlsafe(32)
REQUESTS = {
    # path → (method, body, headers): /jwks is nearly free upstream (worst case for the ratio);
    # /token signs an ES256 JWT, closer to what a real IdP spends per request.
    "jwks": ("GET", None, {}),
    "token": (
        "POST",
        "grant_type=client_credentials",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic "
            + base64.b64encode(f"bench:{CLIENT_SECRET}".encode()).decode(),
        },
    ),
}
PATH = "/jwks"


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


def get(conn: http.client.HTTPConnection) -> None:
    method, body, headers = REQUESTS[PATH.strip("/")]
    conn.request(method, PATH, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{method} {PATH}: HTTP {response.status}")


def latencies(ports: dict[str, int], n: int, warmup: int) -> dict[str, list[float]]:
    conns = {k: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for k, p in ports.items()}
    samples: dict[str, list[float]] = {k: [] for k in ports}
    for conn in conns.values():
        for _ in range(warmup):
            get(conn)
    for _ in range(max(1, n // BLOCK)):
        for kind, conn in conns.items():
            for _ in range(BLOCK):
                start_ns = time.perf_counter_ns()
                get(conn)
                samples[kind].append((time.perf_counter_ns() - start_ns) / 1e6)
    for conn in conns.values():
        conn.close()
    return samples


def throughput(port: int, concurrency: int, seconds: float) -> float:
    """Requests/s from ``concurrency`` keep-alive clients for ``seconds`` (bounded)."""
    counts = [0] * concurrency
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            get(conn)
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    return sum(counts) / (time.monotonic() - began)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="latency samples per path")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="throughput client threads")
    parser.add_argument("--seconds", type=float, default=4.0, help="throughput phase per path")
    parser.add_argument("--endpoint", choices=sorted(REQUESTS), default="jwks")
    args = parser.parse_args()
    global PATH
    PATH = "/" + args.endpoint
    if not (0 < args.requests <= 100_000 and 0 < args.seconds <= 60 and 0 < args.concurrency <= 64):
        parser.error("keep --requests <= 100000, --seconds <= 60, --concurrency <= 64")
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        directory = Path(tmp)
        idp_port, proxy_port = free_port(), free_port()
        client = {
            "client_id": "bench",
            "secret_sha256": hashlib.sha256(CLIENT_SECRET.encode()).hexdigest(),
            "audiences": ["api://lab"],
        }
        (directory / "clients.yaml").write_text(yaml.safe_dump({"clients": [client]}))
        (directory / "idp.yaml").write_text(
            yaml.safe_dump(
                {
                    "host": "127.0.0.1",
                    "port": idp_port,
                    "clients_file": str(directory / "clients.yaml"),
                }
            )
        )
        env = {"TOKENSLO_ADMIN_SECRET": secrets.token_urlsafe(32)}
        idp_log, proxy_log = directory / "idp.log", directory / "proxy.log"
        idp = start(
            [sys.executable, "-m", "tokenslo.lab.idp", "--config", str(directory / "idp.yaml")],
            env,
            idp_log,
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
            samples = latencies(ports, args.requests, args.warmup)
            rates = {k: throughput(p, args.concurrency, args.seconds) for k, p in ports.items()}
        finally:
            for proc in (proxy, idp):
                if proc is not None:
                    stop(proc)
    return report(samples, rates, args)


def report(samples: dict[str, list[float]], rates: dict[str, float], args) -> int:
    print(
        f"fault proxy benchmark: {REQUESTS[PATH.strip('/')][0]} {PATH} on the lab IdP, "
        f"{len(samples['direct'])} sequential requests per path; "
        f"throughput {args.concurrency} clients x {args.seconds:g} s; "
        f"{os.cpu_count()} CPUs shared by client, proxy and upstream"
    )
    print(f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}")
    for kind in ("direct", "proxy"):
        values = samples[kind]
        print(f"{kind:<10}{pct(values, 50):>10.3f}{pct(values, 99):>10.3f}{rates[kind]:>10.0f}")
    added = pct(samples["proxy"], 50) - pct(samples["direct"], 50)
    ratio = rates["proxy"] / rates["direct"]
    latency_ok = added < TARGET_ADDED_P50_MS
    ratio_ok = ratio >= TARGET_THROUGHPUT_RATIO
    print(
        f"added p50: {added:.3f} ms (target < {TARGET_ADDED_P50_MS:g} ms: "
        f"{'met' if latency_ok else 'NOT met'})"
    )
    print(
        f"throughput ratio: {ratio:.2f} (target >= {TARGET_THROUGHPUT_RATIO:g}: "
        f"{'met' if ratio_ok else 'NOT met'})"
    )
    return 0 if latency_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
