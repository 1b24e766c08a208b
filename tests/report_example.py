"""A real lab run to report on: used by ``scripts/example-report`` and the Chromium test.

A development tool, not part of the shipped package: it lives with the tests that share
it (importable as ``report_example`` because ``tests/`` is on ``sys.path``, as for
``support``), and the script puts ``tests/`` on ``sys.path`` itself.

Brings a lab up on free ports with compressed time (so burn-rate alerts fire
within a minute), drives a bounded burst of real OAuth traffic through it (token,
refresh, introspection, revocation, JWKS, protected API calls), injects one
expiring fault, and renders the report. Every loop is bounded by a deadline and
an iteration cap; the lab is always brought down by its recorded PIDs.
Traffic is deliberately tiny: it is test data, not a load test (``tokenslo loadtest``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests
from requests import Response

from tokenslo.lab.config import LabConfig, load_lab_config
from tokenslo.lab.orchestrator import lab_down, lab_up
from tokenslo.lab.state import LabState
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import free_port
from tokenslo.reports.data import collect
from tokenslo.reports.model import FaultInterval, ReportModel
from tokenslo.reports.render import write_report

log = logging.getLogger("tokenslo.lab.example")

TIME_SCALE = 60.0  # 1h → 1m: the fastest page alert can fire within seconds
REQUEST_TIMEOUT = 5.0
MAX_ITERATIONS_PER_SECOND = 20


def example_lab_config(slo_paths: Sequence[str], time_scale: float = TIME_SCALE) -> LabConfig:
    """The default lab on free ports, rules compressed by ``time_scale``."""
    config = replace(load_lab_config(), slo_paths=tuple(slo_paths), rules_time_scale=time_scale)
    ports = {k: free_port() for k in ("idp", "gateway", "webhook", "prometheus", "alertmanager")}
    return config.with_ports(**ports)


@dataclass
class TrafficStats:
    iterations: int = 0
    requests: int = 0
    failures: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    # ``Response``, not ``requests.Response``: in this class ``requests`` is the counter field.
    def count(self, response: Response | None) -> Response | None:
        self.requests += 1
        code = "error" if response is None else str(response.status_code)
        self.codes[code] = self.codes.get(code, 0) + 1
        if response is None or response.status_code >= 500:
            self.failures += 1
        return response


def drive_traffic(
    state: LabState, seconds: float, rate: float = 4.0, client_id: str = "loadtest"
) -> TrafficStats:
    """Issue, refresh, introspect, revoke, fetch JWKS and call the API for ``seconds``.

    At most ``rate`` iterations per second (each ~7 requests) and never more than
    ``seconds × rate`` iterations. Tokens stay in memory only.
    """
    rate = min(rate, MAX_ITERATIONS_PER_SECOND)
    secret = state.credentials()[client_id]
    idp, gateway = state.urls["idp"], state.urls["gateway"]
    stats = TrafficStats()
    last_access: str | None = None
    deadline = time.monotonic() + seconds
    limit = max(1, int(seconds * rate))
    with requests.Session() as http:
        http.auth = (client_id, secret)
        while stats.iterations < limit and time.monotonic() < deadline:
            began = time.monotonic()
            stats.iterations += 1
            issued = _json(
                stats.count(_post(http, idp + "/token", grant_type="client_credentials"))
            )
            if issued.get("access_token"):
                last_access = issued["access_token"]
            if last_access:
                stats.count(_get(http, gateway + "/api/resource", last_access))
                stats.count(_post(http, idp + "/introspect", token=last_access))
            if issued.get("refresh_token"):
                refreshed = _json(
                    stats.count(
                        _post(
                            http,
                            idp + "/token",
                            grant_type="refresh_token",
                            refresh_token=issued["refresh_token"],
                        )
                    )
                )
                if refreshed.get("access_token"):
                    stats.count(_post(http, idp + "/revoke", token=refreshed["access_token"]))
            stats.count(_get(http, idp + "/jwks"))
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - began)))
    return stats


def _post(http: requests.Session, url: str, **form: str) -> requests.Response | None:
    try:
        return http.post(url, data=form, timeout=REQUEST_TIMEOUT)
    except requests.RequestException:
        return None


def _get(http: requests.Session, url: str, bearer: str | None = None) -> requests.Response | None:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    try:
        # The API must not see the IdP client's basic auth, only the bearer token.
        return requests.get(url, headers=headers, timeout=REQUEST_TIMEOUT)
    except requests.RequestException:
        return None


def _json(response: requests.Response | None) -> dict:
    if response is None or response.status_code != 200:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def run_scenario(
    state: LabState,
    baseline: float = 20.0,
    fault_seconds: float = 20.0,
    recovery: float = 15.0,
    rate: float = 4.0,
) -> tuple[float, list[FaultInterval]]:
    """Healthy traffic, then 503s on half the token requests, then healthy again.

    Returns the scenario's start time and the fault as the report shades it.
    """
    start = time.time()
    drive_traffic(state, baseline, rate)
    admin = state.admin("idp")
    fault = admin.add_fault(
        "status", expires_in=fault_seconds, path_prefix="/token", status=503, probability=0.5
    )
    fault_start = time.time()
    try:
        drive_traffic(state, fault_seconds, rate)
    finally:
        admin.clear_faults()
    fault_end = min(time.time(), float(fault.get("expires_at", time.time())))
    drive_traffic(state, recovery, rate)
    label = "IdP /token: HTTP 503 on 50% of requests"
    return start, [FaultInterval(fault_start, fault_end, label)]


def report_from_state(
    state: LabState,
    slo_paths: Sequence[str],
    start: float,
    faults: Sequence[FaultInterval],
    *,
    title: str = "Example SLO report (lab run)",
    step: float = 1.0,
    time_scale: float = TIME_SCALE,
) -> ReportModel:
    """The report of the lab run since ``start``, through the normal data path."""
    from tokenslo.spec.loader import load_paths

    # A scrape and a rule evaluation after the last request, so the end has data.
    time.sleep(2.0)
    with PromClient(state.urls["prometheus"]) as client:
        return collect(
            load_paths(list(slo_paths)),
            client,
            start,
            time.time(),
            step,
            title=title,
            faults=faults,
            time_scale=time_scale,
        )


def generate_example(out_dir: Path, slo_paths: Sequence[str], state_dir: Path) -> list[Path]:
    """Run a lab, the scenario, and write ``slo-report.html`` and ``slo-report.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        state = lab_up(example_lab_config(slo_paths), state_dir)
        start, faults = run_scenario(state)
        model = report_from_state(state, slo_paths, start, faults)
    finally:
        lab_down(state_dir)
    return [write_report(model, out_dir / name) for name in ("slo-report.html", "slo-report.md")]
