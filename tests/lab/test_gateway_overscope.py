"""Tokens wider than their client's registration (guide M15: "tokens presenting scopes
beyond their client's registration are counted as attempts").

The check is a pure function (``scopes_beyond_registration``) and the gateway config
says which scopes each client is registered for (``clients: {id: {scopes: [...]}}``);
both are tested as such. Then against a real IdP and gateway (``threaded_lab``): a
token the IdP issued wider than the registration (a token profile) is counted for its
client and logged by scope name, still served as the route allows; a normal token is
not counted; a forged wide token (bad signature) counts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
from gateway_fixtures import Lab, claims_for, forge, metric, threaded_lab, validations
from joserfc.jwk import ECKey

from tokenslo.errors import InputError
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.lab.gateway.config import GatewayConfig, parse_gateway_config
from tokenslo.lab.gateway.scopes import scopes_beyond_registration

REGISTERED = {"prober": ("api.read",), "loadtest": ("api.read", "api.write"), "gateway": ()}
COUNTER = "gateway_scope_beyond_registration_total"


# -- the pure check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_id, scope, extra",
    [
        ("prober", "api.read", ()),
        ("prober", "api.read api.write", ("api.write",)),
        ("prober", "  api.admin   api.read api.write ", ("api.admin", "api.write")),
        ("loadtest", "api.write api.read", ()),
        ("gateway", "api.read", ("api.read",)),  # registered for no scope at all
        ("prober", "", ()),
        ("prober", None, ()),
        ("prober", ["api.write"], ()),  # not a scope string: grants nothing, so nothing extra
        ("nobody", "api.admin", ()),  # no known registration: not judged
        (None, "api.admin", ()),  # no vouched-for client (forged or unsigned)
        (7, "api.admin", ()),
    ],
)
def test_only_scopes_outside_a_known_registration_are_beyond_it(
    client_id: object, scope: object, extra: tuple[str, ...]
) -> None:
    claims = {} if scope is None else {"scope": scope}
    assert scopes_beyond_registration(client_id, claims, REGISTERED) == extra


# -- the config --------------------------------------------------------------------------------


def test_clients_as_a_mapping_give_each_clients_registered_scopes() -> None:
    config = parse_gateway_config(
        "clients:\n"
        "  prober: {scopes: [api.read]}\n"
        "  gateway: {scopes: []}\n"
        "  legacy: {}\n"
        "  other: null\n"
    )
    assert config.clients == ("prober", "gateway", "legacy", "other")
    assert config.client_scopes == {"prober": ("api.read",), "gateway": ()}


def test_clients_as_a_list_of_ids_still_work_and_judge_nobody() -> None:
    config = parse_gateway_config("clients: [prober, loadtest]\n")
    assert config.clients == ("prober", "loadtest") and config.client_scopes == {}
    assert GatewayConfig().client_scopes == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("clients: prober\n", "must be a list of client ids or a mapping"),
        ("clients: [prober, '']\n", "must be a list of client ids"),
        ("clients: {prober: [api.read]}\n", "prober: must be a mapping with only 'scopes'"),
        ("clients: {prober: {scope: [api.read]}}\n", "prober: must be a mapping with only"),
        ("clients: {prober: {scopes: api.read}}\n", "prober: scopes must be a list"),
        ("clients: {prober: {scopes: ['a b']}}\n", "prober: 'a b' is not a scope"),
        ("clients: {'': {scopes: []}}\n", "'' is not a client id"),
        ("client_scopes: {prober: [api.read]}\n", "unknown setting"),
    ],
)
def test_bad_clients_are_refused_naming_the_field_and_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")) as raised:
        parse_gateway_config("port: 1\n" + text, "gw.yaml")
    assert raised.value.exit_code == 2
    assert str(raised.value).startswith("gw.yaml:2: ")


# -- the real IdP and gateway ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    registrations = {"loadtest": ("api.read", "api.write"), "opaque-client": ("api.read",)}
    with threaded_lab(tmp_path_factory.mktemp("overscope"), client_scopes=registrations) as lab:
        yield lab


def counted(lab: Lab) -> dict[str, float]:
    return {c: metric(lab.gateway_url, COUNTER, client_id=c) for c in ("loadtest", "opaque-client")}


def test_only_clients_with_known_scopes_have_a_series_all_at_zero(lab: Lab) -> None:
    exposed = requests.get(f"{lab.gateway_url}/metrics", timeout=5).text
    series = sorted(line.split(" ")[0] for line in exposed.splitlines() if line.startswith(COUNTER))
    assert series == [
        f'{COUNTER}{{client_id="loadtest"}}',
        f'{COUNTER}{{client_id="opaque-client"}}',
    ]


def test_an_overscoped_token_from_the_idp_is_counted_for_its_client(
    lab: Lab, idp: LabAdmin, caplog: pytest.LogCaptureFixture
) -> None:
    before = counted(lab)
    idp.set_token_profile("loadtest", 30, scope="api.read api.write api.admin")
    issued = lab.token()
    assert issued["scope"] == "api.read api.write api.admin"
    with caplog.at_level(logging.WARNING, logger="tokenslo.lab.gateway"):
        answer = lab.call(issued["access_token"])
    assert answer.status_code == 200  # served as the route allows: api.read is there
    after = counted(lab)
    assert after == {"loadtest": before["loadtest"] + 1, "opaque-client": before["opaque-client"]}
    (line,) = [r.getMessage() for r in caplog.records if "beyond registration" in r.getMessage()]
    assert "client_id=loadtest extra_scopes=api.admin" in line
    assert issued["access_token"] not in caplog.text


def test_a_normal_token_is_not_counted(lab: Lab) -> None:
    before = counted(lab)
    valid_before = validations(lab.gateway_url)["valid"]
    assert lab.call(lab.token()["access_token"]).status_code == 200
    assert validations(lab.gateway_url)["valid"] == valid_before + 1
    assert counted(lab) == before


def test_a_forged_wide_token_counts_nothing(lab: Lab) -> None:
    before = counted(lab)
    key, alg = lab.signing_key()
    header = {"alg": alg, "typ": "at+jwt", "kid": str(key.kid)}  # the IdP's kid, ...
    wide = claims_for(lab, scope="api.read api.write api.admin")
    forged = forge(header, wide, ECKey.generate_key("P-256"), alg)  # ... another key
    bad_before = validations(lab.gateway_url)["bad_signature"]
    assert lab.call(forged).status_code == 401
    assert validations(lab.gateway_url)["bad_signature"] == bad_before + 1
    assert counted(lab) == before
    # the same claims signed with the IdP's real key are counted: the check is live
    assert lab.call(forge(header, wide, key, alg)).status_code == 200
    assert counted(lab)["loadtest"] == before["loadtest"] + 1
