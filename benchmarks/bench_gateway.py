"""Latency the gateway's token validation adds: ``GET /api/resource`` (valid Bearer
token) vs ``GET /public/resource`` (same work, no auth), in ONE run.

Starts the real IdP and gateway (``python -m``, one uvicorn worker each, loopback,
temporary state dir), takes one access token, then sends N sequential requests
of each kind, interleaved, over one keep-alive connection per kind, and prints
p50/p99 of both and the added p50/p99 (target: added p99 < 2 ms). Both
processes are stopped by PID whatever happens.

    .venv/bin/python benchmarks/bench_gateway.py [--requests 3000] [--alg ES256]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from tokenslo.prometheus.process import free_port, stop_pid

TARGET_ADDED_P99_MS = 2.0


def write_configs(directory: Path, alg: str) -> tuple[Path, Path, str, str]:
    idp_port, gw_port = free_port(), free_port()
    secret = {cid: secrets.token_urlsafe(32) for cid in ("bench", "gateway")}
    clients = [
        {
            "client_id": cid,
            "secret_sha256": hashlib.sha256(s.encode()).hexdigest(),
            "audiences": ["api://lab"],
            "token_ttl": 3600,
        }
        for cid, s in secret.items()
    ]
    (directory / "clients.yaml").write_text(yaml.safe_dump({"clients": clients}))
    creds = directory / "credentials.yaml"
    creds.write_text(yaml.safe_dump({"clients": {"gateway": {"client_secret": secret["gateway"]}}}))
    os.chmod(creds, 0o600)
    idp_url = f"http://127.0.0.1:{idp_port}"
    idp_cfg = directory / "idp.yaml"
    idp_cfg.write_text(
        yaml.safe_dump(
            {
                "host": "127.0.0.1",
                "port": idp_port,
                "signing_alg": alg,
                "clients_file": str(directory / "clients.yaml"),
            }
        )
    )
    gw_cfg = directory / "gateway.yaml"
    gw_cfg.write_text(
        yaml.safe_dump(
            {
                "host": "127.0.0.1",
                "port": gw_port,
                "issuer": idp_url,
                "audience": "api://lab",
                "credentials_file": str(creds),
            }
        )
    )
    return idp_cfg, gw_cfg, secret["bench"], idp_url


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy within {timeout:.0f}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def timed_get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"GET {path} returned {response.status}")
    return elapsed


def measure(gw_url: str, token: str, count: int, warmup: int) -> dict[str, list[float]]:
    host, port = gw_url.removeprefix("http://").split(":")
    api = http.client.HTTPConnection(host, int(port), timeout=10)
    public = http.client.HTTPConnection(host, int(port), timeout=10)
    auth = {"Authorization": f"Bearer {token}"}
    samples: dict[str, list[float]] = {"api": [], "public": []}
    try:
        for i in range(warmup + count):
            a = timed_get(api, "/api/resource", auth)
            p = timed_get(public, "/public/resource", {})
            if i >= warmup:
                samples["api"].append(a)
                samples["public"].append(p)
    finally:
        api.close()
        public.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per kind (default 3000)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"])
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        directory = Path(tmp)
        idp_cfg, gw_cfg, bench_secret, idp_url = write_configs(directory, args.alg)
        gw_url = f"http://127.0.0.1:{yaml.safe_load(gw_cfg.read_text())['port']}"
        env = {**os.environ, "TOKENSLO_ADMIN_SECRET": secrets.token_urlsafe(24)}
        try:
            for module, cfg, url in (("idp", idp_cfg, idp_url), ("gateway", gw_cfg, gw_url)):
                log = open(directory / f"{module}.log", "wb")  # noqa: SIM115 - child owns it
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            f"tokenslo.lab.{module}",
                            "--config",
                            str(cfg),
                            "--log-level",
                            "warning",
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
                log.close()
                wait_healthy(url, procs[-1])
            token = requests.post(
                f"{idp_url}/token",
                data={"grant_type": "client_credentials"},
                auth=("bench", bench_secret),
                timeout=5,
            ).json()["access_token"]
            samples = measure(gw_url, token, args.requests, args.warmup)
        finally:
            for proc in reversed(procs):
                stop_pid(proc.pid, child=proc)
    return report(samples, args)


def report(samples: dict[str, list[float]], args: argparse.Namespace) -> int:
    ms = {k: [x * 1000 for x in v] for k, v in samples.items()}
    stats = {k: (percentile(v, 50), percentile(v, 99), statistics.fmean(v)) for k, v in ms.items()}
    print(
        f"gateway latency, {args.requests} sequential keep-alive requests each, "
        f"interleaved, alg {args.alg}"
    )
    print(f"{'endpoint':<20}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, path in (("public", "/public/resource"), ("api", "/api/resource")):
        p50, p99, mean = stats[name]
        print(f"{path:<20}{p50:>10.3f}{p99:>10.3f}{mean:>10.3f}")
    added_p50 = stats["api"][0] - stats["public"][0]
    added_p99 = stats["api"][1] - stats["public"][1]
    print(f"{'added by validation':<20}{added_p50:>10.3f}{added_p99:>10.3f}")
    ok = added_p99 < TARGET_ADDED_P99_MS
    print(f"target added p99 < {TARGET_ADDED_P99_MS} ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
