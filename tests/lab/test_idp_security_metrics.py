"""The IdP's error breakdown and escalation counters, pure parts: which ``error`` a /token
answer counts as, which refusals are escalation attempts and of what kind, and the
``client_id`` label that no caller can grow."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tokenslo.lab.exposition import UNKNOWN_CLIENT, client_label
from tokenslo.lab.idp import metrics as idp_metrics
from tokenslo.lab.idp.clients import Client, hash_secret
from tokenslo.lab.idp.keys import KeyStore
from tokenslo.lab.idp.metrics import (
    OAUTH_ERRORS,
    IdPMetrics,
    MetricsMiddleware,
    token_error_label,
)
from tokenslo.lab.idp.tokens import (
    SCOPE_NOT_REGISTERED,
    SCOPE_WIDENING,
    OAuthError,
    TokenService,
    grant_scope,
)

IDP_SOURCES = Path(idp_metrics.__file__).parent
REGISTERED = ("loadtest", "prober")
SVC = Client(
    "svc",
    hash_secret("x"),
    scopes=("read", "write"),
    audiences=("api://lab",),
    grant_types=("client_credentials", "refresh_token"),
)


def _series(registry: CollectorRegistry, family: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for metric in registry.collect()
        if metric.name == family
        for sample in metric.samples
        if sample.name == f"{family}_total"
    ]


# -- the bounded client_id label ------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "label"),
    [
        ("loadtest", "loadtest"),
        ("prober", "prober"),
        ("LOADTEST", UNKNOWN_CLIENT),
        ("loadtest ", UNKNOWN_CLIENT),
        ("", UNKNOWN_CLIENT),
        (None, UNKNOWN_CLIENT),
        (42, UNKNOWN_CLIENT),
        ("x" * 10_000, UNKNOWN_CLIENT),
        ('evil"}\n', UNKNOWN_CLIENT),
    ],
)
def test_only_registered_client_ids_become_label_values(client_id, label):
    assert client_label(client_id, frozenset(REGISTERED)) == label


def test_ten_thousand_distinct_garbage_ids_add_no_series():
    registry = CollectorRegistry()
    metrics = IdPMetrics(registry, REGISTERED)
    before = _series(registry, "idp_privilege_escalation_attempts")
    assert len(before) == (len(REGISTERED) + 1) * 2  # every client and unknown, both kinds
    for n in range(10_000):
        metrics.escalation(f"garbage-{n}", SCOPE_NOT_REGISTERED)
    metrics.escalation("prober", SCOPE_WIDENING)
    after = _series(registry, "idp_privilege_escalation_attempts")
    assert sorted(map(sorted, map(dict.items, after))) == sorted(
        map(sorted, map(dict.items, before))
    )
    value = registry.get_sample_value
    name = "idp_privilege_escalation_attempts_total"
    assert value(name, {"client_id": UNKNOWN_CLIENT, "kind": SCOPE_NOT_REGISTERED}) == 10_000
    assert value(name, {"client_id": "prober", "kind": SCOPE_WIDENING}) == 1
    assert value(name, {"client_id": "loadtest", "kind": SCOPE_NOT_REGISTERED}) == 0


# -- the error breakdown ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reported", "label"),
    [
        ("400", "invalid_scope", "invalid_scope"),
        ("401", "invalid_client", "invalid_client"),
        ("400", "invalid_target", "invalid_target"),
        ("413", "invalid_request", "invalid_request"),
        ("400", "made_up_code", "server_error"),  # outside the contract: the IdP's bug
        ("503", None, "temporarily_unavailable"),  # injected status fault
        ("500", None, "server_error"),
        ("502", None, "server_error"),
        ("429", None, None),  # injected 4xx: no OAuth error of the IdP's
        ("400", None, None),
        ("499", None, None),  # hang: the client got no answer
        ("200", None, None),
    ],
)
def test_token_error_label(code, reported, label):
    assert token_error_label(code, reported) == label


def test_a_crash_of_the_token_endpoint_counts_as_server_error():
    """Starlette answers an exception with 500 outside the metrics middleware."""
    registry = CollectorRegistry()

    async def crash(scope, receive, send) -> None:
        await receive()
        raise RuntimeError("a bug in the endpoint")

    async def receive() -> dict:
        body = b"grant_type=refresh_token&refresh_token=x"
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message) -> None:
        raise AssertionError("nothing is sent")

    middleware = MetricsMiddleware(crash, IdPMetrics(registry))
    scope = {"type": "http", "path": "/token", "method": "POST"}
    with pytest.raises(RuntimeError):
        asyncio.run(middleware(scope, receive, send))
    labels = {"grant_type": "refresh_token", "error": "server_error", "client_id": "unknown"}
    assert registry.get_sample_value("idp_token_errors_total", labels) == 1


def test_the_error_series_exist_at_zero_for_every_grant_code_and_client():
    registry = CollectorRegistry()
    IdPMetrics(registry, REGISTERED)
    series = _series(registry, "idp_token_errors")
    assert len(series) == 3 * len(OAUTH_ERRORS) * (len(REGISTERED) + 1)
    assert {s["grant_type"] for s in series} == {"client_credentials", "refresh_token", "other"}
    assert {s["client_id"] for s in series} == {*REGISTERED, UNKNOWN_CLIENT}
    labels = {"grant_type": "other", "error": "unsupported_grant_type", "client_id": "prober"}
    assert registry.get_sample_value("idp_token_errors_total", labels) == 0


def test_token_requests_are_labelled_by_the_authenticated_client_only():
    """The request counter's series are registered clients x grants x codes (+unknown)
    from the start, and no client_id a caller names adds one."""
    registry = CollectorRegistry()
    metrics = IdPMetrics(registry, REGISTERED)
    before = _series(registry, "idp_token_requests")
    assert {s["client_id"] for s in before} == {*REGISTERED, UNKNOWN_CLIENT}
    for n in range(1000):
        metrics.record("/token", "client_credentials", "401", False, 0.01, "invalid_client", None)
        metrics.record("/token", "client_credentials", "200", False, 0.01, None, f"forged-{n}")
    metrics.record("/token", "refresh_token", "400", False, 0.01, "invalid_grant", "prober")
    assert len(_series(registry, "idp_token_requests")) == len(before)
    value = registry.get_sample_value
    requests = "idp_token_requests_total"
    assert (
        value(requests, {"grant_type": "client_credentials", "code": "401", "client_id": "unknown"})
        == 1000
    )
    assert (
        value(requests, {"grant_type": "refresh_token", "code": "400", "client_id": "prober"}) == 1
    )
    errors = {"grant_type": "refresh_token", "error": "invalid_grant", "client_id": "prober"}
    assert value("idp_token_errors_total", errors) == 1


def test_every_error_code_the_idp_raises_is_a_label_value():
    """A new ``OAuthError("code", ...)`` in the IdP must join ``OAUTH_ERRORS`` (and the
    README's metric contract), or the breakdown would count it as server_error."""
    raised = set()
    for source in IDP_SOURCES.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "OAuthError"
                and isinstance(node.args[0], ast.Constant)
            ):
                raised.add(node.args[0].value)
    assert "invalid_target" in raised and "invalid_scope" in raised  # the scan sees them
    assert raised <= set(OAUTH_ERRORS)


# -- escalation attempts ----------------------------------------------------------------------


def _escalation(call) -> str | None:
    with pytest.raises(OAuthError) as info:
        call()
    assert info.value.error == "invalid_scope"
    return info.value.escalation


def test_a_scope_outside_the_registration_is_scope_not_registered():
    assert _escalation(lambda: grant_scope("read admin", ("read", "write"))) == (
        SCOPE_NOT_REGISTERED
    )
    # on a refresh too: more telling than "wider than the grant"
    assert _escalation(lambda: grant_scope("admin", ("read",), ("read", "write"))) == (
        SCOPE_NOT_REGISTERED
    )


def test_a_registered_scope_the_refreshed_grant_lacks_is_widening():
    assert _escalation(lambda: grant_scope("read write", ("read",), ("read", "write"))) == (
        SCOPE_WIDENING
    )


def test_other_refusals_are_no_escalation():
    assert OAuthError("invalid_grant", "refresh token is invalid").escalation is None
    assert grant_scope("read", ("read", "write")) == ("read",)


def test_the_token_service_marks_both_kinds_and_still_refuses_alike():
    service = TokenService("http://idp", KeyStore("ES256"))
    with pytest.raises(OAuthError) as unregistered:
        service.client_credentials(SVC, "read admin")
    narrowed = service.refresh(SVC, service.client_credentials(SVC).refresh_token or "", "read")
    with pytest.raises(OAuthError) as widened:
        service.refresh(SVC, narrowed.refresh_token or "", "read write")
    assert unregistered.value.escalation == SCOPE_NOT_REGISTERED
    assert widened.value.escalation == SCOPE_WIDENING
    for refused in (unregistered.value, widened.value):
        assert (refused.error, refused.status) == ("invalid_scope", 400)
    # the refused refresh did not use the token up
    assert service.refresh(SVC, narrowed.refresh_token or "").scope == "read"
