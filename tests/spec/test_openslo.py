"""OpenSLO v1 import, the v1 writer and round trips through the loader."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tokenslo.cli import main
from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI, LatencySLI
from tokenslo.errors import InputError
from tokenslo.spec.loader import load_paths, load_text
from tokenslo.spec.openslo import import_openslo
from tokenslo.spec.writer import dump_v1

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "openslo-idp.yaml"


def _plain(slos: list[SLO]) -> list[SLO]:
    return [dataclasses.replace(s, source=None) for s in slos]


def test_example_imports_ratio_ref_inline_and_threshold():
    slos = {s.name: s for s in import_openslo(EXAMPLE)}
    assert set(slos) == {
        "token-issuance-availability",
        "jwks-availability",
        "token-issuance-latency",
    }
    ref = slos["token-issuance-availability"]  # indicatorRef to a kind: SLI
    assert ref.objective == 99.9 and ref.window == 30 * 86400 and ref.service == "idp"
    assert ref.sli == EventsSLI(
        total="sum(rate(idp_token_requests_total[{{window}}]))",
        bad='sum(rate(idp_token_requests_total{code=~"5.."}[{{window}}]))',
    )
    assert ref.labels == {"team": "identity"}
    inline = slos["jwks-availability"]  # counter selectors without a window get rate()
    assert inline.sli == EventsSLI(
        total="sum(rate(idp_jwks_requests_total[{{window}}]))",
        good='sum(rate(idp_jwks_requests_total{code=~"2.."}[{{window}}]))',
    )
    assert inline.window == 28 * 86400 and inline.objective == 99.9
    latency = slos["token-issuance-latency"]
    assert latency.sli == LatencySLI(
        metric="idp_token_request_duration_seconds",
        threshold=0.3,
        selector='grant_type="client_credentials"',
    )
    assert latency.objective == 95


def test_import_command_writes_atomically_and_output_validates(tmp_path, capsys):
    out = tmp_path / "imported.yaml"
    assert main(["slo", "import-openslo", str(EXAMPLE), "-o", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["imported.yaml"]  # no temp file left
    assert out.read_text().startswith("# Imported from")
    assert main(["slo", "validate", str(out)]) == 0
    assert "OK: 3 SLOs in 1 file" in capsys.readouterr().out
    assert _plain(load_paths([out])) == _plain(import_openslo(EXAMPLE))


def test_import_to_stdout(capsys):
    assert main(["slo", "import-openslo", str(EXAMPLE)]) == 0
    slos, _ = load_text(capsys.readouterr().out)
    assert [s.name for s in slos] == [s.name for s in import_openslo(EXAMPLE)]


RICH = [
    SLO(
        name="a",
        service="idp",
        objective=99.95,
        window=28 * 86400,
        sli=EventsSLI(
            total="sum(rate(x[{{window}}]))", good='sum(rate(x{code!~"5.."}[{{window}}]))'
        ),
        description="quotes ' and \" and: colons",
        labels={"team": "identity", "tier": "1"},
        alerting=Alerting(
            page=True,
            ticket=False,
            labels={"severity_override": "x"},
            annotations={"runbook_url": "https://r.example/a#b"},
            policy=(
                BurnWindow("page", 0.05, 6 * 3600, 1800, 360),
                BurnWindow("ticket", 0.1, 3 * 86400, 6 * 3600, 90),
            ),
        ),
        loadtest=("token:client_credentials", "jwks"),
    ),
    SLO(
        name="b",
        service="gateway",
        objective=95,
        window=7 * 86400,
        sli=LatencySLI(metric="h_seconds", threshold=0.05),
    ),
    SLO(
        name="c",
        service="idp",
        objective=90.5,
        window=3600,
        sli=EventsSLI(total="sum(rate(y[{{window}}]))", bad="sum(rate(y_err[{{window}}]))"),
    ),
]


def test_round_trip_dump_then_load_is_identity():
    slos, findings = load_text(dump_v1(RICH), "rt.yaml")
    assert findings == []
    assert sorted(_plain(slos), key=lambda s: s.name) == RICH


def test_round_trip_of_starter_slos():
    original = _plain(load_paths([REPO / "slo"]))
    again, _ = load_text(dump_v1(original), "rt.yaml")
    assert sorted(_plain(again), key=lambda s: s.name) == sorted(original, key=lambda s: s.name)


OBJ = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: s
spec:
  service: idp
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: i}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec: {query: sum(ok_total)}
        total:
          metricSource:
            type: Prometheus
            spec: {query: sum(all_total)}
  timeWindow:
    - duration: 30d
      isRolling: true
  objectives:
    - target: 0.99
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("openslo/v1", "openslo/v1alpha", 1, "apiVersion", "unsupported apiVersion"),
        ("kind: SLO", "kind: Widget", 2, "kind", "unsupported kind"),
        (
            "budgetingMethod: Occurrences",
            "budgetingMethod: Timeslices",
            7,
            "spec.budgetingMethod",
            "Occurrences",
        ),
        (
            "type: Prometheus\n            spec: {query: sum(ok",
            "type: Datadog\n            spec: {query: sum(ok",
            15,
            "spec.indicator.spec.ratioMetric.good.metricSource.type",
            "only Prometheus",
        ),
        ("isRolling: true", "isRolling: false", 23, "spec.timeWindow[0].isRolling", "rolling"),
        ("duration: 30d", "duration: 1M", 22, "spec.timeWindow[0].duration", "not a duration"),
        ("target: 0.99", "target: 99", 25, "spec.objectives[0].target", "between 0 and 1"),
        (
            "    - target: 0.99\n",
            "    - target: 0.99\n    - target: 0.9\n",
            24,
            "spec.objectives",
            "exactly one",
        ),
        (
            "query: sum(ok_total)",
            "query: sum(ok_total offset 5m)",
            16,
            "spec.indicator.spec.ratioMetric.good.metricSource.spec.query",
            "no {{window}}",
        ),
        (
            "query: sum(ok_total)",
            "query: sum(ok_total",
            16,
            "spec.indicator.spec.ratioMetric.good.metricSource.spec.query",
            "invalid PromQL",
        ),
        (
            "        good:",
            "        bad:\n          metricSource: {type: Prometheus, spec: "
            "{query: x}}\n        good:",
            11,
            "spec.indicator.spec.ratioMetric",
            "exactly one of good / bad",
        ),
        ("  service: idp\n", "", 5, "spec.service", "missing required field"),
    ],
)
def test_openslo_errors_name_the_field(tmp_path, capsys, old, new, line, field, words):
    assert old in OBJ
    path = tmp_path / "o.yaml"
    path.write_text(OBJ.replace(old, new, 1))
    assert main(["slo", "import-openslo", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"tokenslo: {path}:{line}:"), err
    assert f": {field}: " in err and words in err
    assert "Traceback" not in err


THRESHOLD = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: lat}
spec:
  thresholdMetric:
    metricSource:
      type: Prometheus
      spec: {query: 'h_seconds_bucket{route="/token"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: Token Latency}
spec:
  service: IdP
  indicatorRef: lat
  timeWindow: [{duration: 7d, isRolling: true}]
  objectives: [{op: lte, value: 0.25, targetPercent: 99}]
"""


def test_threshold_metric_maps_to_latency_sli(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(THRESHOLD)
    (slo,) = import_openslo(path)
    assert slo.name == "token-latency" and slo.service == "idp"
    assert slo.sli == LatencySLI(metric="h_seconds", threshold=0.25, selector='route="/token"')
    assert slo.objective == 99 and slo.window == 7 * 86400


def test_a_query_bucket_equal_to_the_objective_is_kept(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(THRESHOLD.replace('route="/token"}', 'route="/token", le="0.25"}'))
    (slo,) = import_openslo(path)
    assert slo.sli == LatencySLI(metric="h_seconds", threshold=0.25, selector='route="/token"')


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("op: lte", "op: gte", "spec.objectives[0].op", "only lte"),
        ("indicatorRef: lat", "indicatorRef: nope", "spec.indicatorRef", "found: lat"),
        (  # the query's bucket is not the objective's threshold: refused, never replaced
            'route="/token"}',
            'route="/token", le="0.3"}',
            "spec.thresholdMetric.metricSource.spec.query",
            "le='0.3' but the objective's value is 0.25",
        ),
        (
            "query: 'h_seconds_bucket{route=\"/token\"}'",
            "query: 'histogram_quantile(0.9, rate(h_seconds_bucket[5m]))'",
            "spec.thresholdMetric.metricSource.spec.query",
            "histogram",
        ),
    ],
)
def test_threshold_errors(tmp_path, old, new, field, words):
    assert old in THRESHOLD
    path = tmp_path / "t.yaml"
    path.write_text(THRESHOLD.replace(old, new))
    with pytest.raises(InputError) as info:
        import_openslo(path)
    assert info.value.field == field and words in info.value.message
    assert info.value.file == str(path) and info.value.line is not None


def test_missing_openslo_file(capsys, tmp_path):
    assert main(["slo", "import-openslo", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read" in capsys.readouterr().err
