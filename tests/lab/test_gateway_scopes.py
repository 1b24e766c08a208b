"""The gateway's scope check as pure logic: claim parsing, decisions, route config."""

from __future__ import annotations

import pytest

from tokenslo.errors import InputError
from tokenslo.lab.gateway.config import GatewayConfig, parse_gateway_config
from tokenslo.lab.gateway.scopes import (
    ALLOW,
    DENY,
    INSUFFICIENT_SCOPE,
    OK,
    decide,
    granted_scopes,
    route_key,
)


@pytest.mark.parametrize(
    ("claim", "granted"),
    [
        ("api.read api.write", {"api.read", "api.write"}),
        ("  api.read \t  api.write  ", {"api.read", "api.write"}),
        ("api.read api.read", {"api.read"}),
        ("", set()),
        ("   ", set()),
        (None, set()),
        (["api.read"], set()),  # not the RFC 9068 string form: grants nothing
        (42, set()),
    ],
)
def test_granted_scopes_are_the_space_separated_words_of_a_string_claim(claim, granted) -> None:
    assert granted_scopes(claim) == granted


def test_a_token_with_every_required_scope_is_allowed() -> None:
    decision = decide(("api.read",), {"scope": "openid api.read"})
    assert (decision.outcome, decision.reason, decision.missing) == (ALLOW, OK, ())
    assert decision.allowed


def test_a_token_lacking_a_required_scope_is_denied_naming_what_is_missing() -> None:
    decision = decide(("api.read", "api.write"), {"scope": "api.read"})
    assert (decision.outcome, decision.reason) == (DENY, INSUFFICIENT_SCOPE)
    assert decision.missing == ("api.write",) and not decision.allowed


@pytest.mark.parametrize("claims", [{}, {"scope": ""}, {"scope": None}, {"scope": "   "}])
def test_a_missing_or_empty_scope_claim_is_denied(claims) -> None:
    assert decide(("api.read",), claims).missing == ("api.read",)


def test_a_route_requiring_no_scope_allows_any_valid_token() -> None:
    assert decide((), {}).allowed


def test_scopes_match_exactly_not_by_prefix_or_case() -> None:
    assert not decide(("api.write",), {"scope": "api.writer API.WRITE api"}).allowed


def test_route_keys_treat_head_as_get() -> None:
    assert route_key("get", "/api/resource") == "GET /api/resource"
    assert route_key("HEAD", "/api/resource") == "GET /api/resource"
    assert route_key("POST", "/api/resource") == "POST /api/resource"


def test_route_scopes_default_to_read_for_get_and_write_for_post() -> None:
    config = parse_gateway_config("")
    assert config.required_scopes("GET /api/resource") == ("api.read",)
    assert config.required_scopes("POST /api/resource") == ("api.write",)
    assert config.required_scopes("GET /public/resource") == ()


def test_configured_route_scopes_replace_only_the_routes_they_name() -> None:
    config = parse_gateway_config("route_scopes:\n  GET /api/resource: [api.read, audit]\n")
    assert config.required_scopes("GET /api/resource") == ("api.read", "audit")
    assert config.required_scopes("POST /api/resource") == ("api.write",)
    opened = GatewayConfig(route_scopes={"POST /api/resource": ()})
    assert opened.required_scopes("POST /api/resource") == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("route_scopes: [api.read]\n", "mapping"),
        ("route_scopes:\n  DELETE /api/resource: [x]\n", "not a protected route"),
        ("route_scopes:\n  GET /api/resource: api.read\n", "list of scopes"),
        ("route_scopes:\n  GET /api/resource: ['a\"b']\n", "scope-token"),
        ("route_scopes:\n  GET /api/resource: ['a b']\n", "scope-token"),
        ("route_scopes:\n  GET /api/resource: [1]\n", "scope-token"),
    ],
)
def test_bad_route_scopes_name_the_field(text: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_gateway_config(text, "gw.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("gw.yaml", 1, "route_scopes")
    assert words in str(err.value)
