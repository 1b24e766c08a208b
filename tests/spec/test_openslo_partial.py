"""OpenSLO import of the shapes real files use: DataSources, raw ratios, partial files.

The fixtures are written here to exercise the same shapes as the OpenSLO
specification's examples (DataSource + metricSourceRef, ``ratioMetric.raw``,
Timeslices and calendar windows, a file mixing supported and unsupported objects).
"""

from __future__ import annotations

import pytest

from tokenslo.cli import main
from tokenslo.core.model import EventsSLI, LatencySLI, Timeslices
from tokenslo.spec.loader import load_paths
from tokenslo.spec.openslo import import_openslo

SECRET = "s3cr3t-connection-password"
# Inputs holding SECRET (in DataSource connectionDetails, which must never be echoed)
# are written under this name, which the CI secret scan skips (tests/scan-exclude.txt).
WITH_SECRET = "datasource-secret.openslo.yaml"

DATASOURCES = f"""\
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: prom}}
spec:
  type: Prometheus
  connectionDetails: {{url: "http://127.0.0.1:9090", password: {SECRET}}}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: cw}}
spec:
  type: CloudWatch
  connectionDetails: {{accessKeyID: AKIAEXAMPLE, secretAccessKey: {SECRET}}}
"""

REF_SLO = """\
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: NAME}
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
            metricSourceRef: GOODREF
            spec: {query: 'sum(ok_total{job="idp"})'}
        total:
          metricSource:
            metricSourceRef: prom
            type: Prometheus
            spec: {query: all_total}
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
"""


def _ref_slo(name: str, ref: str) -> str:
    return REF_SLO.replace("NAME", name).replace("GOODREF", ref)


def line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first line at or after line ``start`` containing ``needle``."""
    lines = text.splitlines()
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_metric_source_ref_resolves_to_a_prometheus_datasource(tmp_path):
    path = tmp_path / WITH_SECRET
    path.write_text(DATASOURCES + _ref_slo("a", "prom"))
    result = import_openslo(path)
    assert result.skipped == []
    (slo,) = result.slos
    assert slo.sli == EventsSLI(  # type inferred from the DataSource; rate() added
        total="sum(rate(all_total[{{window}}]))",
        good='sum(rate(ok_total{job="idp"}[{{window}}]))',
    )
    assert (slo.objective, slo.window) == (99.5, 28 * 86400)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("cw", "metricSource type 'CloudWatch' is not supported; only Prometheus"),
        ("nope", "no kind: DataSource named 'nope' in this file (found: cw, prom)"),
    ],
)
def test_a_ref_to_a_missing_or_foreign_datasource_is_a_skip(tmp_path, capsys, ref, words):
    text = DATASOURCES + _ref_slo("good-one", "prom") + _ref_slo("bad-one", ref)
    path = tmp_path / WITH_SECRET
    path.write_text(text)
    out = tmp_path / "out.yaml"
    assert main(["slo", "import-openslo", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    # the missing ref points at the SLO's metricSourceRef, the foreign one at the DataSource type
    start = line_of(text, "name: bad-one")
    needle = "type: CloudWatch" if ref == "cw" else f"metricSourceRef: {ref}"
    line = line_of(text, needle, 0 if ref == "cw" else start)
    assert f"{path}:{line}: kind SLO bad-one: skipped: {words}\n" in err
    assert [s.name for s in load_paths([out])] == ["good-one"]
    assert SECRET not in err + out.read_text()


def test_a_type_contradicting_the_datasource_is_a_skip(tmp_path):
    text = DATASOURCES + _ref_slo("a", "prom").replace(
        "metricSourceRef: prom\n            type: Prometheus",
        "metricSourceRef: prom\n            type: Datadog",
    )
    path = tmp_path / WITH_SECRET
    path.write_text(text)
    (skip,) = import_openslo(path).skipped
    assert skip.reason == "type 'Datadog' differs from DataSource 'prom''s type 'Prometheus'"
    assert skip.line == line_of(text, "type: Datadog")


def test_a_metric_source_without_type_or_ref_is_invalid(tmp_path, capsys):
    text = DATASOURCES + _ref_slo("a", "prom").replace("metricSourceRef: prom\n", "", 1)
    path = tmp_path / WITH_SECRET
    path.write_text(text)
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    line = line_of(text, "metricSource:")  # the good side's, which lost its ref
    assert err.startswith(f"tokenslo: {path}:{line}:")
    assert "ratioMetric.good.metricSource.type: missing required field 'type'" in err


def test_an_unreferenced_datasource_without_type_is_invalid(tmp_path, capsys):
    text = DATASOURCES.replace("  type: CloudWatch\n", "") + _ref_slo("a", "prom")
    path = tmp_path / WITH_SECRET
    path.write_text(text)
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tokenslo: {path}:{line_of(text, 'name: cw') + 1}:")
    assert "spec.type: missing required field 'type'" in err and SECRET not in err


RAW = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: ratio}
spec:
  ratioMetric:
    rawType: failure
    raw:
      metricSource:
        type: Prometheus
        spec: {query: 'job:error_ratio:rate5m{job="idp"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: raw-slo}
spec:
  service: idp
  indicatorRef: ratio
  budgetingMethod: Occurrences
  timeWindow: [{duration: 7d, isRolling: true}]
  objectives: [{target: 0.999}]
"""


def test_a_raw_ratio_is_skipped_not_imported_with_another_meaning(tmp_path, capsys):
    path = tmp_path / "raw.yaml"
    path.write_text(RAW)
    assert main(["slo", "import-openslo", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    line = line_of(RAW, "raw:")
    prefix = f"{path}:{line}: kind SLO raw-slo: skipped: indicatorRef 'ratio' (kind SLI): "
    assert err.startswith(prefix + "raw ratio metrics ")
    assert "(rawType: failure) are a precomputed ratio, not event counts" in err


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("rawType: failure", "rawType: errors", "rawType", "success or failure"),
        ("    rawType: failure\n", "", "rawType", "missing required field"),
        ("    rawType: failure\n", "    total: {}\n", "total", "raw cannot be combined"),
    ],
)
def test_a_malformed_raw_ratio_is_invalid(tmp_path, capsys, old, new, field, words):
    path = tmp_path / "raw.yaml"
    path.write_text(RAW.replace(old, new))
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert f": spec.ratioMetric.{field}: " in err and words in err


MIXED = """\
apiVersion: openslo/v1
kind: Service
metadata: {name: idp}
spec: {description: the IdP}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: good-slo}
spec:
  service: idp
  indicator:
    metadata: {name: lat}
    spec:
      thresholdMetric:
        metricSource:
          type: Prometheus
          spec: {query: 'lat_seconds_bucket{route="/token"}'}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{op: lte, value: 0.3, target: 0.95}]
  alertPolicies: [{alertPolicyRef: fast-burn}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: slices}
spec:
  service: idp
  indicator:
    metadata: {name: x}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: a_total}}}
        total: {metricSource: {type: Prometheus, spec: {query: b_total}}}
  timeWindow: [{duration: 1w, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [{target: 0.9995, timeSliceTarget: 0.95, timeSliceWindow: 1m}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: monthly}
spec:
  service: idp
  indicator:
    metadata: {name: y}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: a_total}}}
        total: {metricSource: {type: Prometheus, spec: {query: b_total}}}
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: 2022-01-01 12:00:00, timeZone: America/New_York}
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: fast-burn}
spec:
  conditions: [{conditionRef: c}]
"""


def test_a_mixed_file_imports_the_good_object_and_names_each_skip(tmp_path, capsys):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    out = tmp_path / "out.yaml"
    assert main(["slo", "import-openslo", str(path), "-o", str(out)]) == 1
    assert [p.name for p in tmp_path.iterdir()] == sorted(["mixed.yaml", "out.yaml"])
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}:{line_of(MIXED, 'calendar:')}: kind SLO monthly: skipped: "
        "startTime 2022-01-01 12:00:00 does not open a month: tokenslo's periods start at local"
        " midnight (weeks on Monday, months on the 1st, quarters in Jan/Apr/Jul/Oct)",
        f"{path}:{line_of(MIXED, 'kind: AlertPolicy') - 1}: kind AlertPolicy fast-burn: "
        "ignored: tokenslo alerts with its own multi-window burn-rate policy",
        f"wrote 2 SLOs to {out}",
        "1 SLO(s) skipped",
    ]
    slo, slices = load_paths([out])
    assert slo.name == "good-slo" and slo.objective == 95 and slo.window == 30 * 86400
    assert slo.sli == LatencySLI(metric="lat_seconds", threshold=0.3, selector='route="/token"')
    assert slices.name == "slices" and slices.timeslices == Timeslices(window=60, target=95)


def test_an_invalid_object_anywhere_writes_nothing(tmp_path, capsys):
    path = tmp_path / "mixed.yaml"
    text = MIXED.replace("target: 0.99}", "target: high}")
    path.write_text(text)
    out = tmp_path / "out.yaml"
    out.write_text("previous\n")
    assert main(["slo", "import-openslo", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    line = line_of(text, "target: high")
    assert err.startswith(f"tokenslo: {path}:{line}:") and "spec.objectives[0].target" in err
    assert out.read_text() == "previous\n"


def test_a_yaml_error_is_invalid_input(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text(MIXED.replace("metadata: {name: slices}", "metadata: {name: slices"))
    assert main(["slo", "import-openslo", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"tokenslo: {path}:")


def test_every_reason_of_a_skipped_object_is_named(tmp_path):
    """A list-of-objects document, as some tools write: a calendar week that starts on
    a Saturday noon, and a slice window without a unit."""
    text = (
        "- apiVersion: openslo/v1\n  kind: SLO\n  metadata: {name: weekly}\n  spec:\n"
        "    service: web\n    budgetingMethod: Timeslices\n"
        "    indicator:\n      metadata: {name: w}\n      spec:\n        ratioMetric:\n"
        "          good: {metricSource: {type: Prometheus, spec: {query: ok_total}}}\n"
        "          total: {metricSource: {type: Prometheus, spec: {query: all_total}}}\n"
        "    timeWindow:\n      - duration: 1w\n"
        "        calendar: {startTime: 2022-01-01 12:00:00, timeZone: America/New_York}\n"
        "    objectives: [{target: 0.995, timeSliceTarget: 0.95, timeSliceWindow: 5}]\n"
    )
    path = tmp_path / "list.yaml"
    path.write_text(text)
    (skip,) = import_openslo(path).skipped
    assert skip.line == line_of(text, "calendar: {startTime")
    assert skip.reason == (
        "startTime 2022-01-01 12:00:00 does not open a week: tokenslo's periods start at"
        " local midnight (weeks on Monday, months on the 1st, quarters in Jan/Apr/Jul/Oct);"
        " also: timeSliceWindow 5 has no unit; write a duration such as 1m"
    )
