"""Pure parts of the lab IdP: config and client parsing, scopes, keys, token families."""

from __future__ import annotations

import gc
import stat
import tracemalloc

import pytest

from tokenslo.errors import InputError
from tokenslo.lab.idp.clients import Client, hash_secret, load_clients
from tokenslo.lab.idp.config import IdPConfig, load_idp_config
from tokenslo.lab.idp.keys import KeyStore
from tokenslo.lab.idp.tokens import OAuthError, TokenService, grant_scope


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- config -----------------------------------------------------------------------------------


def test_config_defaults_and_derived_issuer(tmp_path):
    path = tmp_path / "idp.yaml"
    path.write_text("port: 9555\nclients_file: c.yaml\n")
    config = load_idp_config(path)
    assert config.effective_issuer == "http://127.0.0.1:9555"
    assert config.signing_alg == "ES256" and config.keys_file is None
    assert str(config.clients_file) == "c.yaml"
    explicit = IdPConfig(issuer="http://idp.test:1/")
    assert explicit.effective_issuer == "http://idp.test:1/"


@pytest.mark.parametrize(
    ("text", "line", "field", "fragment"),
    [
        ("host: 127.0.0.1\nsigning_alg: HS256\n", 2, "signing_alg", "HS256"),
        ("port: 9400\nprot: 1\n", 2, "prot", "unknown field"),
        ("port: 99999\n", 1, "port", "between 1 and 65535"),
        ("host: 0.0.0.0\n", 1, "host", "loopback"),
        ("issuer: idp.example\n", 1, "issuer", "http"),
    ],
)
def test_config_errors_name_file_line_and_field(tmp_path, text, line, field, fragment):
    path = tmp_path / "idp.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_idp_config(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert fragment in str(err) and str(err).startswith(f"{path}:{line}: {field}:")


def test_config_yaml_syntax_error_has_position(tmp_path):
    path = tmp_path / "idp.yaml"
    path.write_text("port: 9400\nissuer: [unclosed\n")
    with pytest.raises(InputError) as info:
        load_idp_config(path)
    assert info.value.line == 3 and "invalid YAML" in str(info.value)


# -- clients ----------------------------------------------------------------------------------

CLIENTS_YAML = """\
clients:
  - client_id: svc
    secret_sha256: {digest}
    scopes: [read]
    audiences: [api://lab]
    token_format: opaque
    grant_types: [client_credentials, refresh_token]
  - client_id: gateway
    secret_sha256: {digest}
    token_ttl: {ttl}
"""


def test_clients_load_and_authenticate(tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text(CLIENTS_YAML.format(digest=hash_secret("s3cret"), ttl=120))
    registry = load_clients(path)
    assert len(registry) == 2
    svc = registry.get("svc")
    assert svc.token_format == "opaque" and svc.grant_types == (
        "client_credentials",
        "refresh_token",
    )
    assert registry.get("gateway").token_ttl == 120
    assert registry.authenticate("svc", "s3cret") is svc
    assert registry.authenticate("svc", "s3cret ") is None
    assert registry.authenticate("nobody", "s3cret") is None


@pytest.mark.parametrize(
    ("digest", "ttl", "line", "field"),
    [
        ("not-hex", 120, 3, "clients[0].secret_sha256"),
        (hash_secret("x"), -5, 10, "clients[1].token_ttl"),
    ],
)
def test_client_errors_name_line_and_field(tmp_path, digest, ttl, line, field):
    path = tmp_path / "clients.yaml"
    path.write_text(CLIENTS_YAML.format(digest=digest, ttl=ttl))
    with pytest.raises(InputError) as info:
        load_clients(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_client_unknown_grant_rejected(tmp_path):
    path = tmp_path / "clients.yaml"
    text = CLIENTS_YAML.format(digest=hash_secret("x"), ttl=1).replace(
        "refresh_token]", "password]"
    )
    path.write_text(text)
    with pytest.raises(InputError, match="password"):
        load_clients(path)


# -- scopes -----------------------------------------------------------------------------------


def test_grant_scope():
    allowed = ("read", "write")
    assert grant_scope(None, allowed) == allowed
    assert grant_scope("  ", allowed) == allowed
    assert grant_scope("write read write", allowed) == ("write", "read")
    with pytest.raises(OAuthError) as info:
        grant_scope("read delete", allowed)
    assert info.value.error == "invalid_scope" and "delete" in info.value.description


# -- keys -------------------------------------------------------------------------------------


def test_keystore_persists_private_keys_0600_and_reloads(tmp_path):
    path = tmp_path / "state" / "keys.json"
    store = KeyStore("ES256", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.rotate(publish=False, publish_in=60)
    again = KeyStore("ES256", path)
    assert again.current.kid == store.current.kid and again.current.published is False
    assert [k["kid"] for k in again.jwks()["keys"]] == [k["kid"] for k in store.jwks()["keys"]]
    switched = KeyStore("RS256", path)  # alg change → a fresh current key of the new alg
    assert switched.current.alg == "RS256" and switched.current.kid != store.current.kid


def test_keystore_bad_file_is_input_error(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(InputError) as info:
        KeyStore("ES256", path)
    assert info.value.field == "keys_file"


def test_keystore_verify_rejects_foreign_and_garbage():
    ours, theirs = KeyStore("ES256"), KeyStore("ES256")
    token = theirs.sign({"typ": "at+jwt"}, {"jti": "a"})
    assert ours.verify(token) is None
    assert ours.verify("a.b.c") is None and ours.verify("") is None
    assert theirs.verify(token).claims == {"jti": "a"}


# -- token families ---------------------------------------------------------------------------

SVC = Client(
    "svc",
    hash_secret("x"),
    scopes=("read",),
    audiences=("api://lab",),
    token_ttl=100,
    grant_types=("client_credentials", "refresh_token"),
    refresh_ttl=1000,
)


def test_refresh_expiry_and_revocation_list_pruning():
    clock = FakeClock()
    service = TokenService("http://idp", KeyStore("ES256", now=clock), now=clock)
    first = service.client_credentials(SVC)
    assert service.introspect(first.access_token)["active"] is True
    clock.t += 101
    assert service.introspect(first.access_token) == {"active": False}  # expired
    second = service.refresh(SVC, first.refresh_token)
    service.refresh(SVC, second.refresh_token)
    with pytest.raises(OAuthError):
        service.refresh(SVC, first.refresh_token)  # reuse → family revoked
    listed = {e["jti"] for e in service.revocation_list()["revoked"]}
    assert second.jti in listed and first.jti not in listed  # first already expired
    clock.t += 1001
    service.sweep()
    assert service.stats() == {
        "opaque_tokens": 0,
        "refresh_tokens": 0,
        "families": 0,
        "revoked_jtis": 0,
    }


def test_refresh_token_expires():
    clock = FakeClock()
    service = TokenService("http://idp", KeyStore("ES256", now=clock), now=clock)
    issued = service.client_credentials(SVC)
    clock.t += 1000
    with pytest.raises(OAuthError) as info:
        service.refresh(SVC, issued.refresh_token)
    assert info.value.error == "invalid_grant" and "expired" in info.value.description


# -- memory per refresh-token family -----------------------------------------------------------

LOADTEST = Client(
    "loadtest",
    hash_secret("x"),
    scopes=("api.read", "api.write"),
    audiences=("api://lab",),
    token_ttl=300,
    grant_types=("client_credentials", "refresh_token"),
    refresh_ttl=3600,
)
FAMILIES = 5_000
# Limits, from what a family must hold: its refresh token's 32-byte digest (dict key),
# a 4-slot record, its exp, a 4-slot family; while its access token lives, also the jti
# and exp (measured: ~430 B live, ~260 B once the access token expired; the previous
# layout with hex digests, dataclasses and family ids took ~850/~660 B). At the soak's
# 10 families/s for 600 s that is <= 3.6 MB, under 10 % of the IdP's resident memory.
MAX_BYTES_LIVE = 600
MAX_BYTES_AFTER_ACCESS_EXPIRY = 350


def _traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.slow  # tracemalloc over thousands of token families: ~15 s on a loaded machine
def test_memory_per_refresh_family_is_small_and_drops_with_expiry():
    clock = FakeClock()
    service = TokenService("http://idp", KeyStore("ES256", now=clock), now=clock)
    for _ in range(50):  # warm caches (joserfc, interned scopes) outside the measurement
        service.client_credentials(LOADTEST)
    tracemalloc.start()
    try:
        before = _traced_bytes()
        for _ in range(FAMILIES):
            service.client_credentials(LOADTEST)
        live = (_traced_bytes() - before) / FAMILIES
        clock.t += LOADTEST.token_ttl + 1
        service.sweep()
        lasting = (_traced_bytes() - before) / FAMILIES
        clock.t += LOADTEST.refresh_ttl
        service.sweep()
        gone = (_traced_bytes() - before) / FAMILIES
    finally:
        tracemalloc.stop()
    assert live <= MAX_BYTES_LIVE, f"{live:.0f} bytes per live family"
    assert lasting <= MAX_BYTES_AFTER_ACCESS_EXPIRY, f"{lasting:.0f} bytes per family"
    assert lasting < live  # access jtis were pruned
    assert gone < 20, f"{gone:.0f} bytes per family left after refresh expiry"
    assert service.stats()["families"] == 0


def test_revoked_family_is_dropped_at_the_next_sweep_not_at_refresh_expiry():
    clock = FakeClock()
    service = TokenService("http://idp", KeyStore("ES256", now=clock), now=clock)
    first = service.client_credentials(SVC)
    second = service.refresh(SVC, first.refresh_token)
    keeper = service.client_credentials(SVC)
    with pytest.raises(OAuthError, match="already used"):
        service.refresh(SVC, first.refresh_token)
    listed = {e["jti"] for e in service.revocation_list()["revoked"]}
    assert listed == {first.jti, second.jti}
    assert service.introspect(second.refresh_token) == {"active": False}
    with pytest.raises(OAuthError, match="revoked"):
        service.refresh(SVC, second.refresh_token)
    service.sweep()
    assert service.stats()["families"] == 1 and service.stats()["refresh_tokens"] == 1
    assert service.introspect(keeper.refresh_token)["active"] is True


def test_expired_access_tokens_are_not_listed_when_their_family_is_revoked():
    clock = FakeClock()
    service = TokenService("http://idp", KeyStore("ES256", now=clock), now=clock)
    first = service.client_credentials(SVC)
    clock.t += SVC.token_ttl + 1
    service.sweep()  # prunes first's jti from its family
    second = service.refresh(SVC, first.refresh_token)
    service.revoke(SVC, second.refresh_token)
    assert {e["jti"] for e in service.revocation_list()["revoked"]} == {second.jti}
    assert service.introspect(second.access_token) == {"active": False}
