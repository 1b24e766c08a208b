"""``tokenslo target check``: is this target usable, and what does its provider refuse?

Each check is a :class:`Finding` (ok, warn, fail or unreachable) with a hint saying what
to change. The probes at the edge (HTTP, Prometheus) feed small pure judges, so the
hints are unit-testable from recorded responses. Never prints a token or a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from tokenslo.errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, TokensloError
from tokenslo.target import discovery
from tokenslo.target.credentials import Credentials, credentials
from tokenslo.target.model import Client, Target

OK, WARN, FAIL, UNREACHABLE = "ok", "warn", "fail", "unreachable"
COMPARED = ("issuer", *discovery.ENDPOINT_FIELDS)
TIMEOUT = 5.0
SKEW_WARN = 5.0  # seconds of Date-header skew worth a warning (validators allow ~60 s)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    hint: str = ""


# -- pure judges ------------------------------------------------------------------------------


def token_kind(token: str) -> str:
    """``jwt`` when the token is a JWS compact serialization with a JSON header, else opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return "opaque"
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error):
        return "opaque"
    return "jwt" if isinstance(header, dict) and "alg" in header else "opaque"


def oauth_error(response: requests.Response) -> str:
    """``HTTP 400 unsupported_token_type`` from an RFC 6749 §5.2 error body, if any."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}" + (f" {error}" if isinstance(error, str) else "")


def compare_documents(documents: dict[str, dict[str, Any]]) -> list[str]:
    """Fields that differ between the metadata documents found (RFC 8414 vs OpenID)."""
    if len(documents) < 2:
        return []
    differences = []
    for key in COMPARED:
        values = {url: doc.get(key) for url, doc in documents.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            shown = "; ".join(f"{url.split('/.well-known/')[1]}: {v}" for url, v in values.items())
            differences.append(f"{key} differs ({shown})")
    return differences


def introspection_hint(kind: str, refused: str, role: str) -> str:
    if kind == "jwt" and "unsupported_token_type" in refused:
        return (
            "this provider does not introspect JWT access tokens: add an opaque client for the "
            f"introspection role (and set provider.introspects_jwt: false); role {role}"
        )
    if "invalid_client" in refused or "unauthorized_client" in refused:
        return f"the {role} client may not introspect: give it that permission at the provider"
    return ""


def revocation_hint(kind: str, refused: str) -> str:
    if kind == "jwt" and "unsupported_token_type" in refused:
        return (
            "this provider does not revoke JWT access tokens: revocation scenarios and probes "
            "need an opaque client (set provider.revokes_jwt: false)"
        )
    return ""


def skew_seconds(date_header: str | None, sent: float, received: float) -> float | None:
    """The server clock minus ours, from an HTTP ``Date`` (whole seconds: ±1 s)."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    return server - (sent + received) / 2


def exit_code(findings: list[Finding]) -> int:
    statuses = {f.status for f in findings}
    if UNREACHABLE in statuses:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED if FAIL in statuses else EXIT_OK


# -- the checks (I/O) ---------------------------------------------------------------------------


def run_checks(target: Target) -> list[Finding]:
    findings: list[Finding] = []
    try:
        endpoints = discovery.discover(target, timeout=TIMEOUT)
    except TokensloError as exc:
        status = UNREACHABLE if exc.exit_code == EXIT_UNAVAILABLE else FAIL
        return [Finding("discovery", status, str(exc), "check issuer / discovery_url")]
    findings += _discovery_findings(target, endpoints)
    findings.append(_jwks(endpoints))
    tokens: dict[str, tuple[str, Credentials]] = {}
    for role, client in target.clients.items():
        finding, issued = _issue(target, endpoints, client)
        findings.append(finding)
        if issued is not None:
            tokens[role] = issued
    for role, (token, creds) in tokens.items():
        if endpoints.introspection_endpoint:
            findings.append(_introspect(endpoints, role, token, creds))
        if endpoints.revocation_endpoint and role != "load":
            findings.append(_revoke(endpoints, role, token, creds))
    if target.api_url and "load" in tokens:
        findings.append(_api(target.api_url, tokens["load"][0]))
    findings += _faults(target)
    findings += _prometheus(target)
    return findings


def _discovery_findings(target: Target, endpoints: discovery.Endpoints) -> list[Finding]:
    found = ", ".join(u.split("/.well-known/")[1] for u in endpoints.documents)
    out = [Finding("discovery", OK, f"{found} via {target.discovery_url}; issuer {target.issuer}")]
    for difference in compare_documents(endpoints.documents):
        out.append(Finding("discovery", WARN, difference, "clients use the RFC 8414 document"))
    behind = target.discovery_url != target.issuer
    origin = _origin(target.discovery_url)
    for name in discovery.ENDPOINT_FIELDS:
        url = getattr(endpoints, name)
        if url is None:
            out.append(Finding(name, WARN, "not advertised", f"set endpoints.{name} if it exists"))
        elif behind and _origin(url) != origin:
            hint = "the proxy must rewrite discovery documents (tokenslo proxy does)"
            out.append(Finding(name, FAIL, f"{url} bypasses {origin}", hint))
    return out


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _jwks(endpoints: discovery.Endpoints) -> Finding:
    if not endpoints.jwks_uri:
        return Finding("jwks", WARN, "no jwks_uri: JWTs cannot be validated locally")
    try:
        response = requests.get(endpoints.jwks_uri, timeout=TIMEOUT)
        keys = response.json().get("keys") if response.status_code == 200 else None
    except requests.RequestException as exc:
        return Finding("jwks", UNREACHABLE, f"{endpoints.jwks_uri}: {type(exc).__name__}")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list):
        return Finding("jwks", FAIL, f"{endpoints.jwks_uri}: HTTP {response.status_code}, no keys")
    return Finding("jwks", OK, f"{len(keys)} key(s)")


def _issue(
    target: Target, endpoints: discovery.Endpoints, client: Client
) -> tuple[Finding, tuple[str, Credentials] | None]:
    name = f"client {client.role}"
    try:
        creds = credentials(client)
    except TokensloError as exc:
        return Finding(name, FAIL, str(exc), "see docs/target.md, clients"), None
    form = {"grant_type": "client_credentials", **client.token_params}
    try:
        sent = time.time()
        response = requests.post(
            endpoints.token_endpoint, data=form, auth=creds.auth, timeout=TIMEOUT
        )
        received = time.time()
    except requests.RequestException as exc:
        return Finding(name, UNREACHABLE, f"token endpoint: {type(exc).__name__}"), None
    if response.status_code != 200:
        hint = "check client_id and the secret" if "invalid_client" in oauth_error(response) else ""
        return Finding(name, FAIL, f"{client.client_id}: {oauth_error(response)}", hint), None
    token = (response.json() or {}).get("access_token", "")
    kind = token_kind(token)
    detail = f"{client.client_id}: token issued ({kind})"
    skew = skew_seconds(response.headers.get("Date"), sent, received)
    if skew is not None:
        detail += f", clock skew {skew:+.1f} s (Date: ±1 s)"
    status, hint = OK, ""
    if client.token_kind and client.token_kind != kind:
        status, hint = WARN, f"declared token_kind {client.token_kind}, the provider issued {kind}"
    elif skew is not None and abs(skew) > SKEW_WARN:
        status, hint = WARN, "the IdP's clock differs from ours: expect iat/nbf rejections"
    return Finding(name, status, detail, hint), (token, creds)


def _token_call(url: str, token: str, creds: Credentials) -> requests.Response | str:
    """POST ``token`` to an RFC 7662/7009 endpoint as the client; the error name on failure."""
    try:
        return requests.post(url, data={"token": token}, auth=creds.auth, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return f"{url}: {type(exc).__name__}"


def _introspect(
    endpoints: discovery.Endpoints, role: str, token: str, creds: Credentials
) -> Finding:
    name = f"introspection ({role})"
    response = _token_call(endpoints.require("introspection_endpoint"), token, creds)
    if isinstance(response, str):
        return Finding(name, UNREACHABLE, response)
    kind = token_kind(token)
    active = response.status_code == 200 and (response.json() or {}).get("active") is True
    if active:
        return Finding(name, OK, f"active token ({kind})")
    refused = oauth_error(response) if response.status_code != 200 else "active: false"
    status = FAIL if role == "introspection" else WARN
    hint = introspection_hint(kind, refused, role)
    return Finding(name, status, f"{kind} token: {refused}", hint)


def _revoke(endpoints: discovery.Endpoints, role: str, token: str, creds: Credentials) -> Finding:
    name = f"revocation ({role})"
    response = _token_call(endpoints.require("revocation_endpoint"), token, creds)
    if isinstance(response, str):
        return Finding(name, UNREACHABLE, response)
    kind = token_kind(token)
    if response.status_code == 200:
        return Finding(name, OK, f"{kind} token revoked")
    refused = oauth_error(response)
    return Finding(name, WARN, f"{kind} token: {refused}", revocation_hint(kind, refused))


def _api(url: str, token: str) -> Finding:
    try:
        anonymous = requests.get(url, timeout=TIMEOUT)
        bearer = {"Authorization": f"Bearer {token}"}
        authorized = requests.get(url, headers=bearer, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return Finding("api", UNREACHABLE, f"{url}: {type(exc).__name__}")
    detail = f"without a token HTTP {anonymous.status_code}, with one HTTP {authorized.status_code}"
    if authorized.status_code >= 300:
        return Finding("api", FAIL, detail, "the API refuses the load client's token")
    if anonymous.status_code < 300:
        return Finding("api", WARN, detail, "the API answers without a token")
    return Finding("api", OK, detail)


def _faults(target: Target) -> list[Finding]:
    out = []
    for component, injector in target.faults.items():
        name = f"faults ({component}, {injector.kind})"
        assert target.admin_secret_file is not None  # the loader requires it with faults
        try:
            secret = target.admin_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            out.append(Finding(name, FAIL, f"admin secret file: {exc.strerror}"))
            continue
        try:
            response = requests.get(
                injector.admin_url + "/admin/faults",
                headers={"X-Tokenslo-Admin-Secret": secret},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            out.append(Finding(name, UNREACHABLE, f"{injector.admin_url}: {type(exc).__name__}"))
            continue
        if response.status_code == 200:
            out.append(Finding(name, OK, f"{injector.admin_url} accepts the admin secret"))
        else:
            out.append(Finding(name, FAIL, f"{injector.admin_url}: HTTP {response.status_code}"))
    return out


def _prometheus(target: Target) -> list[Finding]:
    if not target.prometheus_url:
        return [Finding("prometheus", WARN, "not declared: status, gates and game days need it")]
    from tokenslo.engine.evaluator import evaluate
    from tokenslo.prometheus.client import PromClient
    from tokenslo.spec.loader import load_paths

    slos = load_paths(list(target.slo_paths))
    try:
        with PromClient(target.prometheus_url, timeout=TIMEOUT) as client:
            statuses = evaluate(slos, client)
    except TokensloError as exc:
        return [Finding("prometheus", UNREACHABLE, str(exc))]
    out = [Finding("prometheus", OK, f"{target.prometheus_url}: {len(slos)} SLO(s) evaluated")]
    for status in statuses:
        out.append(_slo_finding(status.name, status.state))
    return out


def _slo_finding(name: str, state: str) -> Finding:
    """Series present (even with no traffic yet) is usable; no series at all is not."""
    if state == "no_data":
        hint = "no series for its queries: is the exporter scraped? do the metric names match?"
        return Finding(f"slo {name}", WARN, "no data", hint)
    detail = "scraped, no traffic yet" if state == "no_traffic" else f"has data ({state})"
    return Finding(f"slo {name}", OK, detail)


def to_json(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]
