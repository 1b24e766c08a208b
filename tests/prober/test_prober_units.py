"""Pure parts of the prober: discovery URLs, skew estimates, JWT peeking, config, metrics."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from support import write_target
from tokenslo.cli import main
from tokenslo.errors import InputError
from tokenslo.jws import token_fingerprint
from tokenslo.prober.config import parse_listen
from tokenslo.prober.measure import (
    bearer_error,
    date_header_seconds,
    discovery_urls,
    jwt_parts,
    same_issuer,
    skew_from_whole_seconds,
    token_ttl,
)
from tokenslo.prober.metrics import ProbeMetrics
from tokenslo.prober.result import StepResult, TransactionResult

T = "http://idp.test"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# -- measure ------------------------------------------------------------------------------


def test_discovery_urls_follow_rfc8414_for_path_issuers():
    assert discovery_urls("https://h.example/tenant/") == [
        "https://h.example/.well-known/oauth-authorization-server/tenant",
        "https://h.example/tenant/.well-known/openid-configuration",
    ]
    assert discovery_urls("http://127.0.0.1:9400") == [
        "http://127.0.0.1:9400/.well-known/oauth-authorization-server",
        "http://127.0.0.1:9400/.well-known/openid-configuration",
    ]


def test_same_issuer_ignores_only_a_trailing_slash():
    assert same_issuer("http://a/", "http://a")
    assert not same_issuer("http://b", "http://a")
    assert not same_issuer(None, "http://a")


@pytest.mark.parametrize(
    ("remote", "sent", "received", "expected"),
    [
        (1000.0, 1000.2, 1000.4, 0.2),  # truncated second: remote read 1000.5 on average
        (1120.0, 1000.0, 1000.0, 120.5),
        (880.0, 1000.0, 1001.0, -120.0),
    ],
)
def test_skew_from_whole_seconds(remote, sent, received, expected):
    assert skew_from_whole_seconds(remote, sent, received) == pytest.approx(expected)


def test_date_header_parsing():
    assert date_header_seconds("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777.0
    assert date_header_seconds("yesterday") is None
    assert date_header_seconds(None) is None


def test_jwt_parts_reads_header_and_claims_without_verifying():
    token = f"{_b64({'alg': 'ES256', 'kid': 'k1'})}.{_b64({'iat': 10, 'exp': 310})}.sig"
    header, claims = jwt_parts(token)
    assert header["kid"] == "k1" and claims["exp"] == 310
    assert jwt_parts("opaque-token") is None
    assert jwt_parts("a.b.c") is None
    assert jwt_parts(f"{_b64({'alg': 'x'})}.{base64.urlsafe_b64encode(b'[1]').decode()}.s") is None


def test_token_ttl_prefers_expires_in_then_claims():
    assert token_ttl(300, {"iat": 0, "exp": 60}) == 300
    assert token_ttl(None, {"iat": 100, "exp": 160}) == 60
    assert token_ttl(True, None) is None
    assert token_ttl(None, {"iat": "x", "exp": 1}) is None


@pytest.mark.parametrize(
    ("challenge", "error"),
    [
        ('Bearer realm="x", error="insufficient_scope", scope="api.write"', "insufficient_scope"),
        ('bearer error="insufficient_scope"', "insufficient_scope"),  # scheme: any case
        ('Bearer realm="x",error="invalid_token"', "invalid_token"),
        ('Bearer realm="x", error_description="error="x""', None),  # not the error param
        ('Bearer realm="x"', None),
        ('Basic realm="x", error="insufficient_scope"', None),  # not a Bearer challenge
        ("", None),
        (None, None),
    ],
)
def test_bearer_error_reads_the_rfc6750_error_attribute(challenge, error):
    assert bearer_error(challenge) == error


def test_token_ref_is_a_12_hex_sha256_prefix():
    ref = token_fingerprint("secret-token")
    assert len(ref) == 12 and ref != token_fingerprint("secret-token2")
    int(ref, 16)


# -- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9404", ("127.0.0.1", 9404)),
        ("9404", ("127.0.0.1", 9404)),
        (":1", ("127.0.0.1", 1)),
    ],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["host:", "127.0.0.1:70000", "x"])
def test_parse_listen_rejects(text):
    with pytest.raises(InputError, match="HOST:PORT"):
        parse_listen(text)


def test_cli_bad_input_is_one_line_exit_2(capsys, monkeypatch, tmp_path: Path):
    monkeypatch.delenv("PROBER_SECRET", raising=False)
    target = write_target(
        tmp_path / "t.yaml",
        {"issuer": "http://127.0.0.1:1",
         "clients": {"prober": {"client_id": "p", "secret": {"env": "PROBER_SECRET"}}}},
    )  # fmt: skip
    assert main(["probe", "--target", str(target), "--once"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PROBER_SECRET" in err and "Traceback" not in err
    assert main(["probe", "--target", str(tmp_path / "missing.yaml"), "--once"]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["probe", "--target", str(target)]) == 2
    assert "--listen" in capsys.readouterr().err


# -- metrics ------------------------------------------------------------------------------


def _result(**steps: StepResult) -> TransactionResult:
    result = TransactionResult(target=T, started_at=1.0, finished_at=2.0)
    for step in steps.values():
        result.add(step)
    return result


def _value(metrics: ProbeMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, {"target": T, **labels})


def test_metrics_record_successes_failures_and_skips():
    metrics = ProbeMetrics()
    metrics.init_target(T)
    assert _value(metrics, "probe_steps_total", step="jwks", result="failure") == 0
    result = _result(
        discover=StepResult("discover", "success", 0.02),
        token=StepResult("token", "failure", 0.001, "HTTP 503"),
        api=StepResult("api", "skipped", blocked=True),
        jwks=StepResult("jwks", "skipped"),  # not offered
    )
    result.skew = {"date_header": -0.25}
    metrics.record(result)
    assert _value(metrics, "probe_success", step="discover") == 1
    assert _value(metrics, "probe_success", step="token") == 0
    assert _value(metrics, "probe_success", step="api") == 0  # blocked reads as 0
    assert _value(metrics, "probe_success", step="jwks") is None  # not offered: no series
    assert _value(metrics, "probe_steps_total", step="token", result="failure") == 1
    assert _value(metrics, "probe_steps_total", step="api", result="skipped") == 1
    # Only successful steps are timed.
    assert _value(metrics, "probe_step_duration_seconds_count", step="discover") == 1
    assert _value(metrics, "probe_step_duration_seconds_bucket", step="discover", le="0.025") == 1
    assert _value(metrics, "probe_step_duration_seconds_count", step="token") is None
    assert _value(metrics, "probe_clock_skew_seconds", source="date_header") == -0.25
    assert _value(metrics, "probe_clock_skew_seconds", source="token_iat") is None
    assert _value(metrics, "probe_last_run_timestamp_seconds") == 2.0


def test_a_step_that_stops_being_offered_loses_its_success_series():
    metrics = ProbeMetrics()
    metrics.record(_result(jwks=StepResult("jwks", "success", 0.01)))
    assert _value(metrics, "probe_success", step="jwks") == 1
    metrics.record(_result(jwks=StepResult("jwks", "skipped")))
    assert _value(metrics, "probe_success", step="jwks") is None


def test_propagation_timeouts_land_above_the_slo_threshold():
    metrics = ProbeMetrics()
    result = _result()
    result.propagation = {"introspection": 0.05, "api": 10.2}
    result.propagation_converged = {"introspection": True, "api": False}
    result.token_size, result.token_ttl, result.kid_published = 812, 300.0, False
    metrics.record(result)
    hist = "probe_revocation_propagation_duration_seconds_bucket"
    assert _value(metrics, hist, stage="api", le="5.0") == 0
    assert _value(metrics, hist, stage="api", le="+Inf") == 1
    assert _value(metrics, hist, stage="introspection", le="0.1") == 1
    assert _value(metrics, "probe_revocation_propagation_seconds", stage="api") == 10.2
    assert _value(metrics, "probe_token_size_bytes") == 812
    assert _value(metrics, "probe_token_ttl_seconds") == 300
    assert _value(metrics, "probe_token_kid_published") == 0
