"""OpenSLO v1 import, the v1 writer and round trips through the loader."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from spec_fixtures import RICH

from tokenslo.cli import main
from tokenslo.core.model import SLO, Calendar, EventsSLI, LatencySLI, Timeslices
from tokenslo.errors import InputError
from tokenslo.spec.loader import load_paths, load_text
from tokenslo.spec.openslo import import_openslo
from tokenslo.spec.writer import dump_v1

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "openslo-idp.yaml"


def _plain(slos: list[SLO]) -> list[SLO]:
    return [dataclasses.replace(s, source=None) for s in slos]


def test_example_imports_ratio_ref_inline_and_threshold():
    result = import_openslo(EXAMPLE)
    assert result.skipped == []
    slos = {s.name: s for s in result.slos}
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
    assert _plain(load_paths([out])) == _plain(import_openslo(EXAMPLE).slos)


def test_import_to_stdout(capsys):
    assert main(["slo", "import-openslo", str(EXAMPLE)]) == 0
    slos, _ = load_text(capsys.readouterr().out)
    assert [s.name for s in slos] == [s.name for s in import_openslo(EXAMPLE).slos]


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
            "budgetingMethod: Sometimes",
            7,
            "spec.budgetingMethod",
            "unknown budgetingMethod",
        ),
        ("duration: 30d", "duration: 30x", 22, "spec.timeWindow[0].duration", "not a duration"),
        ("isRolling: true", "isRolling: yes please", 23, "spec.timeWindow[0].isRolling", "bool"),
        ("target: 0.99", "target: 99", 25, "spec.objectives[0].target", "between 0 and 1"),
        ("    - target: 0.99\n", "    - {}\n", 25, "spec.objectives[0].target", "missing"),
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
        ("  timeWindow:\n", "  timeWindow: 30d\n  x:\n", 21, "spec.timeWindow", "expected list"),
    ],
)
def test_openslo_errors_name_the_field(tmp_path, capsys, old, new, line, field, words):
    """Invalid input is exit 2 with file, line and field, and nothing is written."""
    assert old in OBJ
    path = tmp_path / "o.yaml"
    path.write_text(OBJ.replace(old, new, 1))
    out_file = tmp_path / "out.yaml"
    assert main(["slo", "import-openslo", str(path), "-o", str(out_file)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not out_file.exists()
    assert err.startswith(f"tokenslo: {path}:{line}:"), err
    assert f": {field}: " in err and words in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        (
            "type: Prometheus\n            spec: {query: sum(ok",
            "type: Datadog\n            spec: {query: sum(ok",
            15,
            "metricSource type 'Datadog' is not supported; only Prometheus",
        ),
        ("isRolling: true", "isRolling: false", 23, "isRolling: false without a calendar"),
        (
            "isRolling: true",
            "calendar: {startTime: 2022-01-01 12:00:00, timeZone: UTC}",
            22,
            "calendar window 30d: tokenslo has 1d, 1w, 1M, 1Q, 1Y",
        ),
        (
            "duration: 30d\n      isRolling: true",
            "duration: 1M\n      calendar: {startTime: 2022-01-01 12:00:00, timeZone: UTC}",
            23,
            "startTime 2022-01-01 12:00:00 does not open a month",
        ),
        ("duration: 30d", "duration: 1M", 22, "rolling window 1M has no fixed length"),
        (
            "    - target: 0.99\n",
            "    - target: 0.99\n    - target: 0.9\n",
            24,
            "2 objectives",
        ),
        ("    - target: 0.99\n", "    - {target: 0.99, indicatorRef: x}\n", 25, "composite"),
        (
            "query: sum(ok_total)",
            "query: sum(ok_total offset 5m)",
            16,
            "no {{window}} placeholder",
        ),
        ("counter: true", "counter: false", 16, "counter: false (a gauge)"),
        ("  timeWindow:\n    - duration: 30d\n      isRolling: true\n", "", 5, "no timeWindow"),
    ],
)
def test_unsupported_but_valid_objects_are_skipped_with_a_reason(
    tmp_path, capsys, old, new, line, words
):
    """Exit 1; with nothing left to import nothing is written."""
    assert old in OBJ
    path = tmp_path / "o.yaml"
    path.write_text(OBJ.replace(old, new, 1))
    out_file = tmp_path / "out.yaml"
    assert main(["slo", "import-openslo", str(path), "-o", str(out_file)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and not out_file.exists()
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{line}: kind SLO s: skipped: "), err
    assert words in first
    assert "nothing written" in err and "Traceback" not in err


TIMESLICES = OBJ.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices").replace(
    "    - target: 0.99\n", "    - {target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 1m}\n"
)


def test_timeslices_budgeting_is_imported(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TIMESLICES)
    (slo,) = import_openslo(path).slos
    assert slo.timeslices == Timeslices(window=60.0, target=95.0)
    assert slo.objective == 99


def test_ratio_timeslices_budgeting_is_imported_as_the_mean_of_slice_ratios(tmp_path):
    """RatioTimeslices needs no timeSliceTarget; one given (meaningless for the mean of
    the slices' ratios) is not used."""
    ratio = TIMESLICES.replace("budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices")
    for text in (ratio, ratio.replace("timeSliceTarget: 0.95, ", "")):
        path = tmp_path / "r.yaml"
        path.write_text(text)
        (slo,) = import_openslo(path).slos
        assert slo.timeslices == Timeslices(window=60.0, method="mean-ratio")
        assert slo.objective == 99


def test_ratio_timeslices_without_a_slice_window_is_exit_2(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(
        TIMESLICES.replace(
            "budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices"
        ).replace(", timeSliceWindow: 1m", "")
    )
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:25:" in err and "spec.objectives[0].timeSliceWindow: " in err, err


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("timeSliceTarget: 0.95", "timeSliceTarget: 0", "timeSliceTarget", "must be in (0, 1]"),
        ("timeSliceTarget: 0.95", "timeSliceTarget: 95", "timeSliceTarget", "must be in (0, 1]"),
        ("timeSliceTarget: 0.95, ", "", "timeSliceTarget", "missing required field"),
        ("timeSliceWindow: 1m", "timeSliceWindow: 1x", "timeSliceWindow", "not a duration"),
        ("timeSliceWindow: 1m", "timeSliceWindow: 30d", "timeSliceWindow", "shorter than"),
    ],
)
def test_bad_timeslices_fields_are_exit_2(tmp_path, capsys, old, new, field, words):
    assert old in TIMESLICES
    path = tmp_path / "t.yaml"
    path.write_text(TIMESLICES.replace(old, new, 1))
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tokenslo: {path}:25:"), err
    assert f"spec.objectives[0].{field}: " in err and words in err


def test_a_timeslice_window_without_unit_is_skipped(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(TIMESLICES.replace("timeSliceWindow: 1m", "timeSliceWindow: 60"))
    assert main(["slo", "import-openslo", str(path)]) == 1
    assert "skipped: timeSliceWindow 60 has no unit" in capsys.readouterr().err


CALENDAR = OBJ.replace(
    "duration: 30d\n      isRolling: true",
    "duration: 1M\n      calendar: {startTime: '2022-03-01 00:00:00', timeZone: Asia/Tokyo}",
)


def test_a_calendar_month_is_imported_with_its_nominal_window(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CALENDAR)
    (slo,) = import_openslo(path).slos
    assert slo.calendar == Calendar(period="month", timezone="Asia/Tokyo")
    assert slo.window == 30 * 86400


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("timeZone: Asia/Tokyo", "timeZone: Mars/Olympus", 23, "timeZone", "unknown time zone"),
        ("'2022-03-01 00:00:00'", "tomorrow", 23, "startTime", "not a time"),
        ("timeZone: Asia/Tokyo}", "timeZone: UTC}\n      isRolling: true", 24, "isRolling", ""),
    ],
)
def test_bad_calendar_windows_are_exit_2(tmp_path, capsys, old, new, line, field, words):
    assert old in CALENDAR
    path = tmp_path / "c.yaml"
    path.write_text(CALENDAR.replace(old, new, 1))
    assert main(["slo", "import-openslo", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tokenslo: {path}:{line}:"), err
    assert f".{field}: " in err and words in err


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
    (slo,) = import_openslo(path).slos
    assert slo.name == "token-latency" and slo.service == "idp"
    assert slo.sli == LatencySLI(metric="h_seconds", threshold=0.25, selector='route="/token"')
    assert slo.objective == 99 and slo.window == 7 * 86400


def test_a_query_bucket_equal_to_the_objective_is_kept(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(THRESHOLD.replace('route="/token"}', 'route="/token", le="0.25"}'))
    (slo,) = import_openslo(path).slos
    assert slo.sli == LatencySLI(metric="h_seconds", threshold=0.25, selector='route="/token"')


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        ("op: lte", "op: gte", "op: gte", "only lte"),
        ("op: lte", "op: lt", "op: lt", "only lte"),
        ("indicatorRef: lat", "indicatorRef: nope", "indicatorRef: nope", "found: lat"),
        (  # the query's bucket is not the objective's threshold: skipped, never replaced
            'route="/token"}',
            'route="/token", le="0.3"}',
            "query:",
            "le='0.3' but the objective's value is 0.25",
        ),
        (
            "query: 'h_seconds_bucket{route=\"/token\"}'",
            "query: 'histogram_quantile(0.9, rate(h_seconds_bucket[5m]))'",
            "query:",
            "histogram",
        ),
    ],
)
def test_threshold_skips(tmp_path, old, new, needle, words):
    assert old in THRESHOLD
    path = tmp_path / "t.yaml"
    text = THRESHOLD.replace(old, new)
    path.write_text(text)
    result = import_openslo(path)
    assert result.slos == []
    (skip,) = result.skipped
    assert (skip.kind, skip.name, skip.file) == ("kind SLO", "Token Latency", str(path))
    assert skip.line == line_of(text, needle) and words in skip.reason


def test_a_threshold_skip_names_every_reason(tmp_path):
    """One pass over the file tells all it must change: op and source type alike."""
    path = tmp_path / "t.yaml"
    text = THRESHOLD.replace("op: lte", "op: lt").replace("type: Prometheus", "type: Datadog")
    path.write_text(text)
    (skip,) = import_openslo(path).skipped
    assert skip.line == line_of(text, "op: lt")
    assert "op lt is not supported" in skip.reason
    assert "also: metricSource type 'Datadog' is not supported" in skip.reason


def test_threshold_op_outside_openslo_is_invalid(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(THRESHOLD.replace("op: lte", "op: le"))
    with pytest.raises(InputError) as info:
        import_openslo(path)
    assert info.value.field == "spec.objectives[0].op" and "lte, lt, gte, gt" in info.value.message
    assert info.value.line == line_of(THRESHOLD, "op: lte")


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (the tests' own oracle)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_missing_openslo_file(capsys, tmp_path):
    assert main(["slo", "import-openslo", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read" in capsys.readouterr().err
