"""Malformed SLO files: each must exit 2 with one line naming file, line, field and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tokenslo.cli import main

HEAD = "version: tokenslo/v1\nservice: idp\nslos:\n"
# A valid SLO item; line 4 of a file that starts with HEAD.
SLO = """\
  - name: avail
    objective: 99.9
    window: 30d
    sli:
      events:
        bad: sum(rate(x{code=~"5.."}[{{window}}]))
        total: sum(rate(x[{{window}}]))
"""


def slo(**replace: str) -> str:
    """HEAD + SLO with whole lines swapped: ``slo(objective="    objective: 100")``."""
    lines = SLO.splitlines()
    for key, new in replace.items():
        lines = [new if line.strip(" -").startswith(f"{key}:") else line for line in lines]
    return HEAD + "\n".join(lines) + "\n"


# (id, file text, line, field path or None, words the message must contain)
CASES = [
    ("yaml-syntax", HEAD + "  - name: [unclosed\n", 5, None, "invalid YAML"),
    ("yaml-bad-indent", "version: tokenslo/v1\n  service: idp\n", 2, None, "invalid YAML"),
    ("tab-indent", "version: tokenslo/v1\nslos:\n\t- name: x\n", 3, None, "invalid YAML"),
    ("empty-file", "", 1, None, "empty file"),
    ("only-comments", "# nothing here\n", 1, None, "empty file"),
    ("not-a-mapping", "- a\n- b\n", 1, None, "not a mapping"),
    ("scalar-file", "just text\n", 1, None, "not a mapping"),
    ("missing-version", "service: idp\nslos:\n" + SLO, 1, "version", "missing required"),
    (
        "wrong-version",
        "version: tokenslo/v2\nservice: idp\nslos:\n" + SLO,
        1,
        "version",
        "tokenslo/v1",
    ),
    ("missing-service", "version: tokenslo/v1\nslos:\n" + SLO, 1, "service", "missing required"),
    (
        "bad-service-name",
        "version: tokenslo/v1\nservice: IdP\nslos:\n" + SLO,
        2,
        "service",
        "lowercase",
    ),
    ("missing-slos", "version: tokenslo/v1\nservice: idp\n", 1, "slos", "missing required"),
    (
        "empty-slos",
        "version: tokenslo/v1\nservice: idp\nslos: []\n",
        3,
        "slos",
        "must not be empty",
    ),
    ("slos-not-list", "version: tokenslo/v1\nservice: idp\nslos: {}\n", 3, "slos", "a list"),
    (
        "unknown-top-key",
        HEAD.replace("slos:", "sloz: 1\nslos:") + SLO,
        3,
        "sloz",
        "unknown field 'sloz'",
    ),
    (
        "unknown-slo-key",
        slo(window="    window: 30d\n    windw: 5m"),
        7,
        "slos[0].windw",
        "did you mean 'window'",
    ),
    (
        "missing-name",
        HEAD + SLO.replace("  - name: avail\n    objective", "  - objective"),
        4,
        "slos[0].name",
        "missing required",
    ),
    ("bad-slo-name", slo(name="  - name: Avail_Slo"), 4, "slos[0].name", "lowercase"),
    (
        "objective-string",
        slo(objective='    objective: "99.9"'),
        5,
        "slos[0].objective",
        "expected a number, got string '99.9'",
    ),
    (
        "objective-100",
        slo(objective="    objective: 100"),
        5,
        "slos[0].objective",
        "between 0 and 100",
    ),
    (
        "objective-negative",
        slo(objective="    objective: -1"),
        5,
        "slos[0].objective",
        "between 0 and 100",
    ),
    ("objective-nan", slo(objective="    objective: .nan"), 5, "slos[0].objective", "finite"),
    ("objective-missing", slo(objective=""), 4, "slos[0].objective", "missing required"),
    ("window-unparsable", slo(window="    window: 30days"), 6, "slos[0].window", "duration"),
    ("window-zero", slo(window="    window: 0s"), 6, "slos[0].window", "longer than 0s"),
    ("window-number", slo(window="    window: 30"), 6, "slos[0].window", "expected a string"),
    (
        "sli-neither",
        slo(events="      latency_ms: 3", bad="", total=""),
        8,
        "slos[0].sli.latency_ms",
        "unknown field",
    ),
    (
        "sli-both",
        slo(
            total="        total: sum(rate(x[{{window}}]))\n      latency:\n"
            "        metric: h\n        threshold: 0.3"
        ),
        7,
        "slos[0].sli",
        "exactly one of events / latency: both are set",
    ),
    (
        "good-and-bad",
        slo(
            bad='        bad: sum(rate(x{code=~"5.."}[{{window}}]))\n'
            "        good: sum(rate(x[{{window}}]))"
        ),
        8,
        "slos[0].sli.events",
        "exactly one of good / bad: both are set",
    ),
    (
        "neither-good-nor-bad",
        slo(bad=""),
        8,
        "slos[0].sli.events",
        "exactly one of good / bad: neither is set",
    ),
    ("missing-total", slo(total=""), 8, "slos[0].sli.events.total", "missing required"),
    (
        "promql-syntax",
        slo(total="        total: sum(rate(x[{{window}}])"),
        10,
        "slos[0].sli.events.total",
        "invalid PromQL",
    ),
    (
        "promql-type",
        slo(bad='        bad: rate(x{code=~"5.."})'),
        9,
        "slos[0].sli.events.bad",
        "invalid PromQL",
    ),
    (
        "promql-range-total",
        slo(total="        total: x[{{window}}]"),
        8,
        "slos[0].sli.events",
        "builds invalid PromQL",
    ),
    (
        "latency-bad-selector",
        HEAD + "  - name: lat\n    objective: 95\n    window: 30d\n"
        "    sli:\n      latency:\n        metric: h_seconds\n        selector: '{a=}'\n"
        "        threshold: 0.3\n",
        10,
        "slos[0].sli.latency.selector",
        "invalid PromQL",
    ),
    (
        "latency-bucket-name",
        HEAD + "  - name: lat\n    objective: 95\n    window: 30d\n"
        "    sli:\n      latency:\n        metric: h_seconds_bucket\n        threshold: 0.3\n",
        9,
        "slos[0].sli.latency.metric",
        "without _bucket",
    ),
    (
        "latency-no-threshold",
        HEAD + "  - name: lat\n    objective: 95\n    window: 30d\n"
        "    sli:\n      latency:\n        metric: h_seconds\n",
        8,
        "slos[0].sli.latency.threshold",
        "missing required",
    ),
    (
        "label-int-value",
        slo(window="    window: 30d\n    labels: {tier: 1}"),
        7,
        "slos[0].labels.tier",
        "quote it",
    ),
    (
        "label-bad-key",
        slo(window="    window: 30d\n    labels: {my-tier: a}"),
        7,
        "slos[0].labels.my-tier",
        "label name",
    ),
    (
        "duplicate-key",
        slo(window="    window: 30d\n    window: 7d"),
        7,
        "slos[0].window",
        "duplicate key 'window' (first at line 6)",
    ),
    ("duplicate-slo-name", slo() + SLO, 11, "slos[1].name", "duplicate SLO name 'avail'"),
    (
        "policy-short-ge-long",
        slo(
            window="    window: 30d\n    alerting:\n      policy:\n"
            "        - severity: page\n          budget_percent: 2\n"
            "          long_window: 1h\n          short_window: 2h"
        ),
        12,
        "slos[0].alerting.policy[0].short_window",
        "shorter than long_window",
    ),
    (
        "policy-bad-severity",
        slo(
            window="    window: 30d\n    alerting:\n      policy:\n"
            "        - severity: urgent\n          budget_percent: 2\n"
            "          long_window: 1h\n          short_window: 5m"
        ),
        9,
        "slos[0].alerting.policy[0].severity",
        "expected page or ticket",
    ),
    (
        "policy-budget-0",
        slo(
            window="    window: 30d\n    alerting:\n      policy:\n"
            "        - severity: page\n          budget_percent: 0\n"
            "          long_window: 1h\n          short_window: 5m"
        ),
        10,
        "slos[0].alerting.policy[0].budget_percent",
        "must be > 0",
    ),
    (
        "alerting-page-string",
        slo(window="    window: 30d\n    alerting:\n      page: maybe"),
        8,
        "slos[0].alerting.page",
        "true or false",
    ),
    (
        "burn-rate-unknown",
        slo(window="    window: 30d\n    alerting:\n      burn_rate: dynamic"),
        8,
        "slos[0].alerting.burn_rate",
        "expected static or traffic-aware, got string 'dynamic'",
    ),
    (
        "traffic-aware-rate-total",
        slo(window="    window: 30d\n    alerting:\n      burn_rate: traffic-aware"),
        12,
        "slos[0].sli.events.total",
        "write total with increase(), not rate()",
    ),
    (
        "loadtest-not-list",
        slo(window="    window: 30d\n    loadtest:\n      requests: jwks"),
        8,
        "slos[0].loadtest.requests",
        "a list",
    ),
    (
        "non-string-key",
        slo(window="    window: 30d\n    labels: {1: a}"),
        7,
        "slos[0].labels",
        "keys must be strings",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [pytest.param(t, ln, f, w, id=i) for i, t, ln, f, w in CASES],
)
def test_malformed_file_exits_2_with_position(tmp_path, capsys, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["slo", "validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    message = lines[0]
    assert message.startswith(f"tokenslo: {path}:{line}:"), message
    if field is not None:
        assert f": {field}: " in message, message
    assert words in message
    assert "Traceback" not in err


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30


def test_duplicate_name_across_files_names_both_places(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(slo())
    (tmp_path / "b.yaml").write_text("# second file\n" + slo())
    code = main(["slo", "validate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'b.yaml'}:5:" in err
    assert f"first defined at {tmp_path / 'a.yaml'}:4" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.yaml"], "missing.yaml: no such file or directory"),
        (["EMPTYDIR"], "directory has no *.yaml or *.yml files"),
    ],
)
def test_bad_paths(tmp_path, capsys, args, words):
    (tmp_path / "EMPTYDIR").mkdir()
    (tmp_path / "EMPTYDIR" / "notes.txt").write_text("x")
    code = main(["slo", "validate", *[str(tmp_path / a) for a in args]])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenslo", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("case_id"), ["yaml-syntax", "good-and-bad", "promql-syntax", "unknown-slo-key"]
)
def test_malformed_through_real_process(tmp_path: Path, case_id: str):
    _, text, line, field, words = next(c for c in CASES if c[0] == case_id)
    path = tmp_path / f"{case_id}.yaml"
    path.write_text(text)
    proc = _run("slo", "validate", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert f"{path}:{line}:" in proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
