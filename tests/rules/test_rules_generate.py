"""Table-driven checks of the generated rule groups, spelled out so a change in a
name, label, window or threshold shows up as a readable diff."""

from __future__ import annotations

import math
import re

import pytest
import yaml
from rules_fixtures import RUNBOOK, events_bad, events_good, latency

from tokenslo.core.burnrate import DAY, HOUR
from tokenslo.core.model import SLO, Alerting, BurnWindow, Source
from tokenslo.errors import EXIT_USAGE, InputError
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, render_rules

THRESHOLD = re.compile(r"> ([0-9.e-]+) and")


def rules_of(slo: SLO, time_scale: float = 1.0) -> list[dict]:
    (group,) = generate_rule_groups([slo], time_scale)
    return group["rules"]


def burn_alerts(slo: SLO, time_scale: float = 1.0) -> list[dict]:
    return [r for r in rules_of(slo, time_scale) if r.get("alert") == c.BURN_ALERT]


def by_record(slo: SLO) -> dict[str, dict]:
    return {r["record"]: r for r in rules_of(slo) if "record" in r}


# --- alert conditions: windows, factors, thresholds, for --------------------------------------

# (severity, long, short, burn_factor label, threshold, for)
POLICY_30D_999 = [
    ("page", "1h", "5m", "14.4", 0.0144, None),
    ("page", "6h", "30m", "6", 0.006, None),
    ("ticket", "1d", "2h", "3", 0.003, "24m"),
    ("ticket", "3d", "6h", "1", 0.001, "1h12m"),
]
POLICY_28D_99 = [
    ("page", "1h", "5m", "13.44", 0.1344, None),
    ("page", "6h", "30m", "5.6", 0.056, None),
    ("ticket", "1d", "2h", "2.8", 0.028, "24m"),
    ("ticket", "3d", "6h", "0.9333", 0.0093333333333, "1h12m"),
]


@pytest.mark.parametrize(
    ("slo", "expected"),
    [(events_bad(99.9, 30), POLICY_30D_999), (latency(99.0, 28), POLICY_28D_99)],
    ids=["events-30d", "latency-28d"],
)
def test_burn_alerts_follow_the_workbook_policy(slo, expected):
    got = [
        (
            a["labels"]["severity"],
            a["labels"]["long_window"],
            a["labels"]["short_window"],
            a["labels"]["burn_factor"],
            float(THRESHOLD.search(a["expr"]).group(1)),
            a.get("for"),  # none on a page
        )
        for a in burn_alerts(slo)
    ]
    assert [g[:4] + g[5:] for g in got] == [e[:4] + e[5:] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[4] == pytest.approx(e[4], rel=1e-9)


def test_burn_alert_expression_and_labels_in_full():
    page = burn_alerts(events_bad())[0]
    sel = '{slo="token-issuance-availability", service="idp"}'
    assert page["alert"] == "SLOErrorBudgetBurn"
    assert page["expr"] == (
        f"tokenslo:slo_error_ratio:1h{sel} > 0.0144 and tokenslo:slo_error_ratio:5m{sel} > 0.0144"
    )
    assert page["labels"] == {
        "severity": "page",
        "slo": "token-issuance-availability",
        "service": "idp",
        "long_window": "1h",
        "short_window": "5m",
        "burn_factor": "14.4",
    }
    assert page["annotations"]["runbook_url"] == RUNBOOK
    description = page["annotations"]["description"]
    assert "2% of the 30d error budget burns in 1h at this rate" in description


def test_alerting_labels_and_annotations_are_carried_but_cannot_override_ours():
    slo = events_good()  # alerting.labels = {team: edge}
    for alert in burn_alerts(slo):
        assert alert["labels"]["team"] == "edge"
    with pytest.raises(InputError) as err:
        generate_rule_groups([events_good(alerting=Alerting(labels={"severity": "low"}))])
    assert err.value.field == "alerting.labels.severity"
    assert err.value.exit_code == EXIT_USAGE


def test_no_data_alert_watches_the_5m_event_and_error_counts():
    (no_data,) = [r for r in rules_of(events_bad()) if r.get("alert") == c.NO_DATA_ALERT]
    assert no_data["expr"] == (
        'absent(tokenslo:slo_events:5m{slo="token-issuance-availability", service="idp"})'
        ' or absent(tokenslo:slo_errors:5m{slo="token-issuance-availability", service="idp"})'
    )
    assert no_data["for"] == "10m"
    assert no_data["labels"]["severity"] == "ticket"


# --- recording rules ----------------------------------------------------------------------------

EXPECTED_RECORDS_30D = [
    *(f"tokenslo:slo_{kind}:{w}" for w in ("5m", "30m", "1h", "2h", "6h")
      for kind in ("errors", "events", "error_ratio")),
    "tokenslo:slo_error_ratio:1d",
    "tokenslo:slo_error_ratio:3d",
    "tokenslo:slo_error_ratio:30d",
    "tokenslo:slo_objective:ratio",
    "tokenslo:slo_error_budget_remaining:ratio",
]


def test_recording_rules_in_order_then_alerts():
    rules = rules_of(events_bad())
    records = [r["record"] for r in rules if "record" in r]
    assert records == EXPECTED_RECORDS_30D
    first_alert = next(i for i, r in enumerate(rules) if "alert" in r)
    assert all("record" in r for r in rules[:first_alert])  # alerts see this round's values
    assert [r["alert"] for r in rules[first_alert:]] == [c.BURN_ALERT] * 4 + [c.NO_DATA_ALERT]


@pytest.mark.parametrize(
    ("slo", "record", "expr"),
    [
        (events_bad(), "tokenslo:slo_errors:5m",
         '(sum(increase(idp_token_requests_total{code=~"5.."}[5m])) or vector(0))'),
        (events_bad(), "tokenslo:slo_events:1h", "sum(increase(idp_token_requests_total[1h]))"),
        (events_good(), "tokenslo:slo_errors:30m",
         "sum(increase(gateway_token_validations_total[30m])) - "
         '(sum(increase(gateway_token_validations_total{result="valid"}[30m])) or vector(0))'),
        (latency(), "tokenslo:slo_errors:5m",
         'sum(increase(idp_token_request_duration_seconds_count{grant_type="client_credentials"}'
         "[5m])) - sum(increase(idp_token_request_duration_seconds_bucket"
         '{grant_type="client_credentials", le="0.25"}[5m]))'),
        (events_bad(), "tokenslo:slo_error_ratio:6h",
         'tokenslo:slo_errors:6h{slo="token-issuance-availability", service="idp"}'
         ' / tokenslo:slo_events:6h{slo="token-issuance-availability", service="idp"}'),
        (events_bad(), "tokenslo:slo_error_ratio:3d",
         'sum_over_time(tokenslo:slo_errors:5m{slo="token-issuance-availability", service="idp"}'
         "[3d]) / sum_over_time(tokenslo:slo_events:5m"
         '{slo="token-issuance-availability", service="idp"}[3d])'),
        (latency(), "tokenslo:slo_error_ratio:28d",
         'sum_over_time(tokenslo:slo_errors:5m{slo="token-issuance-latency", service="idp"}[28d])'
         ' / sum_over_time(tokenslo:slo_events:5m{slo="token-issuance-latency", service="idp"}'
         "[28d])"),
        (events_bad(), "tokenslo:slo_objective:ratio", "vector(0.999)"),
        (latency(), "tokenslo:slo_error_budget_remaining:ratio",
         '1 - tokenslo:slo_error_ratio:28d{slo="token-issuance-latency", service="idp"} / 0.01'),
    ],
)
def test_recording_rule_expressions(slo, record, expr):
    assert by_record(slo)[record]["expr"] == expr


def test_ratios_are_ratios_of_counts_never_averages_of_ratios():
    for rule in rules_of(events_bad()):
        assert "avg_over_time" not in rule["expr"]
        if rule.get("record", "").startswith("tokenslo:slo_error_ratio:"):
            window = rule["record"].rsplit(":", 1)[1]
            short = window in {"5m", "30m", "1h", "2h", "6h"}
            assert ("sum_over_time" in rule["expr"]) is not short, rule["record"]


def test_recorded_series_carry_slo_service_and_slo_labels():
    for rule in by_record(events_bad()).values():
        assert rule["labels"] == {
            "slo": "token-issuance-availability", "service": "idp", "team": "identity",
        }


def test_custom_policy_and_disabled_pages_change_the_windows():
    custom = (BurnWindow("page", 0.5, 10 * 60, 60, for_=0), BurnWindow("ticket", 0.1, DAY, HOUR))
    slo = events_bad(alerting=Alerting(page=False, policy=custom))
    records = set(by_record(slo))
    assert "tokenslo:slo_error_ratio:10m" not in records  # the page is off
    assert {"tokenslo:slo_error_ratio:1h", "tokenslo:slo_error_ratio:1d"} <= records
    (ticket,) = burn_alerts(slo)
    assert (ticket["labels"]["long_window"], ticket["labels"]["short_window"]) == ("1d", "1h")
    assert "for" not in ticket  # for_ = 0: fire at once
    both = burn_alerts(events_bad(alerting=Alerting(policy=custom)))
    assert [(a["labels"]["long_window"], a["labels"]["burn_factor"]) for a in both] == [
        ("10m", "2160"), ("1d", "3"),
    ]


# --- time scale ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "interval", "base", "ticket_for", "period"),
    [
        (1, "30s", "5m", "24m", "30d"),
        (7, "4s286ms", "42s857ms", "3m25s714ms", "4d6h51m25s714ms"),
        (60, "1s", "5s", "24s", "12h"),  # interval floored at 1s
        (0.5, "1m", "10m", "48m", "60d"),
    ],
)
def test_time_scale_divides_every_duration_but_keeps_names(
    scale, interval, base, ticket_for, period
):
    slo = events_bad()
    (group,) = generate_rule_groups([slo], scale)
    assert group["interval"] == interval
    records = {r["record"]: r for r in group["rules"] if "record" in r}
    assert list(records) == EXPECTED_RECORDS_30D
    assert f"[{base}]" in records["tokenslo:slo_errors:5m"]["expr"]
    assert f"[{period}]" in records["tokenslo:slo_error_ratio:30d"]["expr"]
    page, _, ticket, _ = burn_alerts(slo, scale)
    assert "for" not in page and page["labels"]["long_window"] == "1h"
    assert ticket["for"] == ticket_for and ticket["labels"]["long_window"] == "1d"


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, True, "2"])
def test_bad_time_scale_is_an_input_error(bad):
    with pytest.raises(InputError) as err:
        generate_rule_groups([events_bad()], bad)
    assert err.value.field == "--time-scale"


def test_time_scale_is_announced_in_the_output():
    assert "compressed-time simulation" in render_rules([events_bad()], time_scale=60)
    assert "compressed-time" not in render_rules([events_bad()])


# --- validation and rendering -------------------------------------------------------------------


def test_duplicate_slo_names_name_the_file_and_line():
    twin = events_bad(source=Source("slo/idp.yaml", 40))
    with pytest.raises(InputError) as err:
        generate_rule_groups([events_bad(), twin])
    assert str(err.value).startswith("slo/idp.yaml:40: name: SLO name")


def test_reserved_slo_label_is_rejected():
    with pytest.raises(InputError) as err:
        generate_rule_groups([events_bad(labels={"slo": "x"})])
    assert err.value.field == "labels.slo"


def test_no_slos_is_an_input_error():
    with pytest.raises(InputError):
        render_rules([])


def test_prometheus_format_has_the_header_and_parses_back():
    text = render_rules([events_bad(), latency(name="lat")])
    assert text.splitlines()[0] == "# generated by tokenslo, do not edit"
    doc = yaml.safe_load(text)
    assert [g["name"] for g in doc["groups"]] == [
        "tokenslo-slo-token-issuance-availability", "tokenslo-slo-lat",
    ]


def test_operator_format_is_one_prometheusrule_per_service_with_the_same_groups():
    slos = [events_bad(), events_good(), latency()]
    text = render_rules(slos, fmt="operator")
    assert text.startswith("# generated by tokenslo, do not edit\n")
    docs = list(yaml.safe_load_all(text))
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("monitoring.coreos.com/v1", "PrometheusRule", "tokenslo-idp"),
        ("monitoring.coreos.com/v1", "PrometheusRule", "tokenslo-gateway"),
    ]
    assert docs[0]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tokenslo"}
    groups = generate_rule_groups(slos)
    assert docs[0]["spec"]["groups"] == [groups[0], groups[2]]
    assert docs[1]["spec"]["groups"] == [groups[1]]


def test_unknown_format_is_an_input_error():
    with pytest.raises(InputError) as err:
        render_rules([events_bad()], fmt="thanos")
    assert err.value.field == "--format"
