"""Every PromQL query of every dashboard against a real lab with traffic.

A lab (IdP, gateway, Prometheus, Alertmanager) on free ports, plus a ``tokenslo
probe`` subprocess it scrapes, gets a short bounded burst of real traffic (issue,
refresh, call the gateway, introspect, revoke, fetch the JWKS, a write call with a
read-only token, a request for a scope the client lacks), one injected fault and one
key rotation. Then each panel target, annotation and query
variable, with Grafana's variables substituted, must run without error and return
at least one finite sample, for every SLO the ``slo`` variable offers and for the
``client`` variable at All and at one client app. Nothing is exempt: the fault, the
rotation, the denied write, the escalation attempt and the prober exist so the panels
about them have data.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from dash_fixtures import REPO, rendered, repo_slos

from support import free_ports_lab_config, lab_up_on_free_ports
from tokenslo.dashboards.queries import Query, queries, substitute, variable_queries
from tokenslo.lab.credentials import CLIENTS
from tokenslo.lab.orchestrator import lab_down
from tokenslo.lab.state import LabState
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import free_port, stop_pid

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

TRAFFIC_SECONDS = 150.0  # upper bound; the thread stops when the module is done
READY_TIMEOUT = 120.0  # recording rules run every 30 s; the prober needs a few runs
STEP = 2.0
CLIENT_CHOICES = (".*", "loadtest")  # the client variable at All, and at one client app


class Traffic:
    """A small, bounded stream of real token traffic in a background thread."""

    def __init__(self, lab: LabState):
        self.lab = lab
        self.creds = lab.credentials()
        self.stop = threading.Event()
        self.rounds = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + TRAFFIC_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline and self.rounds < 2000:
            # Injected faults may close connections; keep going.
            with contextlib.suppress(requests.RequestException):
                self.round()
            self.rounds += 1
            self.stop.wait(0.2)

    def _token(self, data: dict, client: str = "loadtest") -> dict:
        response = requests.post(
            self.lab.urls["idp"] + "/token",
            data=data,
            auth=(client, self.creds[client]),
            timeout=5,
        )
        return response.json() if response.status_code == 200 else {}

    def round(self) -> None:
        idp, gateway = self.lab.urls["idp"], self.lab.urls["gateway"]
        issued = self._token({"grant_type": "client_credentials"})
        access = issued.get("access_token")
        if not access:
            return
        requests.get(
            gateway + "/api/resource", headers={"Authorization": f"Bearer {access}"}, timeout=5
        )
        requests.get(
            gateway + "/api/resource", headers={"Authorization": "Bearer not.a.jwt"}, timeout=5
        )
        gw = ("gateway", self.creds["gateway"])
        requests.post(idp + "/introspect", data={"token": access}, auth=gw, timeout=5)
        requests.get(idp + "/jwks", timeout=5)
        if issued.get("refresh_token"):
            self._token({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
        if self.rounds % 5 == 0:
            # a read-only token on the write route (403), and a scope loadtest never had
            narrow = self._token({"grant_type": "client_credentials"}, "prober")
            if narrow.get("access_token"):
                headers = {"Authorization": f"Bearer {narrow['access_token']}"}
                requests.post(gateway + "/api/resource", headers=headers, timeout=5)
            self._token({"grant_type": "client_credentials", "scope": "api.admin"})
            requests.post(
                idp + "/revoke",
                data={"token": access},
                auth=("loadtest", self.creds["loadtest"]),
                timeout=5,
            )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabState, float]]:
    state_dir = tmp_path_factory.mktemp("dash-lab") / "state"
    config = free_ports_lab_config().with_ports(prober=free_port())
    prober = traffic = None
    log = (state_dir.parent / "prober.log").open("w")
    try:
        lab, config = lab_up_on_free_ports(config, state_dir)
        started = time.time()
        prober = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokenslo",
                "probe",
                "--target",
                str(lab.state_dir / "target.yaml"),
                "--listen",
                f"127.0.0.1:{config.ports.prober}",
                "--interval",
                "1",
                "--propagation-timeout",
                "5",
                "--max-runs",
                "150",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        traffic = Traffic(lab)
        traffic.thread.start()
        exercise_faults_and_keys(lab)
        wait_ready(lab)
        yield lab, started
    finally:
        if traffic is not None:
            traffic.stop.set()
            traffic.thread.join(timeout=10)
        if prober is not None:
            stop_pid(prober.pid)
        log.close()
        lab_down(state_dir)


def exercise_faults_and_keys(lab: LabState) -> None:
    """A fault with an expiry (some 503s on /token) and a published key rotation."""
    time.sleep(3)
    lab.admin("idp").add_fault("status", 15, "/token", status=503, probability=0.3)
    lab.admin("gateway").add_fault("delay", 15, "/api", delay_seconds=0.06, probability=0.5)
    lab.admin("idp").rotate_keys(publish=True)


def _count(lab: LabState, expr: str) -> float:
    response = requests.get(
        lab.urls["prometheus"] + "/api/v1/query", params={"query": expr}, timeout=5
    )
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def wait_ready(lab: LabState) -> None:
    """Until every SLO has a finite recorded ratio and the prober measured propagation."""
    slos = len(repo_slos())
    checks = {
        "recorded SLO ratios": "count(tokenslo:slo_error_ratio:5m >= 0)",
        "recorded budgets": "count(tokenslo:slo_error_budget_remaining:ratio >= -1e9)",
        "prober propagation": "sum(probe_revocation_propagation_duration_seconds_count)",
    }
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        values = {name: _count(lab, expr) for name, expr in checks.items()}
        if (
            values["recorded SLO ratios"] >= slos
            and values["recorded budgets"] >= slos
            and values["prober propagation"] >= 3
        ):
            time.sleep(5)  # a few more scrapes after the last series appeared
            return
        time.sleep(2)
    pytest.fail(f"lab never had data for every dashboard: {values}")


def finite_samples(client: PromClient, query: Query, expr: str, start: float) -> int:
    """How many finite samples Grafana would get: range queries over the lab's lifetime,
    tables (instant) at now."""
    now = time.time()
    if query.instant:
        series = client.query(expr, at=now)
        values = [s["value"][1] for s in series]
    else:
        series = client.query_range(expr, start, now, STEP)
        values = [v[1] for s in series for v in s["values"]]
    return sum(1 for v in values if math.isfinite(float(v)))


def test_every_dashboard_query_returns_data_from_the_lab(live):
    lab, started = live
    client = PromClient(lab.urls["prometheus"])
    slo_names = [s.name for s in repo_slos()]
    checked, empty = 0, []
    for name, doc in rendered().items():
        variables = variable_queries(doc)
        # The detail dashboard is checked for every SLO its variable offers.
        choices = [{"slo": n} for n in slo_names] if "slo" in variables else [{}]
        if "client" in variables:
            choices = [{"client": c} for c in CLIENT_CHOICES]
        seen = set()
        for values in choices:
            for query in queries(name, doc):
                expr = substitute(query.expr, values)
                if (query.where, query.ref, expr) in seen:
                    continue  # a query without the client variable is the same at each choice
                seen.add((query.where, query.ref, expr))
                checked += 1
                if finite_samples(client, query, expr, started) == 0:
                    empty.append(f"{name} / {query.where} / {query.ref}: {expr}")
    assert checked > 150
    # The check itself can fail: an absent metric and 0/0 give no finite sample.
    probe = Query("x", "x", "A", "")
    assert finite_samples(client, probe, "no_such_metric_total", started) == 0
    assert finite_samples(client, probe, "vector(0) / vector(0)", started) == 0
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_the_slo_variable_offers_every_slo(live):
    lab, _ = live
    doc = rendered()["slo-detail.json"]
    metric, label = variable_queries(doc)["slo"]
    response = requests.get(
        lab.urls["prometheus"] + f"/api/v1/label/{label}/values",
        params={"match[]": metric},
        timeout=5,
    )
    assert set(response.json()["data"]) == {s.name for s in repo_slos()}


@pytest.mark.parametrize("name", ["token-oncall.json", "token-debug.json"])
def test_the_client_variable_offers_every_registered_client_and_unknown(live, name):
    lab, _ = live
    metric, label = variable_queries(rendered()[name])["client"]
    response = requests.get(
        lab.urls["prometheus"] + f"/api/v1/label/{label}/values",
        params={"match[]": metric},
        timeout=5,
    )
    assert set(response.json()["data"]) == {c.client_id for c in CLIENTS} | {"unknown"}


def _peak(client: PromClient, expr: str, started: float) -> dict[str, float]:
    """The highest value of each series of a range query over the lab's lifetime."""
    series = client.query_range(expr, started, time.time(), STEP)
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items())): max(
            float(v[1]) for v in s["values"]
        )
        for s in series
    }


def test_per_client_and_security_panels_show_the_traffic(live):
    """The denied write, the escalation attempt and loadtest's own traffic appear under
    the right labels, and the client variable narrows to one client app."""
    lab, started = live
    client = PromClient(lab.urls["prometheus"])
    oncall = {p["title"]: p for p in rendered()["token-oncall.json"]["panels"]}
    debug = {p["title"]: p for p in rendered()["token-debug.json"]["panels"]}

    def peaks(panels: dict, title: str, **values: str) -> dict[str, float]:
        return _peak(client, substitute(panels[title]["targets"][0]["expr"], values), started)

    denies = peaks(oncall, "Authorization denies by reason")
    assert denies["reason=insufficient_scope"] > 0
    escalations = peaks(
        debug, "Privilege-escalation attempts by client app and kind", client="loadtest"
    )
    assert escalations["client_id=loadtest,kind=scope_not_registered"] > 0
    assert set(escalations) == {
        "client_id=loadtest,kind=" + k
        for k in ("scope_not_registered", "scope_widening_on_refresh")
    }
    validations = peaks(debug, "Validations by client app and result", client="prober")
    assert validations["client_id=prober,result=valid"] > 0
    assert all(key.startswith("client_id=prober,") for key in validations)
    errors = peaks(oncall, "Issuance errors by OAuth error")
    assert errors["error=invalid_scope"] > 0
    assert errors["error=temporarily_unavailable"] > 0  # the injected 503s


def test_fault_and_rotation_panels_show_what_happened(live):
    lab, started = live
    client = PromClient(lab.urls["prometheus"])
    debug = {p["title"]: p for p in rendered()["token-debug.json"]["panels"]}

    def peak(title: str) -> float:
        expr = substitute(debug[title]["targets"][0]["expr"], {"__range": "10m"})
        series = client.query_range(expr, started, time.time(), STEP)
        return max((float(v[1]) for s in series for v in s["values"]), default=0.0)

    assert peak("Active faults") >= 1  # both services had a fault active
    assert peak("Fault-engine changes") >= 1
    assert peak("Signing-key rotations in range") >= 1
