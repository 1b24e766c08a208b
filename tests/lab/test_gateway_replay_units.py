"""The replay detector (``tokenslo.lab.gateway.replay``) and its gateway settings, by hand.

sha256("abc") = ba7816bf8f01cfea…, so the token id "abc" is bucket "b" and logs as
"ba7816bf8f01"; sha256("t1") starts with "628b", sha256("t2") with "c444".
"""

from __future__ import annotations

import hashlib

import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from tokenslo.errors import InputError
from tokenslo.lab.gateway.app import _watch_replay, create_app
from tokenslo.lab.gateway.config import GatewayConfig, config_from_dict
from tokenslo.lab.gateway.replay import (
    BUCKETS,
    SOURCES_PER_TOKEN,
    ReplayDetector,
    Suspicion,
    source_fingerprint,
    token_bucket,
)
from tokenslo.lab.gateway.validator import VALID, Outcome

A = source_fingerprint("127.0.0.1", "client/1")
B = source_fingerprint("127.0.0.2", "client/1")
C = source_fingerprint("127.0.0.1", "client/2")


def test_hashes_are_sha256_of_the_jti():
    assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf8f01")
    assert token_bucket("abc") == "b"
    assert set(BUCKETS) == set("0123456789abcdef") and len(BUCKETS) == 16
    assert {token_bucket(f"jti-{i}") for i in range(200)} <= set(BUCKETS)


def test_a_source_is_address_user_agent_and_device():
    assert len(A) == 16 and source_fingerprint("127.0.0.1", "client/1") == A
    assert len({A, B, C, source_fingerprint("127.0.0.1", "client/1", "device-9")}) == 4
    # the separator keeps ("a", "bc") and ("ab", "c") apart
    assert source_fingerprint("a", "bc") != source_fingerprint("ab", "c")


def test_one_source_however_often_is_no_replay():
    detector = ReplayDetector()
    assert [detector.observe("abc", 100.0, A, now) for now in (0.0, 1.0, 50.0)] == [None] * 3
    assert len(detector) == 1


def test_each_extra_source_is_counted_once():
    detector = ReplayDetector(max_sources=1)
    assert detector.observe("abc", 100.0, A, 0.0) is None
    assert detector.observe("abc", 100.0, B, 1.0) == Suspicion("ba7816bf8f01", "b", 2)
    assert detector.observe("abc", 100.0, B, 2.0) is None  # the same replayer again
    assert detector.observe("abc", 100.0, A, 3.0) is None  # the owner again
    assert detector.observe("abc", 100.0, C, 4.0) == Suspicion("ba7816bf8f01", "b", 3)
    assert detector.observe("other", 100.0, B, 5.0) is None  # another token: its own sources


def test_max_sources_two_allows_one_change():
    detector = ReplayDetector(max_sources=2)
    assert detector.observe("abc", 100.0, A, 0.0) is None
    assert detector.observe("abc", 100.0, B, 1.0) is None
    assert detector.observe("abc", 100.0, C, 2.0) == Suspicion("ba7816bf8f01", "b", 3)


def test_expired_tokens_are_forgotten_and_not_tracked():
    detector = ReplayDetector()
    detector.observe("abc", 10.0, A, 0.0)
    assert detector.observe("abc", 10.0, B, 10.0) is None  # expired at 10: pruned, ignored
    assert len(detector) == 0
    detector.observe("t1", 20.0, A, 11.0)
    detector.observe("t2", 30.0, A, 11.0)
    assert detector.prune(25.0) == 1 and len(detector) == 1
    assert detector.observe("t2", 30.0, B, 26.0) == Suspicion(
        hashlib.sha256(b"t2").hexdigest()[:12], "c", 2
    )


def test_the_soonest_expiring_token_is_evicted_at_the_cap():
    detector = ReplayDetector(max_tokens=2)
    detector.observe("t1", 100.0, A, 0.0)
    detector.observe("t2", 50.0, A, 0.0)
    detector.observe("abc", 200.0, A, 0.0)  # full: t2 (exp 50) goes
    assert len(detector) == 2
    assert detector.observe("t2", 50.0, B, 1.0) is None  # forgotten: tracked anew (t1 goes)
    assert detector.observe("abc", 200.0, B, 1.0) is not None
    assert detector.observe("t1", 100.0, B, 1.0) is None  # evicted by t2's return


def test_sources_per_token_are_capped():
    detector = ReplayDetector(max_sources=1)
    found = [
        detector.observe("abc", 100.0, source_fingerprint(f"127.0.0.{i}", "x"), float(i))
        for i in range(SOURCES_PER_TOKEN + 5)
    ]
    assert found[0] is None
    assert [s.sources for s in found[1:SOURCES_PER_TOKEN] if s] == list(
        range(2, SOURCES_PER_TOKEN + 1)
    )
    assert found[SOURCES_PER_TOKEN:] == [None] * 5  # counted at most 15 times per token


@pytest.mark.parametrize("kwargs", [{"max_sources": 0}, {"max_sources": 16}, {"max_tokens": 0}])
def test_detector_bounds(kwargs):
    with pytest.raises(ValueError):
        ReplayDetector(**kwargs)


def test_replay_settings_defaults_and_values():
    config = GatewayConfig()
    assert (config.replay_max_sources, config.replay_max_tracked_tokens) == (1, 100_000)
    assert config.replay_source_header is None
    config = config_from_dict(
        {
            "replay_max_sources": 2,
            "replay_max_tracked_tokens": 10,
            "replay_source_header": "X-Device-Id",
        }
    )
    assert (config.replay_max_sources, config.replay_max_tracked_tokens) == (2, 10)
    assert config.replay_source_header == "X-Device-Id"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("replay_max_sources", 0, "between 1 and 15"),
        ("replay_max_sources", 16, "between 1 and 15"),
        ("replay_max_sources", True, "between 1 and 15"),
        ("replay_max_tracked_tokens", 0, "at least 1"),
        ("replay_source_header", "X Device", "header name"),
        ("replay_source_header", "X-Device\n", "header name"),
        ("replay_source_header", "", "header name"),
    ],
)
def test_bad_replay_settings_name_the_field(key, value, message):
    with pytest.raises(InputError, match=message) as raised:
        config_from_dict({key: value}, "gw.yaml")
    assert raised.value.exit_code == 2 and key in str(raised.value)


def _request(address: str, agent: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/resource",
        "headers": [(b"user-agent", agent.encode())],
        "client": (address, 40000),
    }
    return Request(scope)


def _counted(registry: CollectorRegistry) -> float:
    name = "gateway_token_replay_suspected_total"
    return sum(registry.get_sample_value(name, {"token_bucket": b}) or 0.0 for b in BUCKETS)


@pytest.mark.parametrize(
    ("claims", "counted"),
    [
        ({"jti": "abc", "exp": 4e9}, 1.0),
        ({"exp": 4e9}, 0.0),  # no jti: nothing to track
        ({"jti": "", "exp": 4e9}, 0.0),
        ({"jti": "abc"}, 0.0),  # an opaque token's introspection without exp
        ({"jti": "abc", "exp": float("nan")}, 0.0),
        ({"jti": "abc", "exp": True}, 0.0),
    ],
)
def test_the_gateway_tracks_only_tokens_with_a_jti_and_an_exp(claims, counted):
    registry = CollectorRegistry()
    gateway = create_app(GatewayConfig(), admin_secret="s", registry=registry).state.gateway
    for address, agent in (("127.0.0.1", "a"), ("127.0.0.2", "b")):
        _watch_replay(gateway, _request(address, agent), Outcome(VALID, "", claims))
    assert _counted(registry) == counted
