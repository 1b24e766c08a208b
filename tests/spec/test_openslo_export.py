"""OpenSLO export: the documents written, what cannot be exported, and export → import
giving back the same model (every SLO in slo/), with the rules checked by real promtool."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from spec_fixtures import RICH as RICH_SLOS

from tokenslo.cli import main
from tokenslo.core.model import SLO, Calendar, EventsSLI, LatencySLI, Timeslices
from tokenslo.prometheus.process import run_promtool
from tokenslo.rules.generate import generate_rule_groups, render_rules
from tokenslo.spec.loader import load_paths
from tokenslo.spec.openslo import import_openslo
from tokenslo.spec.openslo_export import dump_openslo
from tokenslo.spec.writer import dump_v1

REPO = Path(__file__).resolve().parents[2]
SLO_DIRS = [REPO / "slo", REPO / "slo" / "probe", REPO / "slo" / "real-idp"]
GOLDEN = REPO / "tests" / "golden" / "openslo" / "slo.openslo.yaml"


def _plain(slos: list[SLO]) -> list[SLO]:
    return sorted((dataclasses.replace(s, source=None) for s in slos), key=lambda s: s.name)


def _round_trip(slos: list[SLO], tmp_path: Path) -> list[SLO]:
    path = tmp_path / "exported.yaml"
    path.write_text(dump_openslo(slos))
    result = import_openslo(path)
    assert result.skipped == [] and result.ignored == []
    return result.slos


@pytest.mark.parametrize("directory", SLO_DIRS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repo_slo_survives_export_then_import(tmp_path, directory):
    original = load_paths([directory])
    assert original  # the directory holds SLOs
    assert _plain(_round_trip(original, tmp_path)) == _plain(original)


RICH = RICH_SLOS[0]
LATENCY = SLO(
    name="lat",
    service="gateway",
    objective=95,
    window=90 * 60,
    sli=LatencySLI(metric="h_seconds", threshold=0.05, selector='route="/api", method!="GET"'),
)


def test_the_exported_documents_are_plain_openslo(tmp_path):
    """The exact documents, written out by hand: what another OpenSLO tool reads."""
    docs = list(yaml.safe_load_all(dump_openslo([RICH, LATENCY])))
    source = {"metricSource": {"type": "Prometheus", "spec": {"query": "sum(rate(x[{{window}}]))"}}}
    good = {
        "metricSource": {
            "type": "Prometheus",
            "spec": {"query": 'sum(rate(x{code!~"5.."}[{{window}}]))'},
        }
    }
    assert docs[0] == {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {
            "name": "a",
            "labels": {"team": "identity", "tier": "1"},
            "annotations": {
                "tokenslo/alerting": '{"page":true,"ticket":false,'
                '"labels":{"severity_override":"x"},"annotations":{"runbook_url":"https://r.example/a#b"},"policy":['
                '{"severity":"page","budget_percent":5,"long_window":"6h",'
                '"short_window":"30m","for":"6m"},{"severity":"ticket","budget_percent":10,'
                '"long_window":"3d","short_window":"6h","for":"1m30s"}]}',
                "tokenslo/loadtest": '{"requests":["token:client_credentials","jwks"],'
                '"min_requests":5000}',
            },
        },
        "spec": {
            "description": "quotes ' and \" and: colons",
            "service": "idp",
            "indicator": {
                "metadata": {"name": "a"},
                "spec": {"ratioMetric": {"counter": True, "good": good, "total": source}},
            },
            "timeWindow": [{"duration": "28d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"targetPercent": 99.95}],
        },
    }
    query = 'h_seconds_bucket{route="/api", method!="GET"}'
    assert docs[1]["metadata"] == {"name": "lat"}
    assert docs[1]["spec"]["indicator"]["spec"] == {
        "thresholdMetric": {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}
    }
    assert docs[1]["spec"]["timeWindow"] == [{"duration": "90m", "isRolling": True}]
    assert docs[1]["spec"]["objectives"] == [{"op": "lte", "value": 0.05, "targetPercent": 95}]
    assert _plain(_round_trip([RICH, LATENCY], tmp_path)) == _plain([RICH, LATENCY])


def test_export_command_then_import_command_round_trip(tmp_path, capsys):
    src = tmp_path / "in.yaml"
    src.write_text(dump_v1([*RICH_SLOS, LATENCY]))
    exported, imported = tmp_path / "openslo.yaml", tmp_path / "back.yaml"
    assert main(["slo", "export-openslo", str(src), "-o", str(exported)]) == 0
    assert main(["slo", "import-openslo", str(exported), "-o", str(imported)]) == 0
    err = capsys.readouterr().err
    assert err == f"wrote 4 SLOs to {exported}\nwrote 4 SLOs to {imported}\n"
    assert _plain(load_paths([imported])) == _plain([*RICH_SLOS, LATENCY])


def test_export_of_slo_matches_the_golden():
    """Refresh with scripts/refresh-goldens after an intended change."""
    text = dump_openslo(load_paths([REPO / "slo"]))
    golden = GOLDEN.read_text()
    assert text == "".join(golden.splitlines(keepends=True)[1:])  # past the header comment


@pytest.mark.parametrize(
    ("slo", "field", "words"),
    [
        (dataclasses.replace(LATENCY, window=90), "window", "90s is not a whole number of minutes"),
        (dataclasses.replace(LATENCY, name="lat_p95"), "name", "'lat_p95' is not an OpenSLO name"),
    ],
)
def test_what_openslo_cannot_hold_is_an_error_and_nothing_is_written(
    tmp_path, capsys, slo, field, words
):
    src = tmp_path / "in.yaml"
    text = dump_v1([RICH, slo])
    src.write_text(text)
    out = tmp_path / "out.yaml"
    assert main(["slo", "export-openslo", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "- name: lat" in row)
    assert err.startswith(f"tokenslo: {src}:{line}: {field}: ") and words in err
    assert not out.exists()


def test_broken_tokenslo_annotations_are_invalid_input(tmp_path, capsys):
    text = dump_openslo([RICH]).replace('"severity":"page"', '"severity":"pager"')
    path = tmp_path / "o.yaml"
    path.write_text(text)
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "tokenslo/alerting" in row)
    assert err.startswith(f"tokenslo: {path}:{line}:")
    assert "metadata.annotations.tokenslo/alerting" in err and "pager" in err


IMPORTED = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://127.0.0.1:9090"}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: jwks-availability}
spec:
  service: idp
  indicator:
    metadata: {name: jwks}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            metricSourceRef: prom
            spec: {query: 'sum by (code) (idp_jwks_requests_total{code=~"5.."})'}
        total: {metricSource: {metricSourceRef: prom, spec: {query: idp_jwks_requests_total}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: token-latency}
spec:
  service: idp
  indicator:
    metadata: {name: lat}
    spec:
      thresholdMetric:
        metricSource:
          metricSourceRef: prom
          spec: {query: 'idp_token_request_duration_seconds_bucket{le="0.3"}'}
  timeWindow: [{duration: 2w, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{op: lte, value: 0.3, targetPercent: 95}]
"""


@pytest.mark.prometheus
def test_imported_and_round_tripped_slos_give_rules_promtool_accepts(tmp_path):
    """The imported queries are real PromQL: promtool parses every generated rule."""
    path = tmp_path / "o.yaml"
    path.write_text(IMPORTED)
    imported = import_openslo(path).slos
    round_tripped = _round_trip([s for d in SLO_DIRS for s in load_paths([d])], tmp_path)
    for name, slos in (("imported", imported), ("round-tripped", round_tripped)):
        rules = tmp_path / f"{name}.rules.yml"
        rules.write_text(render_rules(slos))
        result = run_promtool("check", "rules", str(rules), timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        count = sum(len(g["rules"]) for g in generate_rule_groups(slos))
        assert f"SUCCESS: {count} rules found" in result.stdout
    assert [s.sli for s in imported] == [
        EventsSLI(
            total="sum(rate(idp_jwks_requests_total[{{window}}]))",
            bad='sum(rate(idp_jwks_requests_total{code=~"5.."}[{{window}}]))',
        ),
        LatencySLI(metric="idp_token_request_duration_seconds", threshold=0.3),
    ]


def test_timeslices_export_as_openslo_and_come_back(tmp_path):
    """budgetingMethod Timeslices with the objective's timeSliceTarget (a ratio) and
    timeSliceWindow; importing the export gives back the same model."""
    sliced = dataclasses.replace(RICH, timeslices=Timeslices(window=300.0, target=99.5))
    (doc,) = yaml.safe_load_all(dump_openslo([sliced]))
    assert doc["spec"]["budgetingMethod"] == "Timeslices"
    objective = doc["spec"]["objectives"][0]
    assert (objective["timeSliceTarget"], objective["timeSliceWindow"]) == (0.995, "5m")
    assert _plain(_round_trip([sliced], tmp_path)) == _plain([sliced])


def test_mean_ratio_timeslices_export_as_ratio_timeslices_and_come_back(tmp_path):
    """budgetingMethod RatioTimeslices with the objective's timeSliceWindow and no
    timeSliceTarget; importing the export gives back the same model."""
    mean = dataclasses.replace(RICH, timeslices=Timeslices(window=120.0, method="mean-ratio"))
    (doc,) = yaml.safe_load_all(dump_openslo([mean]))
    assert doc["spec"]["budgetingMethod"] == "RatioTimeslices"
    objective = doc["spec"]["objectives"][0]
    assert objective["timeSliceWindow"] == "2m" and "timeSliceTarget" not in objective
    assert _plain(_round_trip([mean], tmp_path)) == _plain([mean])


def test_a_timeslice_window_in_seconds_cannot_be_exported(capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(dump_v1([dataclasses.replace(RICH, timeslices=Timeslices(90.0, 95.0))]))
    assert main(["slo", "export-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert "timeslices.window: 90s is not a whole number of minutes" in err


def test_calendar_slos_export_as_calendar_windows_and_come_back(tmp_path):
    quarterly = dataclasses.replace(
        RICH, window=90 * 86400.0, calendar=Calendar("quarter", "America/New_York")
    )
    (doc,) = yaml.safe_load_all(dump_openslo([quarterly]))
    assert doc["spec"]["timeWindow"] == [
        {
            "duration": "1Q",
            "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "America/New_York"},
        }
    ]
    assert _plain(_round_trip([quarterly], tmp_path)) == _plain([quarterly])


def test_a_calendar_slo_with_another_window_cannot_be_exported(capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(dump_v1([dataclasses.replace(RICH, calendar=Calendar("week"))]))
    assert main(["slo", "export-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert "window: a calendar week exports with window 7d only" in err
