"""Timeline assembly from synthetic fetched data (pure): ALERTS, notifications, chaos records."""

from __future__ import annotations

from tokenslo.gameday import timeline as tl

LABELS = {
    "alertname": "SLOErrorBudgetBurn",
    "slo": "token-issuance-availability",
    "severity": "page",
    "long_window": "1h",
    "short_window": "5m",
}


def series(state: str, times: list[float], **labels) -> dict:
    return {
        "metric": {**LABELS, "alertstate": state, **labels},
        "values": [[t, "1"] for t in times],
    }


MATRIX = [
    series("pending", [100, 101]),
    series("firing", [102, 103, 104, 105]),
    series("firing", [190, 191, 192], slo="jwks-availability"),  # still firing at the end
    series("firing", [150], slo="not-ours"),
]

RECORD = {
    "changes": [
        {"kind": "fault", "target": "idp", "ref": "f1", "set_at": 99.0, "cleared_at": 130.0,
         "expires_at": 159.0, "detail": {"effect": "status", "path": "/token"}},
        {"kind": "clock", "target": "idp", "ref": "clock", "set_at": 140.0, "cleared_at": None,
         "expires_at": 170.0, "detail": {"offset_seconds": 300.0}},
        {"kind": "rotation", "target": "idp", "ref": "k2", "set_at": 145.0, "cleared_at": 145.0,
         "expires_at": None, "detail": {"published": True}},
    ]
}  # fmt: skip


def kinds(events):
    return [(e.kind, e.at, e.slo) for e in events]


def test_alerts_become_pending_firing_and_resolved_for_our_slos_only():
    events = tl.alert_events(
        MATRIX, step=1.0, end=192.0, slos=["token-issuance-availability", "jwks-availability"]
    )
    assert sorted(kinds(events)) == sorted([
        (tl.ALERT_PENDING, 100.0, "token-issuance-availability"),
        (tl.ALERT_FIRING, 102.0, "token-issuance-availability"),
        (tl.ALERT_RESOLVED, 106.0, "token-issuance-availability"),  # last sample + step
        (tl.ALERT_FIRING, 190.0, "jwks-availability"),  # no resolution: firing at the end
    ])  # fmt: skip
    assert {e.detail for e in events} == {"1h/5m"}
    assert events[0].alert == "token-issuance-availability/page"


def test_a_gap_longer_than_a_step_is_two_firings():
    matrix = [series("firing", [10, 11, 20, 21])]
    events = tl.alert_events(matrix, 1.0, 100.0, ["token-issuance-availability"])
    assert [(e.kind, e.at) for e in events] == [
        (tl.ALERT_FIRING, 10.0), (tl.ALERT_RESOLVED, 12.0),
        (tl.ALERT_FIRING, 20.0), (tl.ALERT_RESOLVED, 22.0),
    ]  # fmt: skip


def test_deliveries_are_burn_alerts_since_the_start():
    notes = [
        {"received_at": 103.5, "status": "firing", "labels": LABELS},
        {"received_at": 107.0, "status": "resolved", "labels": LABELS},
        {"received_at": 104.0, "status": "firing", "labels": {**LABELS, "alertname": "Other"}},
        {"received_at": 50.0, "status": "firing", "labels": LABELS},  # an earlier game day
        {"received_at": "garbage", "status": "firing", "labels": LABELS},
    ]
    events = tl.delivery_events(notes, since=90.0)
    assert kinds(events) == [
        (tl.ALERT_DELIVERED, 103.5, "token-issuance-availability"),
        (tl.RESOLUTION_DELIVERED, 107.0, "token-issuance-availability"),
    ]


def test_chaos_records_become_fault_events_and_intervals():
    events = tl.fault_events("idp-outage", RECORD)
    assert [(e.kind, e.at, e.detail) for e in events] == [
        (tl.FAULT_INJECTED, 99.0, "idp /token status"),
        (tl.FAULT_CLEARED, 130.0, "idp /token status"),
        (tl.FAULT_INJECTED, 140.0, "idp clock +300s"),
        (tl.FAULT_CLEARED, 170.0, "idp clock +300s (expired)"),  # never cleared: its expiry
        (tl.KEY_ROTATED, 145.0, "idp signing key rotated (published)"),
    ]
    assert all(e.experiment == "idp-outage" for e in events)
    intervals = tl.fault_intervals(events, {"idp-outage": ("token-issuance-availability",)})
    assert [(i.start, i.end, i.label, i.slos) for i in intervals] == [
        (99.0, 130.0, "idp-outage: idp /token status", ("token-issuance-availability",)),
        (140.0, 170.0, "idp-outage: idp clock +300s", ("token-issuance-availability",)),
    ]


def test_an_injection_without_clearing_stays_open_in_the_report():
    events = [tl.Event(5.0, tl.FAULT_INJECTED, "x", detail="idp /jwks status")]
    (interval,) = tl.fault_intervals(events, {})
    assert interval.end is None and interval.slos == ()


def test_events_are_attributed_to_the_experiment_slot_that_holds_them():
    slots = tl.slots([("b", 150.0), ("a", 90.0)], end=300.0)
    assert [(s.experiment, s.start, s.end) for s in slots] == [
        ("a", 90.0, 150.0),
        ("b", 150.0, 300.0),
    ]
    raw = [
        tl.Event(111.0, tl.ALERT_RESOLVED, slo="s", severity="page"),
        tl.Event(80.0, tl.PHASE, detail="warm-up"),
        tl.Event(160.0, tl.ALERT_FIRING, slo="s", severity="page"),
        tl.Event(160.0, tl.FAULT_INJECTED, "b"),
        tl.Event(120.0, tl.FAULT_CLEARED, "b"),  # explicit attribution is kept
    ]
    built = tl.build(raw, slots)
    assert [(e.at, e.kind, e.experiment) for e in built] == [
        (80.0, tl.PHASE, ""),
        (111.0, tl.ALERT_RESOLVED, "a"),
        (120.0, tl.FAULT_CLEARED, "b"),
        (160.0, tl.FAULT_INJECTED, "b"),  # cause before effect at the same instant
        (160.0, tl.ALERT_FIRING, "b"),
    ]
    assert tl.of_experiment(built, "b", tl.ALERT_FIRING) == [built[-1]]
    doc = tl.to_json(built)
    assert doc[0]["time"].endswith("Z") and doc[0]["kind"] == tl.PHASE
