"""Revoked tokens stay revoked (issue 11, item 3; Must show 3).

Before, revocations lived only in the IdP's memory and the gateway replaced its
list on every poll: after any IdP restart a revoked, unexpired JWT was valid
again. Now the IdP persists them (atomic, 0600, until each token's exp) and
the gateway keeps what it knew until exp.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from gateway_fixtures import Lab, result_of, threaded_lab, wait_for

from support import ServedApp
from tokenslo.errors import InputError
from tokenslo.lab.gateway.app import create_app as create_gateway
from tokenslo.lab.gateway.revocation import RevocationList
from tokenslo.lab.idp.app import create_app as create_idp
from tokenslo.lab.idp.clients import Client
from tokenslo.lab.idp.config import load_idp_config
from tokenslo.lab.idp.keys import KeyStore
from tokenslo.lab.idp.tokens import TokenService

NOW = 1_700_000_000.0


KEYS = KeyStore("ES256", now=lambda: NOW, real_now=lambda: NOW)


def test_revocations_survive_a_new_token_service(tmp_path: Path, lab_client) -> None:
    path = tmp_path / "idp-revocations.json"
    service = TokenService("http://idp", KEYS, now=lambda: NOW, revocations_file=path)
    issued = service.client_credentials(lab_client)
    assert service.revoke(lab_client, issued.access_token) == "access_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restarted = TokenService("http://idp", KEYS, now=lambda: NOW, revocations_file=path)
    assert [e["jti"] for e in restarted.revocation_list()["revoked"]] == [issued.jti]
    assert restarted.introspect(issued.access_token) == {"active": False}
    # past its exp the entry is not loaded any more: it could no longer matter
    later = TokenService("http://idp", KEYS, now=lambda: NOW + 10**4, revocations_file=path)
    assert later.revocation_list()["revoked"] == []


def test_a_damaged_revocations_file_is_one_input_error(tmp_path: Path) -> None:
    path = tmp_path / "idp-revocations.json"
    path.write_text('{"jti": "a"}\n{"jti": "b", "exp": 1}\n')
    with pytest.raises(InputError) as err:
        TokenService("http://idp", KEYS, revocations_file=path)
    assert err.value.field == "revocations_file" and str(path) in str(err.value)
    assert err.value.line == 1


def test_the_journal_appends_and_survives_a_line_cut_short(tmp_path: Path, lab_client) -> None:
    """One line per revocation (cost independent of the list's length); a crash mid-append
    loses at most that line, never the file."""
    path = tmp_path / "idp-revocations.json"
    service = TokenService("http://idp", KEYS, now=lambda: NOW, revocations_file=path)
    issued = [service.client_credentials(lab_client) for _ in range(3)]
    for token in issued:
        service.revoke(lab_client, token.access_token)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["jti"] for line in lines] == [t.jti for t in issued]
    path.write_text(path.read_text() + '{"jti": "half-writ')  # a crash while appending
    restarted = TokenService("http://idp", KEYS, now=lambda: NOW, revocations_file=path)
    assert {e["jti"] for e in restarted.revocation_list()["revoked"]} == {t.jti for t in issued}
    assert "half-writ" not in path.read_text()  # compacted on load


def test_gateway_keeps_a_revocation_the_idp_forgot_until_exp() -> None:
    wall = [NOW]
    listed = RevocationList(wall=lambda: wall[0])
    listed.replace({"revoked": [{"jti": "a", "exp": NOW + 60}, {"jti": "b"}]})
    listed.replace({"revoked": []})  # an IdP that lost its memory
    assert listed.is_revoked("a") and not listed.is_revoked("b")
    wall[0] = NOW + 61
    listed.replace({"revoked": []})
    assert not listed.is_revoked("a")
    listed.replace({"revoked": [{"jti": "c", "exp": 10**400}]})  # no OverflowError
    assert listed.is_revoked("c")


@pytest.fixture
def lab_client() -> Client:
    return Client(
        client_id="c",
        secret_sha256="0" * 64,
        scopes=("api.read",),
        audiences=("api://lab",),
        token_ttl=300,
    )


def restart(lab: Lab, directory: Path) -> None:
    """Stop the IdP and the gateway; start both again from their files, same ports."""
    idp_server, gateway_server = lab.servers
    gateway_config = lab.gateway_app.state.gateway.config
    credentials = lab.gateway_app.state.gateway.idp.credentials
    for server in (gateway_server, idp_server):
        server.stop()
    idp_app = create_idp(load_idp_config(directory / "idp.yaml"), admin_secret=lab.admin_secret)
    lab.servers[0] = ServedApp(idp_app, idp_server.port).start()
    gateway_app = create_gateway(
        gateway_config, admin_secret=lab.admin_secret, credentials=credentials
    )
    lab.servers[1] = ServedApp(gateway_app, gateway_server.port).start()
    lab.idp_app, lab.gateway_app = idp_app, gateway_app
    wait_for(lambda: gateway_app.state.gateway.jwks.kids, 10, "gateway never loaded the JWKS")


@pytest.mark.lab
def test_revoked_token_is_still_refused_after_an_idp_restart(tmp_path: Path) -> None:
    with threaded_lab(tmp_path) as lab:
        token = lab.token()["access_token"]
        assert lab.call(token).status_code == 200
        lab.revoke(token)
        wait_for(lambda: lab.call(token).status_code == 401, 5, "revocation not propagated")
        stored = (tmp_path / "idp-revocations.json").read_text().splitlines()
        assert len(stored) == 1 and "jti" in json.loads(stored[0])
        restart(lab, tmp_path)
        # the fresh gateway knows only what the restarted IdP tells it
        wait_for(
            lambda: lab.gateway_app.state.gateway.revocations.age() < 60,
            5,
            "gateway never polled the restarted IdP",
        )
        assert result_of(lab, token) == "revoked"
        assert lab.call(lab.token()["access_token"]).status_code == 200  # control
