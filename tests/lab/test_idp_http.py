"""The lab IdP over real HTTP: uvicorn on 127.0.0.1 (``serve_app``), requests as client."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pytest
import requests
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from prometheus_client.parser import text_string_to_metric_families

from tokenslo.jws import token_fingerprint
from tokenslo.lab.faults import ADMIN_HEADER
from tokenslo.lab.idp import clients as clients_module
from tokenslo.lab.idp.app import create_app
from tokenslo.lab.idp.clients import Client, ClientRegistry, hash_secret
from tokenslo.lab.idp.config import IdPConfig
from tokenslo.lab.logsafe import clean

pytestmark = pytest.mark.lab

ADMIN = "admin-secret-for-tests-0123456789"
SECRETS = {
    "svc": "svc-secret-7f3a9c1e5b2d4f6a8c0e",
    "gateway": "gw-secret-1b2c3d4e5f6a7b8c9d0e",
    "opaque": "op-secret-9e8d7c6b5a4f3e2d1c0b",
    "plain": "plain-secret-0a1b2c3d4e5f6a7b8c9d",
}


def _registry() -> ClientRegistry:
    return ClientRegistry(
        [
            Client(
                "svc",
                hash_secret(SECRETS["svc"]),
                scopes=("read", "write"),
                audiences=("api://lab",),
                token_ttl=300,
                grant_types=("client_credentials", "refresh_token"),
                refresh_ttl=3600,
                introspect=False,
            ),
            Client("gateway", hash_secret(SECRETS["gateway"]), audiences=("api://lab",)),
            Client(
                "opaque",
                hash_secret(SECRETS["opaque"]),
                scopes=("read",),
                audiences=("api://lab",),
                token_format="opaque",
                token_ttl=120,
            ),
            Client(
                "plain",
                hash_secret(SECRETS["plain"]),
                scopes=("read",),
                audiences=("api://lab", "api://other"),
                token_ttl=60,
            ),
        ]
    )


@dataclass
class LabIdP:
    url: str
    app: object

    @property
    def idp(self):
        return self.app.state.idp

    def token(self, client: str = "svc", auth: str = "basic", **form) -> requests.Response:
        data = dict(form)
        data.setdefault("grant_type", "client_credentials")
        if auth == "basic":
            return requests.post(
                self.url + "/token", data=data, auth=(client, SECRETS[client]), timeout=5
            )
        data.update(client_id=client, client_secret=SECRETS[client])
        return requests.post(self.url + "/token", data=data, timeout=5)

    def introspect(self, token: str, client: str = "gateway") -> requests.Response:
        return requests.post(
            self.url + "/introspect",
            data={"token": token},
            auth=(client, SECRETS[client]),
            timeout=5,
        )

    def revoke(self, token: str, client: str = "svc") -> requests.Response:
        return requests.post(
            self.url + "/revoke", data={"token": token}, auth=(client, SECRETS[client]), timeout=5
        )

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, self.url + path, headers={ADMIN_HEADER: ADMIN}, timeout=5, **kwargs
        )

    def jwks(self) -> dict:
        response = requests.get(self.url + "/jwks", timeout=5)
        assert response.status_code == 200
        return response.json()

    def metric(self, name: str, **labels: str) -> float | None:
        """The sum of the ``name`` series carrying ``labels`` (over any other label, such
        as client_id); None when there is none."""
        text = requests.get(self.url + "/metrics", timeout=5).text
        values = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        return sum(values) if values else None


@pytest.fixture
def start_idp(serve_app, tmp_path):
    """``start_idp(alg=...)`` → a running ``LabIdP``; its fault sweeper is stopped after."""
    apps = []

    def start(alg: str = "ES256") -> LabIdP:
        from tokenslo.prometheus.process import free_port

        port = free_port()
        config = IdPConfig(port=port, signing_alg=alg, keys_file=tmp_path / f"keys-{port}.json")
        app = create_app(config, admin_secret=ADMIN, clients=_registry())
        apps.append(app)
        served = serve_app(app, port=port)
        return LabIdP(served.url, app)

    yield start
    for app in apps:
        app.state.idp.engine.stop_sweeper()


@pytest.fixture
def lab_idp(start_idp) -> LabIdP:
    return start_idp()


def _verify(lab: LabIdP, token: str, alg: str = "ES256") -> jwt.Token:
    keyset = KeySet.import_key_set(lab.jwks())
    return jwt.decode(token, keyset, algorithms=[alg])


# -- issuance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_client_credentials_issues_rfc9068_jwt_verifiable_with_jwks(lab_idp, auth):
    before = int(time.time())
    response = lab_idp.token(auth=auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "read write"
    assert body["refresh_token"]  # svc may use refresh_token
    decoded = _verify(lab_idp, body["access_token"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"] == lab_idp.jwks()["keys"][0]["kid"]
    claims = decoded.claims
    assert claims["iss"] == lab_idp.idp.issuer
    assert claims["sub"] == claims["client_id"] == "svc"
    assert claims["aud"] == "api://lab"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 300
    assert claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 16


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_signing_alg_is_selectable(start_idp, alg):
    lab = start_idp(alg)
    token = lab.token().json()["access_token"]
    decoded = _verify(lab, token, alg)
    assert decoded.header["alg"] == alg
    (key,) = lab.jwks()["keys"]
    assert key["alg"] == alg and key["use"] == "sig"
    assert key["kty"] == {"RS256": "RSA", "EdDSA": "OKP"}[alg]
    assert "d" not in key  # never the private part


def test_wrong_secret_is_invalid_client_with_constant_time_compare(lab_idp, monkeypatch):
    calls = []
    real = clients_module.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(clients_module.hmac, "compare_digest", spy)
    response = requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials"},
        auth=("svc", "not-the-secret"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert calls == [(hash_secret("not-the-secret"), hash_secret(SECRETS["svc"]))]
    # an unknown client id goes through the same comparison (no timing oracle)
    calls.clear()
    unknown = requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
        timeout=5,
    )
    assert unknown.status_code == 401 and len(calls) == 1


def test_missing_and_doubled_client_auth(lab_idp):
    none = requests.post(
        lab_idp.url + "/token", data={"grant_type": "client_credentials"}, timeout=5
    )
    assert none.status_code == 401 and none.json()["error"] == "invalid_client"
    both = requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials", "client_id": "svc", "client_secret": "x"},
        auth=("svc", SECRETS["svc"]),
        timeout=5,
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_unknown_grant_type_is_unsupported(lab_idp):
    response = lab_idp.token(grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    denied = lab_idp.token(client="plain", grant_type="refresh_token", refresh_token="x")
    assert denied.status_code == 400 and denied.json()["error"] == "unauthorized_client"


def test_scope_narrowing_and_invalid_scope(lab_idp):
    narrowed = lab_idp.token(scope="read")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "read"
    assert _verify(lab_idp, narrowed.json()["access_token"]).claims["scope"] == "read"
    invalid = lab_idp.token(scope="read admin")
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid_scope"
    assert "admin" in invalid.json()["error_description"]


def test_audience_selection(lab_idp):
    both = lab_idp.token(client="plain").json()["access_token"]
    assert _verify(lab_idp, both).claims["aud"] == ["api://lab", "api://other"]
    one = lab_idp.token(client="plain", audience="api://other").json()["access_token"]
    assert _verify(lab_idp, one).claims["aud"] == "api://other"
    bad = lab_idp.token(client="plain", audience="api://nope")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_target"


# -- refresh rotation and reuse detection --------------------------------------------------------


def test_refresh_rotation_and_reuse_revokes_family(lab_idp):
    first = lab_idp.token().json()
    second = lab_idp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert lab_idp.introspect(second["access_token"]).json()["active"] is True
    narrowed = lab_idp.token(
        grant_type="refresh_token", refresh_token=second["refresh_token"], scope="read"
    ).json()
    assert narrowed["scope"] == "read"
    widened = lab_idp.token(
        grant_type="refresh_token", refresh_token=narrowed["refresh_token"], scope="read write"
    )
    assert widened.json()["error"] == "invalid_scope"  # cannot widen past the grant

    # an unrelated family stays untouched
    other = lab_idp.token().json()

    reuse = lab_idp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"

    family_access = [first["access_token"], second["access_token"], narrowed["access_token"]]
    for token in family_access:
        assert lab_idp.introspect(token).json() == {"active": False}
    latest = lab_idp.token(grant_type="refresh_token", refresh_token=narrowed["refresh_token"])
    assert latest.json()["error"] == "invalid_grant"  # the newest refresh token died too
    assert lab_idp.introspect(other["access_token"]).json()["active"] is True

    listed = requests.get(
        lab_idp.url + "/revocations", auth=("gateway", SECRETS["gateway"]), timeout=5
    ).json()
    jtis = {entry["jti"] for entry in listed["revoked"]}
    expected = {_verify(lab_idp, t).claims["jti"] for t in family_access}
    assert jtis == expected
    assert all(entry["exp"] > time.time() for entry in listed["revoked"])
    assert abs(listed["generated_at"] - time.time()) < 5


def test_revocations_requires_introspection_rights(lab_idp):
    assert requests.get(lab_idp.url + "/revocations", timeout=5).status_code == 401
    svc = requests.get(lab_idp.url + "/revocations", auth=("svc", SECRETS["svc"]), timeout=5)
    assert svc.status_code == 403


# -- introspection and revocation ---------------------------------------------------------------


def test_introspection_active_inactive_and_client_auth(lab_idp):
    token = lab_idp.token(client="plain").json()["access_token"]
    active = lab_idp.introspect(token)
    assert active.status_code == 200
    body = active.json()
    assert body["active"] is True
    assert body["client_id"] == "plain" and body["scope"] == "read"
    assert body["exp"] - body["iat"] == 60
    assert lab_idp.introspect("not-a-token").json() == {"active": False}
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert lab_idp.introspect(tampered).json() == {"active": False}
    unauthenticated = requests.post(lab_idp.url + "/introspect", data={"token": token}, timeout=5)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "invalid_client"


def test_revocation_rfc7009(lab_idp):
    token = lab_idp.token(client="plain").json()["access_token"]
    assert lab_idp.revoke("never-issued", client="plain").status_code == 200
    assert lab_idp.introspect(token).json()["active"] is True
    other_client = lab_idp.revoke(token, client="svc")
    assert other_client.status_code == 400  # §2.1: not issued to the requesting client
    assert lab_idp.introspect(token).json()["active"] is True
    assert lab_idp.revoke(token, client="plain").status_code == 200
    assert lab_idp.introspect(token).json() == {"active": False}
    jti = _verify(lab_idp, token).claims["jti"]
    listed = requests.get(
        lab_idp.url + "/revocations", auth=("gateway", SECRETS["gateway"]), timeout=5
    ).json()
    assert [e["jti"] for e in listed["revoked"]] == [jti]
    unauthenticated = requests.post(lab_idp.url + "/revoke", data={"token": token}, timeout=5)
    assert unauthenticated.status_code == 401


def test_revoking_refresh_token_revokes_its_family(lab_idp):
    issued = lab_idp.token().json()
    assert lab_idp.introspect(issued["refresh_token"]).json()["active"] is True
    assert lab_idp.revoke(issued["refresh_token"]).status_code == 200
    assert lab_idp.introspect(issued["access_token"]).json() == {"active": False}
    again = lab_idp.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert again.json()["error"] == "invalid_grant"


def test_opaque_tokens_are_validated_only_by_introspection(lab_idp):
    body = lab_idp.token(client="opaque").json()
    token = body["access_token"]
    assert token.count(".") == 0 and len(token) >= 32
    assert "refresh_token" not in body
    result = lab_idp.introspect(token).json()
    assert result["active"] is True and result["client_id"] == "opaque"
    assert result["exp"] - result["iat"] == 120
    assert lab_idp.revoke(token, client="opaque").status_code == 200
    assert lab_idp.introspect(token).json() == {"active": False}


# -- keys and discovery -----------------------------------------------------------------------


def test_rotation_publishes_current_and_previous(lab_idp):
    old_token = lab_idp.token().json()["access_token"]
    old_kid = lab_idp.jwks()["keys"][0]["kid"]
    assert lab_idp.admin("POST", "/admin/keys/rotate", json={"publish": True}).status_code == 200
    new_token = lab_idp.token().json()["access_token"]
    kids = [k["kid"] for k in lab_idp.jwks()["keys"]]
    new_kid = _verify(lab_idp, new_token).header["kid"]
    assert kids == [new_kid, old_kid]
    assert _verify(lab_idp, old_token).claims["sub"] == "svc"  # still verifiable
    lab_idp.admin("POST", "/admin/keys/rotate", json={"publish": True})
    assert old_kid not in [k["kid"] for k in lab_idp.jwks()["keys"]]  # only current + previous
    assert lab_idp.metric("idp_signing_key_rotations_total") == 2.0


def test_rotation_without_publish_signs_with_a_kid_absent_from_jwks(lab_idp):
    before = [k["kid"] for k in lab_idp.jwks()["keys"]]
    unauthorized = requests.post(lab_idp.url + "/admin/keys/rotate", json={}, timeout=5)
    assert unauthorized.status_code == 401
    response = lab_idp.admin(
        "POST", "/admin/keys/rotate", json={"publish": False, "expires_in": 600}
    )
    assert response.status_code == 200 and response.json()["published"] is False
    token = lab_idp.token().json()["access_token"]
    kid = jwt.decode(token, lab_idp.idp.keys.current.key).header["kid"]
    assert kid == response.json()["kid"]
    assert [k["kid"] for k in lab_idp.jwks()["keys"]] == before
    with pytest.raises(InvalidKeyIdError):
        _verify(lab_idp, token)
    assert lab_idp.introspect(token).json()["active"] is True  # the IdP knows its own key
    # publishing the current key is the repair
    assert lab_idp.admin("POST", "/admin/keys/publish").status_code == 200
    assert _verify(lab_idp, token).header["kid"] == kid
    bad = lab_idp.admin("POST", "/admin/keys/rotate", json={"publish": "yes"})
    assert bad.status_code == 400
    assert lab_idp.metric("tokenslo_fault_changes_total", service="idp", action="remove") == 1.0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"publish": False}, "expires_in: required with publish false"),
        ({"publish": False, "expires_in": 0}, "must be > 0 and <= 3600"),
        ({"publish": False, "expires_in": 3601}, "must be > 0 and <= 3600"),
        ({"publish": False, "expires_in": True}, "expires_in: must be a number"),
        ({"publish": False, "expires_in": "60"}, "expires_in: must be a number"),
        # a 400-digit integer was an OverflowError (500) before: a bounded 400 now
        ({"publish": False, "expires_in": 10**400}, "expires_in: out of range (an integer of 401"),
        ({"publish": True, "expires_in": 60}, "only with publish false"),
        ({"publish": False, "expires_in": 60, "kid": "x"}, "kid: unknown field"),
    ],
)
def test_unpublished_rotation_needs_a_bounded_expiry(lab_idp, body, fragment):
    before = lab_idp.idp.keys.current.kid
    response = lab_idp.admin("POST", "/admin/keys/rotate", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert fragment in response.json()["error_description"]
    assert lab_idp.idp.keys.current.kid == before  # nothing rotated


def test_unpublished_key_publishes_itself_at_expiry_without_traffic(lab_idp, wait_until):
    before = [k["kid"] for k in lab_idp.jwks()["keys"]]
    response = lab_idp.admin(
        "POST", "/admin/keys/rotate", json={"publish": False, "expires_in": 1.5}
    )
    state = response.json()
    kid = state["kid"]
    assert response.status_code == 200 and state["publish_at"] > time.time()
    listed = lab_idp.admin("GET", "/admin/keys").json()
    assert listed["current_kid"] == kid
    pending = [k for k in listed["keys"] if not k["published"]]
    assert [(k["kid"], k["publish_at"]) for k in pending] == [(kid, state["publish_at"])]
    assert lab_idp.metric("tokenslo_faults_active", service="idp") == 1.0
    assert lab_idp.metric("tokenslo_fault_changes_total", service="idp", action="add") == 1.0
    # no request touches the IdP until the housekeeping thread has published the key
    wait_until(
        lambda: lab_idp.metric("tokenslo_fault_changes_total", service="idp", action="expire"),
        timeout=6,
    )
    assert time.time() >= state["publish_at"]
    assert [k["kid"] for k in lab_idp.jwks()["keys"]] == [kid, before[0]]
    assert lab_idp.metric("tokenslo_faults_active", service="idp") == 0.0
    assert all(k["publish_at"] is None for k in lab_idp.admin("GET", "/admin/keys").json()["keys"])
    assert requests.get(lab_idp.url + "/admin/keys", timeout=5).status_code == 401


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
def test_discovery_documents(lab_idp, path):
    doc = requests.get(lab_idp.url + path, timeout=5).json()
    issuer = lab_idp.idp.issuer
    assert doc["issuer"] == issuer
    for key, suffix in [
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("tokenslo_revocation_list_endpoint", "/revocations"),
    ]:
        assert doc[key] == issuer + suffix
    assert set(doc["grant_types_supported"]) == {"client_credentials", "refresh_token"}
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert requests.get(lab_idp.url + "/healthz", timeout=5).json() == {"status": "ok"}


# -- metrics, faults and logs ------------------------------------------------------------------


def test_metrics_names_labels_and_preinitialised_series(lab_idp):
    assert (
        lab_idp.metric("idp_token_requests_total", grant_type="client_credentials", code="500") == 0
    )
    assert lab_idp.metric("idp_introspection_requests_total", code="200", active="true") == 0
    lab_idp.token()
    lab_idp.token(scope="bogus")
    token = lab_idp.token(client="plain").json()["access_token"]
    lab_idp.introspect(token)
    lab_idp.introspect("junk")
    lab_idp.revoke("junk")
    lab_idp.jwks()
    lab_idp.token(grant_type="password")
    m = lab_idp.metric
    assert m("idp_token_requests_total", grant_type="client_credentials", code="200") == 2
    assert m("idp_token_requests_total", grant_type="client_credentials", code="400") == 1
    assert m("idp_token_requests_total", grant_type="other", code="400") == 1
    assert m("idp_token_request_duration_seconds_count", grant_type="client_credentials") == 3
    assert (
        m("idp_token_request_duration_seconds_bucket", grant_type="client_credentials", le="0.3")
        is not None
    )
    assert m("idp_introspection_requests_total", code="200", active="true") == 1
    assert m("idp_introspection_requests_total", code="200", active="false") == 1
    assert m("idp_introspection_request_duration_seconds_count") == 2
    assert m("idp_revocation_requests_total", code="200") == 1
    assert m("idp_jwks_requests_total", code="200") == 1
    assert m("idp_token_size_bytes_count", grant_type="client_credentials") == 2
    assert m("idp_token_size_bytes_sum", grant_type="client_credentials") == pytest.approx(
        len(token) * 2, rel=0.2
    )
    assert m("idp_token_ttl_seconds_sum", grant_type="client_credentials") == 300 + 60
    assert m("idp_signing_key_rotations_total") == 0
    for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.3", "0.5", "1.0", "2.5", "5.0"):
        assert m("idp_introspection_request_duration_seconds_bucket", le=le) is not None


def test_faulted_503_is_counted_with_the_status_the_client_got(lab_idp):
    fault = lab_idp.admin(
        "POST",
        "/admin/faults",
        json={
            "method": "POST",
            "path_prefix": "/token",
            "effect": "status",
            "status": 503,
            "probability": 1.0,
            "expires_in": 30,
        },
    )
    assert fault.status_code == 201, fault.text
    assert lab_idp.token().status_code == 503
    assert lab_idp.token(grant_type="refresh_token", refresh_token="x").status_code == 503
    assert (
        lab_idp.metric("idp_token_requests_total", grant_type="client_credentials", code="503") == 1
    )
    assert lab_idp.metric("idp_token_requests_total", grant_type="refresh_token", code="503") == 1
    assert lab_idp.jwks()["keys"]  # other paths are untouched
    lab_idp.admin("DELETE", "/admin/faults")
    assert lab_idp.token().status_code == 200


def _token_errors(lab: LabIdP) -> dict[tuple[str, str], float]:
    """The non-zero ``idp_token_errors_total`` series as ``{(grant_type, error): value}``."""
    text = requests.get(lab.url + "/metrics", timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "idp_token_errors"]
    return {
        (s.labels["grant_type"], s.labels["error"]): s.value
        for s in family.samples
        if s.name == "idp_token_errors_total" and s.value
    }


def _escalations(lab: LabIdP) -> dict[tuple[str, str], float]:
    """Every ``idp_privilege_escalation_attempts_total`` series: ``{(client_id, kind): value}``."""
    text = requests.get(lab.url + "/metrics", timeout=5).text
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "idp_privilege_escalation_attempts"
    ]
    return {
        (s.labels["client_id"], s.labels["kind"]): s.value
        for s in family.samples
        if s.name == "idp_privilege_escalation_attempts_total"
    }


def test_token_errors_are_counted_by_oauth_error_and_escalations_by_client(lab_idp):
    kinds = ("scope_not_registered", "scope_widening_on_refresh")
    clients = ("svc", "gateway", "opaque", "plain", "unknown")
    assert _token_errors(lab_idp) == {}
    assert _escalations(lab_idp) == {(c, k): 0 for c in clients for k in kinds}

    wrong = requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials"},
        auth=("svc", "not-the-secret"),
        timeout=5,
    )
    assert wrong.json()["error"] == "invalid_client"
    for n in range(20):  # garbage client ids from an unauthenticated caller
        garbage = {"grant_type": "client_credentials", "scope": "admin"}
        requests.post(lab_idp.url + "/token", data=garbage, auth=(f"x{n}", "y"), timeout=5)
    bad_refresh = lab_idp.token(grant_type="refresh_token", refresh_token="no-such-token")
    assert bad_refresh.json()["error"] == "invalid_grant"
    assert lab_idp.token(grant_type="password").json()["error"] == "unsupported_grant_type"
    unregistered = lab_idp.token(scope="read admin")
    assert unregistered.status_code == 400 and unregistered.json()["error"] == "invalid_scope"
    narrowed = lab_idp.token(
        grant_type="refresh_token",
        refresh_token=lab_idp.token().json()["refresh_token"],
        scope="read",
    ).json()
    widened = lab_idp.token(
        grant_type="refresh_token", refresh_token=narrowed["refresh_token"], scope="read write"
    )
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"
    assert lab_idp.token(client="plain", audience="api://nope").status_code == 400
    too_large = requests.post(lab_idp.url + "/token", data={"grant_type": "x" * 70_000}, timeout=5)
    assert too_large.status_code == 413

    assert _token_errors(lab_idp) == {
        ("client_credentials", "invalid_client"): 21,
        ("refresh_token", "invalid_grant"): 1,
        ("other", "unsupported_grant_type"): 1,
        ("client_credentials", "invalid_scope"): 1,
        ("refresh_token", "invalid_scope"): 1,
        ("client_credentials", "invalid_target"): 1,
        ("other", "invalid_request"): 1,
    }
    expected = {(c, k): 0 for c in clients for k in kinds}
    expected[("svc", "scope_not_registered")] = 1
    expected[("svc", "scope_widening_on_refresh")] = 1
    assert _escalations(lab_idp) == expected  # the garbage ids added no series
    # the request counter keeps its labels and counts as before
    assert (
        lab_idp.metric("idp_token_requests_total", grant_type="client_credentials", code="401")
        == 21
    )


def test_injected_server_errors_count_as_the_rfc_6749_condition(lab_idp):
    def inject(status: int) -> None:
        body = {"method": "POST", "path": "/token", "effect": "status", "status": status}
        answer = lab_idp.admin("POST", "/admin/faults", json={**body, "expires_in": 30})
        assert answer.status_code == 201, answer.text

    inject(503)
    assert lab_idp.token().status_code == 503
    lab_idp.admin("DELETE", "/admin/faults")
    inject(500)
    assert lab_idp.token(grant_type="refresh_token", refresh_token="x").status_code == 500
    lab_idp.admin("DELETE", "/admin/faults")
    inject(429)  # an injected 4xx is no OAuth error of the IdP's
    assert lab_idp.token().status_code == 429
    lab_idp.admin("DELETE", "/admin/faults")
    assert _token_errors(lab_idp) == {
        ("client_credentials", "temporarily_unavailable"): 1,
        ("refresh_token", "server_error"): 1,
    }
    assert (
        lab_idp.metric("idp_token_requests_total", grant_type="client_credentials", code="429") == 1
    )


def test_hang_counts_499_and_drop_counts_nothing(lab_idp, wait_until):
    def fault(effect: str) -> None:
        body = {"method": "POST", "path_prefix": "/introspect", "effect": effect, "expires_in": 20}
        assert lab_idp.admin("POST", "/admin/faults", json=body).status_code == 201

    fault("hang")
    with pytest.raises(requests.Timeout):
        requests.post(lab_idp.url + "/introspect", data={"token": "x"}, timeout=0.5)
    wait_until(
        lambda: lab_idp.metric("idp_introspection_requests_total", code="499", active="false") == 1,
        timeout=5,
    )
    lab_idp.admin("DELETE", "/admin/faults")
    fault("drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(lab_idp.url + "/introspect", data={"token": "x"}, timeout=3)
    time.sleep(0.3)
    counted = [
        lab_idp.metric("idp_introspection_requests_total", code=c, active="false")
        for c in ("200", "401", "499", "500", "503")
    ]
    assert counted == [0, 0, 1, 0, 0]


def test_clock_offset_moves_iat_and_exp(lab_idp):
    response = lab_idp.admin(
        "POST", "/admin/clock", json={"offset_seconds": -600, "expires_in": 30}
    )
    assert response.status_code == 201, response.text
    claims = _verify(lab_idp, lab_idp.token().json()["access_token"]).claims
    assert claims["iat"] == pytest.approx(time.time() - 600, abs=5)
    lab_idp.admin("DELETE", "/admin/clock")
    claims = _verify(lab_idp, lab_idp.token().json()["access_token"]).claims
    assert claims["iat"] == pytest.approx(time.time(), abs=5)


def test_no_secret_or_token_in_logs(lab_idp, caplog):
    caplog.set_level(logging.DEBUG)
    first = lab_idp.token().json()
    lab_idp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    lab_idp.token(grant_type="refresh_token", refresh_token=first["refresh_token"])  # reuse
    requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials"},
        auth=("svc", "wrong-secret-value-123"),
        timeout=5,
    )
    opaque = lab_idp.token(client="opaque").json()["access_token"]
    lab_idp.revoke(opaque, client="opaque")
    lab_idp.admin("POST", "/admin/keys/rotate", json={"publish": True})
    text = caplog.text
    assert token_fingerprint(first["refresh_token"]) in text  # reuse was logged, by reference
    assert token_fingerprint(opaque) in text
    assert "rotated" in text and "authentication failed" in text
    for secret in [*SECRETS.values(), ADMIN, "wrong-secret-value-123"]:
        assert secret not in text
    for token in (first["access_token"], first["refresh_token"], opaque):
        assert token not in text
    assert '"d"' not in text  # no private key material


# -- log injection (issue 11, item 9) --------------------------------------------------------


def test_a_newline_in_client_id_cannot_forge_a_log_line(lab_idp, caplog):
    caplog.set_level(logging.INFO, logger="tokenslo")
    forged = "x\n2026-12-02 06:00:00 INFO tokenslo.lab.idp token issued client=admin\x1b[2K"
    response = requests.post(
        lab_idp.url + "/token",
        data={"grant_type": "client_credentials", "client_id": forged, "client_secret": "no"},
        timeout=5,
    )
    assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(lines) == 1
    assert "\n" not in lines[0] and "\x1b" not in lines[0]
    assert "client_id=x\\n2026-12-02" in lines[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a\nb\rc", "a\\nb\\rc"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ('say "hi"', 'say \\"hi\\"'),
        ("ünï", "\\u00fcn\\u00ef"),
    ],
)
def test_clean_escapes_what_could_forge_or_rewrite_a_line(value, expected):
    assert clean(value) == expected


def test_clean_bounds_the_length():
    out = clean("\n" * 10_000, limit=100)
    assert out.endswith("...(truncated)") and len(out) <= 100 * 6 + len("...(truncated)")
