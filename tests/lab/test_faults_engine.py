"""Fault engine state: validation, matching, probability, cap and expiry (injected clock)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from tokenslo.lab.faults import FaultEngine, FaultError


class FakeClock:
    def __init__(self, start: float = 1_000_000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def engine(clock: FakeClock, registry: CollectorRegistry) -> FaultEngine:
    return FaultEngine("idp", registry=registry, max_expiry=600, max_faults=3, clock=clock)


def changes(registry: CollectorRegistry, action: str) -> float:
    value = registry.get_sample_value(
        "tokenslo_fault_changes_total", {"service": "idp", "action": action}
    )
    assert value is not None
    return value


def active(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("tokenslo_faults_active", {"service": "idp"})


STATUS_503 = {"path": "/jwks", "effect": "status", "status": 503, "expires_in": 30}


def test_fault_expires_without_anyone_deleting_it(engine, clock, registry):
    fault = engine.add_fault(STATUS_503)
    assert fault.expires_at == clock.t + 30
    assert engine.match("GET", "/jwks") == fault
    clock.advance(29.9)
    assert engine.match("GET", "/jwks") == fault
    assert active(registry) == 1
    clock.advance(0.2)
    assert engine.match("GET", "/jwks") is None
    assert engine.snapshot()["faults"] == []
    assert changes(registry, "expire") == 1
    assert active(registry) == 0


def test_sweep_counts_expired_faults_and_clock(engine, clock, registry):
    engine.add_fault(STATUS_503)
    engine.add_fault({**STATUS_503, "expires_in": 100})
    engine.set_clock({"offset_seconds": -120, "expires_in": 40})
    assert active(registry) == 3
    clock.advance(50)
    assert engine.sweep() == 2  # the 30 s fault and the 40 s clock offset
    assert engine.sweep() == 0
    assert active(registry) == 1
    assert changes(registry, "expire") == 1
    assert changes(registry, "clock_clear") == 1


def test_clock_offset_applies_until_expiry(engine, clock):
    assert engine.now() == clock.t
    engine.set_clock({"offset_seconds": -120, "expires_in": 60})
    assert engine.now() == clock.t - 120
    assert engine.snapshot()["clock"] == {"offset_seconds": -120, "expires_at": clock.t + 60}
    clock.advance(61)
    assert engine.now() == clock.t
    assert engine.snapshot()["clock"] is None


def test_clear_removes_faults_and_clock(engine, registry):
    engine.add_fault(STATUS_503)
    engine.set_clock({"offset_seconds": 300, "expires_in": 60})
    assert engine.clear() == 2
    assert engine.snapshot() == {"faults": [], "clock": None}
    assert changes(registry, "clear") == 1
    assert changes(registry, "add") == 1
    assert changes(registry, "clock_set") == 1


def test_remove_one_fault(engine, registry):
    keep = engine.add_fault(STATUS_503)
    gone = engine.add_fault({"path_prefix": "/token", "effect": "drop", "expires_in": 30})
    assert engine.remove_fault(gone.id) is True
    assert engine.remove_fault(gone.id) is False
    assert [f.id for f in engine.active_faults()] == [keep.id]
    assert changes(registry, "remove") == 1


def test_cap_on_active_faults(engine, clock):
    for _ in range(3):
        engine.add_fault(STATUS_503)
    with pytest.raises(FaultError, match="too many active faults") as info:
        engine.add_fault(STATUS_503)
    assert info.value.http_status == 409
    clock.advance(31)  # all expire, so there is room again
    engine.add_fault(STATUS_503)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "/x", "effect": "status", "status": 503}, "expires_in"),
        ({**STATUS_503, "expires_in": 0}, "expires_in"),
        ({**STATUS_503, "expires_in": -5}, "expires_in"),
        ({**STATUS_503, "expires_in": 601}, "expires_in"),
        ({**STATUS_503, "expires_in": True}, "expires_in"),
        ({**STATUS_503, "expires_in": "30"}, "expires_in"),
        ({**STATUS_503, "effect": "explode"}, "effect"),
        ({**STATUS_503, "status": 200}, "status"),
        ({**STATUS_503, "status": None}, "status"),
        ({"path": "/x", "effect": "delay", "expires_in": 5}, "delay_seconds"),
        ({"path": "/x", "effect": "delay", "delay_seconds": 0, "expires_in": 5}, "delay_seconds"),
        ({"path": "/x", "effect": "drop", "status": 503, "expires_in": 5}, "status"),
        ({**STATUS_503, "probability": 0}, "probability"),
        ({**STATUS_503, "probability": 1.5}, "probability"),
        ({**STATUS_503, "path": "jwks"}, "path"),
        ({**STATUS_503, "path": "/admin/faults"}, "path"),
        ({"effect": "drop", "path_prefix": "jwks", "expires_in": 5}, "path_prefix"),
        ({"effect": "drop", "path_prefix": "/admin", "expires_in": 5}, "path_prefix"),
        ({"effect": "drop", "expires_in": 5}, "path"),  # neither path nor path_prefix
        ({**STATUS_503, "path_prefix": "/jwks"}, "path"),  # both
        ({**STATUS_503, "path": "/" + "a" * 2048}, "path"),
        ({**STATUS_503, "path": "/token\nfault add id=forged"}, "path"),
        ({**STATUS_503, "path": "/token?x=1"}, "path"),
        ({**STATUS_503, "path": ["/token"]}, "path"),
        ({**STATUS_503, "effect": ["status"]}, "effect"),
        ({**STATUS_503, "expires_in": 10**400}, "expires_in"),
        ({**STATUS_503, "status": 10**400}, "status"),
        ({**STATUS_503, "status": -(10**400)}, "status"),
        ({**STATUS_503, "probability": 10**400}, "probability"),
        (
            {"path": "/x", "effect": "delay", "delay_seconds": 10**400, "expires_in": 5},
            "delay_seconds",
        ),
        ({**STATUS_503, "expires_in": 1e300}, "expires_in"),
        ({**STATUS_503, "method": "FETCH"}, "method"),
        ({**STATUS_503, "colour": "red"}, "colour"),
    ],
)
def test_validation_names_the_field(engine, registry, body, field):
    with pytest.raises(FaultError) as info:
        engine.add_fault(body)
    assert str(info.value).startswith(f"{field}:")
    assert info.value.http_status == 400
    assert engine.active_faults() == []
    assert changes(registry, "add") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"offset_seconds": -120}, "expires_in"),
        ({"expires_in": 60}, "offset_seconds"),
        ({"offset_seconds": 1e12, "expires_in": 60}, "offset_seconds"),
        ({"offset_seconds": 5, "expires_in": 10_000}, "expires_in"),
        ({"offset_seconds": 10**400, "expires_in": 60}, "offset_seconds"),
        ({"offset_seconds": 5, "expires_in": 10**400}, "expires_in"),
    ],
)
def test_clock_validation(engine, body, field):
    with pytest.raises(FaultError, match=f"^{field}:"):
        engine.set_clock(body)
    assert engine.clock_state() is None


def test_exact_path_does_not_fault_the_paths_under_it(engine):
    """oidc-provider serves /token/introspection and /token/revocation beside /token: a
    token-endpoint outage must leave them alone (it faulted them while rules were prefixes)."""
    fault = engine.add_fault({**STATUS_503, "path": "/token"})
    assert (fault.match, fault.path, fault.path_prefix) == ("exact", "/token", None)
    assert engine.match("POST", "/token") == fault
    for other in ("/token/introspection", "/token/revocation", "/token/", "/tokens", "/"):
        assert engine.match("POST", other) is None, other


def test_prefix_rule_still_faults_every_path_under_it(engine):
    fault = engine.add_fault({"path_prefix": "/token", "effect": "drop", "expires_in": 30})
    assert (fault.match, fault.path_prefix) == ("prefix", "/token")
    assert engine.match("POST", "/token") == fault
    assert engine.match("POST", "/token/introspection") == fault


def test_listing_logs_and_metrics_say_which_kind_of_match(engine, registry, caplog):
    with caplog.at_level("INFO", logger="tokenslo.lab.faults"):
        engine.add_fault(STATUS_503)
        engine.add_fault({"path_prefix": "/token", "effect": "drop", "expires_in": 30})
    listed = {(f["match"], f["path"], f["path_prefix"]) for f in engine.snapshot()["faults"]}
    assert listed == {("exact", "/jwks", None), ("prefix", None, "/token")}
    assert "path=/jwks " in caplog.text and "path_prefix=/token " in caplog.text
    for kind in ("exact", "prefix"):
        labels = {"service": "idp", "match": kind}
        assert registry.get_sample_value("tokenslo_fault_rules_active", labels) == 1


def test_rejected_bodies_change_nothing_and_log_no_input(engine, registry, caplog):
    huge = "/" + "x" * 1_000_000
    with caplog.at_level("DEBUG", logger="tokenslo.lab.faults"), pytest.raises(FaultError) as info:
        engine.add_fault({**STATUS_503, "path": huge})
    assert len(str(info.value)) < 200  # the message does not echo a megabyte back
    assert caplog.text == ""
    assert active(registry) == 0 and changes(registry, "add") == 0


def test_matching_by_method_and_prefix(engine):
    fault = engine.add_fault(
        {"method": "post", "path_prefix": "/token", "effect": "hang", "expires_in": 30}
    )
    assert fault.method == "POST"
    assert engine.match("POST", "/token") == fault
    assert engine.match("POST", "/token/extra") == fault
    assert engine.match("GET", "/token") is None
    assert engine.match("POST", "/introspect") is None
    assert engine.match("POST", "/admin/faults") is None


def test_admin_paths_never_match_even_a_catch_all(engine):
    engine.add_fault({"path_prefix": "/", "effect": "drop", "expires_in": 30})
    assert engine.match("GET", "/jwks") is not None
    assert engine.match("GET", "/admin/faults") is None


def test_probability_rolls_per_request(clock, registry):
    rolls = iter([0.05, 0.5, 0.2, 0.29, 0.31])
    engine = FaultEngine("idp", registry=registry, clock=clock, rng=lambda: next(rolls))
    engine.add_fault({**STATUS_503, "probability": 0.3})
    hits = [engine.match("GET", "/jwks") is not None for _ in range(5)]
    assert hits == [True, False, True, True, False]


def test_probability_is_roughly_honoured_with_a_real_rng(registry):
    engine = FaultEngine("idp", registry=registry)
    engine.add_fault({**STATUS_503, "probability": 0.25})
    hits = sum(engine.match("GET", "/jwks") is not None for _ in range(4000))
    assert 800 < hits < 1200


def test_first_matching_fault_that_fires_wins(engine):
    first = engine.add_fault({**STATUS_503, "status": 500})
    second = engine.add_fault({**STATUS_503, "status": 502})
    assert engine.match("GET", "/jwks") == first
    engine.remove_fault(first.id)
    assert engine.match("GET", "/jwks") == second


def test_sweeper_thread_expires_faults_on_its_own(registry):
    engine = FaultEngine("idp", registry=registry)
    engine.add_fault({**STATUS_503, "expires_in": 0.2})
    engine.start_sweeper(interval=0.05)
    try:
        deadline = time.monotonic() + 3
        while changes(registry, "expire") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changes(registry, "expire") == 1
    finally:
        engine.stop_sweeper()
