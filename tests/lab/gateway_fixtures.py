"""Helpers for the gateway tests: a real IdP + gateway on loopback, token forging, metrics.

Both services run under uvicorn (lifespan on, access log off) in daemon threads
of the test process, or as ``python -m`` subprocesses for the log-scan test.
Forged tokens are built byte by byte here so the tests control every header,
segment and signature the gateway sees.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from joserfc import jwk
from joserfc.jws import JWSRegistry
from prometheus_client.parser import text_string_to_metric_families

from support import ServedApp
from tokenslo.jws import to_low_s
from tokenslo.lab.gateway.app import create_app as create_gateway
from tokenslo.lab.gateway.config import ClientCredentials, GatewayConfig
from tokenslo.lab.idp.app import create_app as create_idp
from tokenslo.lab.idp.config import load_idp_config
from tokenslo.prometheus.process import free_port, stop_pid

AUDIENCE = "api://lab"
ADMIN_HEADER = "X-Tokenslo-Admin-Secret"
CLIENT_IDS = ("loadtest", "gateway", "opaque-client", "other-aud")


@dataclass
class Lab:
    """A real IdP and a gateway trusting it, plus everything a test needs to talk to them."""

    dir: Path
    idp_url: str
    gateway_url: str
    admin_secret: str
    client_secrets: dict[str, str]
    keys_file: Path
    idp_app: Any = None
    gateway_app: Any = None
    servers: list[ServedApp] = field(default_factory=list)

    def token(self, client_id: str = "loadtest", **form: str) -> dict[str, Any]:
        response = requests.post(
            f"{self.idp_url}/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client_id, self.client_secrets[client_id]),
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    def revoke(self, token: str, client_id: str = "loadtest") -> None:
        response = requests.post(
            f"{self.idp_url}/revoke",
            data={"token": token},
            auth=(client_id, self.client_secrets[client_id]),
            timeout=5,
        )
        response.raise_for_status()

    def admin(self, method: str, url: str, body: dict | None = None) -> requests.Response:
        return requests.request(
            method, url, json=body, headers={ADMIN_HEADER: self.admin_secret}, timeout=5
        )

    def signing_key(self) -> tuple[jwk.Key, str]:
        """The IdP's current private signing key (read from its 0600 keys file) and alg."""
        data = json.loads(self.keys_file.read_text())
        current = data["keys"][-1]
        return jwk.import_key(current["jwk"]), current["alg"]

    def call(self, token: str | None, scheme: str = "Bearer") -> requests.Response:
        headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
        return requests.get(f"{self.gateway_url}/api/resource", headers=headers, timeout=10)


def write_idp_files(directory: Path, issuer_port: int, alg: str = "ES256") -> dict[str, str]:
    """Client registry (hashed secrets), credentials for the gateway, IdP config."""
    client_secrets = {cid: secrets.token_urlsafe(32) for cid in CLIENT_IDS}

    def entry(cid: str, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(client_secrets[cid].encode()).hexdigest()
        return {"client_id": cid, "secret_sha256": digest, **extra}

    clients = [
        entry(
            "loadtest",
            scopes=["api.read", "api.write"],
            audiences=[AUDIENCE],
            token_ttl=300,
            grant_types=["client_credentials", "refresh_token"],
        ),
        entry("gateway", audiences=[AUDIENCE], introspect=True),
        entry("opaque-client", audiences=[AUDIENCE], token_format="opaque", scopes=["api.read"]),
        entry("other-aud", audiences=["api://other"]),
    ]
    (directory / "clients.yaml").write_text(yaml.safe_dump({"clients": clients}))
    creds = directory / "credentials.yaml"
    creds.write_text(
        yaml.safe_dump(
            {"clients": {cid: {"client_secret": s} for cid, s in client_secrets.items()}}
        )
    )
    os.chmod(creds, 0o600)
    (directory / "idp.yaml").write_text(
        yaml.safe_dump(
            {
                "host": "127.0.0.1",
                "port": issuer_port,
                "signing_alg": alg,
                "keys_file": str(directory / "idp-keys.json"),
                "revocations_file": str(directory / "idp-revocations.json"),
                "clients_file": str(directory / "clients.yaml"),
            }
        )
    )
    return client_secrets


def gateway_settings(idp_url: str, directory: Path, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "issuer": idp_url,
        "audience": AUDIENCE,
        "jwks_ttl": 300,
        "jwks_refresh_cooldown": 10,
        "leeway": 60,
        "max_token_bytes": 8192,
        "allowed_algs": ["ES256", "RS256", "EdDSA"],
        "revocation_poll_interval": 0.5,
        "introspection_cache_ttl": 1,
        "credentials_file": str(directory / "credentials.yaml"),
        "clients": list(CLIENT_IDS),
    }
    settings.update(overrides)
    return settings


@contextlib.contextmanager
def threaded_lab(directory: Path, alg: str = "ES256", **gateway_overrides: Any) -> Iterator[Lab]:
    """IdP + gateway in threads of this process; both stopped on exit."""
    idp_port = free_port()
    client_secrets = write_idp_files(directory, idp_port, alg)
    admin_secret = secrets.token_urlsafe(24)
    idp_app = create_idp(load_idp_config(directory / "idp.yaml"), admin_secret=admin_secret)
    servers: list[ServedApp] = []
    try:
        idp = ServedApp(idp_app, idp_port).start()
        servers.append(idp)
        settings = gateway_settings(idp.url, directory, **gateway_overrides)
        config = GatewayConfig(**{k: _tuple(v) for k, v in settings.items()})
        creds = ClientCredentials("gateway", client_secrets["gateway"])
        gw_app = create_gateway(config, admin_secret=admin_secret, credentials=creds)
        gateway = ServedApp(gw_app, config.port).start()
        servers.append(gateway)
        lab = Lab(
            directory,
            idp.url,
            gateway.url,
            admin_secret,
            client_secrets,
            directory / "idp-keys.json",
            idp_app,
            gw_app,
            servers,
        )
        wait_for(lambda: gw_app.state.gateway.jwks.kids, 10, "gateway never loaded the JWKS")
        yield lab
    finally:
        for server in reversed(servers):
            server.stop()


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@contextlib.contextmanager
def subprocess_lab(directory: Path, **gateway_overrides: Any) -> Iterator[Lab]:
    """IdP + gateway as ``python -m`` processes with stderr captured; stopped by PID."""
    idp_port = free_port()
    client_secrets = write_idp_files(directory, idp_port)
    admin_secret = secrets.token_urlsafe(24)
    idp_url = f"http://127.0.0.1:{idp_port}"
    settings = gateway_settings(idp_url, directory, **gateway_overrides)
    (directory / "gateway.yaml").write_text(yaml.safe_dump(settings))
    env = {**os.environ, "TOKENSLO_ADMIN_SECRET": admin_secret}
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for name, config in (("idp", "idp.yaml"), ("gateway", "gateway.yaml")):
            log = open(directory / f"{name}.log", "wb")  # noqa: SIM115 - closed in finally
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        f"tokenslo.lab.{name}",
                        "--config",
                        str(directory / config),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=directory,
                )
            )
            url = idp_url if name == "idp" else f"http://127.0.0.1:{settings['port']}"
            wait_for(lambda u=url: _healthy(u), 20, f"{name} did not become healthy")
        lab = Lab(
            directory,
            idp_url,
            f"http://127.0.0.1:{settings['port']}",
            admin_secret,
            client_secrets,
            directory / "idp-keys.json",
        )
        wait_for(
            lambda: "jwks refreshed" in (directory / "gateway.log").read_text(),
            10,
            "gateway never loaded the JWKS",
        )
        yield lab
    finally:
        for proc in reversed(procs):
            stop_pid(proc.pid, child=proc)
        for log in logs:
            log.close()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check, timeout: float, message: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


# ---------------------------------------------------------------- metrics


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """All samples of ``url``/metrics keyed by (name, sorted labels)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def validations(url: str) -> dict[str, float]:
    """Verdicts by result, summed over the client_id series."""
    totals: dict[str, float] = {}
    for (name, labels), value in scrape(url).items():
        if name == "gateway_token_validations_total":
            result = dict(labels)["result"]
            totals[result] = totals.get(result, 0.0) + value
    return totals


def resource_call(lab: Lab, method: str, token: str) -> requests.Response:
    """``method`` on the gateway's protected resource with ``token`` as the bearer."""
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, f"{lab.gateway_url}/api/resource", headers=headers, timeout=10)


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, read without checking its signature (a test's own token)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def metric(url: str, name: str, **labels: str) -> float:
    return scrape(url).get((name, tuple(sorted(labels.items()))), 0.0)


# ---------------------------------------------------------------- forging


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict | bytes | str) -> str:
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        value = value.encode()
    return b64(value)


def forge(
    header: dict | bytes | str,
    claims: dict | bytes | str,
    key: jwk.Key | None = None,
    alg: str | None = None,
    signature: bytes | None = None,
) -> str:
    """A JWS compact token with exactly these header/payload bytes, signed as asked.

    ECDSA signatures come out in canonical low-S form, as the lab IdP signs them
    (the gateway accepts the high-S twin too, as the same token: ``tokenslo.jws``).
    """
    signing_input = f"{segment(header)}.{segment(claims)}"
    if signature is None:
        signature = b""
        if key is not None:
            signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
            signature = to_low_s(alg or "", signature)
    return f"{signing_input}.{b64(signature)}"


def claims_for(lab: Lab, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """RFC 9068 claims that the gateway would accept, with overrides (None deletes)."""
    now = time.time() if now is None else now
    claims = {
        "iss": lab.idp_url,
        "sub": "loadtest",
        "client_id": "loadtest",
        "aud": AUDIENCE,
        "iat": int(now),
        "exp": int(now) + 300,
        "jti": secrets.token_hex(8),
        "scope": "api.read",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def result_of(lab: Lab, token: str, scheme: str = "Bearer") -> str:
    """The one ``result`` label a call with ``token`` added to the gateway's counter."""
    before = validations(lab.gateway_url)
    lab.call(token, scheme)
    after = validations(lab.gateway_url)
    moved = [k for k in after if after[k] != before.get(k, 0.0)]
    assert len(moved) == 1, moved
    return moved[0]
