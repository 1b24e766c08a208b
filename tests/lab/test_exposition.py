"""The metrics helpers every lab service and the fault proxy share (``lab.exposition``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tokenslo.lab.exposition import (
    metrics_response,
    zeroed_counter,
    zeroed_counter_of_pairs,
    zeroed_grid,
)


def test_a_zeroed_counter_exports_every_known_series_at_zero_before_any_increment() -> None:
    registry = CollectorRegistry()
    counter = zeroed_counter("demo_events", "Demo events.", "kind", ("a", "b"), registry)
    assert registry.get_sample_value("demo_events_total", {"kind": "a"}) == 0.0
    assert registry.get_sample_value("demo_events_total", {"kind": "b"}) == 0.0
    counter.labels(kind="b").inc()
    assert registry.get_sample_value("demo_events_total", {"kind": "b"}) == 1.0


def test_a_zeroed_counter_of_pairs_creates_only_the_combinations_that_can_occur() -> None:
    registry = CollectorRegistry()
    pairs = [("allow", "ok"), ("deny", "why")]
    counter = zeroed_counter_of_pairs("demo", "Demo.", ("outcome", "reason"), pairs, registry)
    for outcome, reason in pairs:
        labels = {"outcome": outcome, "reason": reason}
        assert registry.get_sample_value("demo_total", labels) == 0.0
    assert registry.get_sample_value("demo_total", {"outcome": "allow", "reason": "why"}) is None
    counter.labels(outcome="deny", reason="why").inc()
    assert registry.get_sample_value("demo_total", {"outcome": "deny", "reason": "why"}) == 1.0


def test_the_metrics_response_is_the_registry_in_the_text_format() -> None:
    registry = CollectorRegistry()
    zeroed_counter("demo_events", "Demo events.", "kind", ("a",), registry)
    response = metrics_response(registry)
    assert response.media_type is not None and response.media_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(bytes(response.body).decode())}
    assert [s.labels for s in families["demo_events"].samples if s.name == "demo_events_total"] == [
        {"kind": "a"}
    ]


def test_a_zeroed_grid_exports_every_combination_at_zero() -> None:
    registry = CollectorRegistry()
    zeroed_grid("demo_pairs", "Demo pairs.", {"a": ("x", "y"), "b": ("1", "2", "3")}, registry)
    for a in ("x", "y"):
        for b in ("1", "2", "3"):
            assert registry.get_sample_value("demo_pairs_total", {"a": a, "b": b}) == 0.0
    assert registry.get_sample_value("demo_pairs_total", {"a": "z", "b": "1"}) is None
