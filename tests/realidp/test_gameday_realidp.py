"""A game day against an IdP nobody here wrote: npm oidc-provider behind ``tokenslo proxy``,
with a real Prometheus scraping the prober and the proxy, in compressed time.

Nothing of the lab runs: the target file names the provider, the proxy (where faults go),
Prometheus and the SLOs over the proxy's and the prober's metrics (slo/real-idp/,
slo/probe/). A token-endpoint outage and a JWKS outage are injected at the proxy, both
must be detected within theory (MET), and the report must be written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support import secret_file, write_target
from tokenslo.prometheus.process import free_port, stop_pid
from tokenslo.rules.generate import render_rules
from tokenslo.spec.loader import load_paths

pytestmark = [pytest.mark.realidp, pytest.mark.prometheus, pytest.mark.chaos, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SLO_PATHS = [str(REPO / "slo" / "real-idp"), str(REPO / "slo" / "probe")]
TIME_SCALE = 60
SECRET_ENV = "REALIDP_CLIENT_SECRET"


def _wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:g} s")


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


@pytest.fixture
def behind_proxy(realidp, tmp_path: Path, prometheus_factory) -> Iterator[dict]:
    """The proxy in front of oidc-provider, the prober behind the proxy, and Prometheus
    scraping both every second with the SLO rules at time scale 60."""
    env = {**os.environ, SECRET_ENV: realidp.credentials.client_secret}
    admin_secret = secret_file(tmp_path / "admin-secret", "proxy-admin-0123456789\n")
    proxy_port, prober_port = free_port(), free_port()
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    client = {"client_id": realidp.credentials.client_id, "secret": {"env": SECRET_ENV}}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(_spawn(
            [sys.executable, "-m", "tokenslo", "proxy", "--upstream", realidp.url,
             "--listen", f"127.0.0.1:{proxy_port}", "--admin-secret-file", str(admin_secret)],
            tmp_path / "proxy.log", env,
        ))  # fmt: skip
        _wait_http(proxy_url + "/-/healthz")
        rules = render_rules(load_paths(SLO_PATHS), fmt="prometheus", time_scale=TIME_SCALE)
        prometheus = prometheus_factory(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "proxy", "metrics_path": "/-/metrics",
                     "static_configs": [{"targets": [f"127.0.0.1:{proxy_port}"]}]},
                    {"job_name": "prober",
                     "static_configs": [{"targets": [f"127.0.0.1:{prober_port}"]}]},
                ],
            },  # fmt: skip
            rule_files={"slo-rules.yml": rules},
        )
        target = write_target(
            tmp_path / "target.yaml",
            {
                "name": "oidc-provider",
                "issuer": realidp.url,
                "discovery_url": proxy_url,
                # opaque tokens (no resource indicator): introspectable and revocable
                "clients": {"load": client, "prober": client, "introspection": client},
                "faults": {
                    "admin_secret_file": str(admin_secret),
                    "idp": {"kind": "proxy", "admin_url": proxy_url},
                },
                "prometheus": {"url": prometheus.url},
                "slo_paths": SLO_PATHS,
                "state_dir": str(tmp_path / "state"),
            },
        )
        processes.append(_spawn(
            [sys.executable, "-m", "tokenslo", "probe", "--target", str(target),
             "--listen", f"127.0.0.1:{prober_port}", "--interval", "1",
             "--propagation-timeout", "3", "--max-runs", "900"],
            tmp_path / "prober.log", env,
        ))  # fmt: skip
        _wait_http(f"http://127.0.0.1:{prober_port}/metrics")
        yield {"target": target, "env": env, "proxy": proxy_url, "prometheus": prometheus.url}
    finally:
        for proc in reversed(processes):
            stop_pid(proc.pid, child=proc)


GAMEDAY = """\
version: 1
title: oidc-provider behind tokenslo proxy
target: {{kind: external, file: {target}}}
time_scale: {scale}
slo_paths: [{slo_paths}]
experiments_dir: {experiments}
load: {{driver: locust, scenario: mixed, users: 4, rate: 16, warmup: 10s}}
recovery_timeout: 90s
experiments:
  - name: token-endpoint-outage
    expect: held
  - name: jwks-outage
    expect: held
"""


def test_gameday_against_oidc_provider_behind_the_proxy(behind_proxy, tmp_path: Path):
    plan = tmp_path / "gameday.yaml"
    plan.write_text(
        GAMEDAY.format(
            target=behind_proxy["target"],
            scale=TIME_SCALE,
            slo_paths=", ".join(SLO_PATHS),
            experiments=REPO / "experiments" / "real-idp",
        )
    )
    out = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "tokenslo", "gameday", str(plan), "--out", str(out),
         "--no-progress"],
        env=behind_proxy["env"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    print(done.stdout)  # the verdict table, for the log
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [report_dir] = [p for p in out.iterdir() if p.is_dir()]
    result = json.loads((report_dir / "result.json").read_text())
    assert result["exit_code"] == 0 and result["all_met"] and not result["interrupted"]
    by_name = {e["name"]: e for e in result["experiments"]}
    assert list(by_name) == ["token-endpoint-outage", "jwks-outage"]
    expected = {
        "token-endpoint-outage": "proxy-token-availability/page",
        "jwks-outage": "proxy-jwks-availability/page",
    }
    for name, experiment in by_name.items():
        assert experiment["outcome"] == "held" and experiment["met"], experiment
        (detection,) = experiment["detections"]
        assert detection["alert"] == expected[name]
        assert detection["fired"] and detection["within"], detection
        assert experiment["recovery_seconds"] is not None
    assert (report_dir / "gameday.html").is_file() and (report_dir / "gameday.md").is_file()
    # What the clients saw went through the proxy: its counters hold the load's token calls.
    query = 'sum(increase(tokenslo_proxy_requests_total{endpoint="token_endpoint"}[10m]))'
    body = requests.get(
        behind_proxy["prometheus"] + "/api/v1/query", params={"query": query}, timeout=5
    ).json()
    assert float(body["data"]["result"][0]["value"][1]) > 100
    # The secret never reached what the game day wrote.
    secret = behind_proxy["env"][SECRET_ENV]
    for path in report_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
