"""Valid files, warnings, --strict, the schema command and the model mapping."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tokenslo.cli import main
from tokenslo.core.burnrate import burn_factor
from tokenslo.core.model import BurnWindow, EventsSLI, LatencySLI
from tokenslo.core.promql import sli_exprs
from tokenslo.spec.checks import promql_error
from tokenslo.spec.loader import load_paths, load_paths_with_warnings, load_text
from tokenslo.spec.schema import json_schema

REPO = Path(__file__).resolve().parents[2]
SLO_DIR = REPO / "slo"

FULL = """\
version: tokenslo/v1
service: idp
labels: {team: identity, tier: "2"}
slos:
  - name: issuance
    description: Token endpoint answers
    objective: 99.5
    window: 28d
    labels: {tier: "1"}
    sli:
      events:
        good: sum(rate(t_total{code!~"5.."}[{{window}}]))
        total: sum(rate(t_total[{{window}}]))
    alerting:
      page: true
      ticket: false
      labels: {team: oncall}
      annotations: {runbook_url: "https://runbooks.example/idp"}
      policy:
        - severity: page
          budget_percent: 2
          long_window: 1h
          short_window: 5m
        - severity: ticket
          budget_percent: 10
          long_window: 1d
          short_window: 2h
          for: 10m
    loadtest:
      requests: ["token:client_credentials"]
  - name: latency
    objective: 95
    window: 30d
    sli:
      latency:
        metric: idp_token_request_duration_seconds
        selector: '{grant_type="client_credentials"}'
        threshold: 0.3
"""


def test_full_file_maps_to_model():
    slos, findings = load_text(FULL, "idp.yaml")
    assert findings == []
    first, second = slos
    assert first.service == "idp"
    assert first.window == 28 * 86400
    assert first.labels == {"team": "identity", "tier": "1"}  # SLO label wins
    assert first.sli == EventsSLI(
        total="sum(rate(t_total[{{window}}]))", good='sum(rate(t_total{code!~"5.."}[{{window}}]))'
    )
    assert first.alerting.ticket is False
    assert first.alerting.annotations == {"runbook_url": "https://runbooks.example/idp"}
    assert first.alerting.policy == (
        BurnWindow("page", 0.02, 3600, 300, 0),  # a page's for defaults to none
        BurnWindow("ticket", 0.10, 86400, 7200, 600),
    )
    assert first.loadtest == ("token:client_credentials",)
    assert first.source.file == "idp.yaml" and first.source.line == 5
    assert second.sli == LatencySLI(
        metric="idp_token_request_duration_seconds",
        threshold=0.3,
        selector='grant_type="client_credentials"',
    )
    assert second.alerting.policy is None
    assert second.labels == {"team": "identity", "tier": "2"}
    assert second.source.line == 31


def test_starter_slos_validate_cleanly(capsys):
    assert main(["slo", "validate", str(SLO_DIR)]) == 0
    out, err = capsys.readouterr()
    files = sorted(SLO_DIR.glob("*.yaml"))
    slos = load_paths([SLO_DIR])
    assert out.strip() == f"OK: {len(slos)} SLOs in {len(files)} files"
    # no warning; only the note that latency buckets are not checked offline, one per SLI
    notes = err.splitlines()
    assert len(notes) == sum(isinstance(s.sli, LatencySLI) for s in slos) > 0
    assert all(": note: " in n and "not checked without --prometheus" in n for n in notes)


def test_starter_slos_cover_the_contract():
    slos = {s.name: s for s in load_paths([SLO_DIR])}
    assert {s.service for s in slos.values()} == {"idp", "gateway"}
    allowed = {
        "token:client_credentials",
        "token:refresh_token",
        "introspect",
        "revoke",
        "jwks",
        "api:resource",
    }
    for slo in slos.values():
        assert slo.loadtest and set(slo.loadtest) <= allowed, slo.name
        assert slo.alerting.annotations["runbook_url"].startswith("https://"), slo.name
        assert slo.window == 30 * 86400
    latency = {
        n: (s.sli.metric, s.sli.threshold) for n, s in slos.items() if isinstance(s.sli, LatencySLI)
    }
    assert latency == {
        "token-issuance-latency": ("idp_token_request_duration_seconds", 0.3),
        "introspection-latency": ("idp_introspection_request_duration_seconds", 0.1),
        "token-validation-latency": ("gateway_token_validation_duration_seconds", 0.05),
    }
    validation = slos["token-validation-success"]
    assert validation.objective == 99.95
    # the chaos faults (rotation without publish, clock skew, the IdP issuing tokens for
    # another audience) must burn this budget ...
    for result in ("unknown_kid", "not_yet_valid", "expired", "wrong_audience"):
        assert result in validation.sli.bad
    # ... while attacker-caused rejections neither burn nor dilute it
    for result in ("bad_signature", "malformed", "revoked", "too_large", "wrong_audience_replayed"):
        assert result not in validation.sli.bad and result not in validation.sli.total
    size = slos["token-size"]  # M11: issued tokens over 4 KB, from the 4096 bucket
    assert size.objective == 99 and 'le=~"4096|4096.0"' in (size.sli.good or "")


def test_schema_command_prints_valid_schema_that_accepts_starter_slos(capsys):
    assert main(["slo", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in SLO_DIR.glob("*.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    assert list(validator.iter_errors(yaml.safe_load(FULL))) == []
    bad = yaml.safe_load(FULL.replace("objective: 99.5", "objective: 100"))
    assert list(validator.iter_errors(bad))


def test_checked_in_schema_is_current():
    """docs/slo-v1.schema.json is what editors load."""
    shipped = json.loads((REPO / "docs" / "slo-v1.schema.json").read_text())
    assert shipped == json_schema(), (
        "docs/slo-v1.schema.json is stale: run scripts/refresh-goldens "
        "(or: tokenslo slo schema > docs/slo-v1.schema.json)"
    )


def test_refresh_script_regenerates_the_schema(tmp_path):
    """The script's schema line, run as written, writes exactly the current schema."""
    script = (REPO / "scripts" / "refresh-goldens").read_text().splitlines()
    lines = [line for line in script if "slo schema" in line or "slo-v1.schema.json" in line]
    assert lines and any("> docs/slo-v1.schema.json" in line for line in lines), script
    (tmp_path / "docs").mkdir()
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], cwd=tmp_path, check=True)
    assert json.loads((tmp_path / "docs" / "slo-v1.schema.json").read_text()) == json_schema()


def _warn_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return path


LOW_OBJECTIVE = FULL.replace("objective: 99.5", "objective: 0.995")


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        pytest.param(
            LOW_OBJECTIVE, 7, "slos[0].objective", "did you mean 99.5?", id="low-objective"
        ),
        pytest.param(
            FULL.replace(
                'good: sum(rate(t_total{code!~"5.."}[{{window}}]))',
                'good: sum(rate(t_total{code!~"5.."}[5m]))',
            ),
            12,
            "slos[0].sli.events.good",
            "no {{window}} placeholder",
            id="no-placeholder",
        ),
        pytest.param(
            FULL.replace('      requests: ["token:client_credentials"]\n', "      requests: []\n"),
            29,
            "slos[0].loadtest",
            "gates nothing",
            id="empty-loadtest",
        ),
        pytest.param(
            FULL.replace("objective: 95", "objective: 90"),
            32,
            "slos[1].objective",
            "page alert (1h/5m, burn factor 14.4) can never fire",
            id="page-never-fires",
        ),
    ],
)
def test_warnings_exit_0_but_2_with_strict(tmp_path, capsys, text, line, field, words):
    path = _warn_file(tmp_path, text)
    assert main(["slo", "validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "OK: 2 SLOs in 1 file"
    assert f"{path}:{line}:" in err and f": warning: {field}: " in err and words in err
    assert main(["slo", "validate", "--strict", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "--strict" in err.splitlines()[-1]


def test_unreachable_page_warning_matches_burn_math(tmp_path):
    """Whether the warning appears follows factor x (1 - objective) >= 1, not a fixed objective."""
    factor = burn_factor(0.02, 30 * 86400, 3600)
    limit = 100 * (1 - 1 / factor)  # objectives at or below this cannot page
    for objective, expect in ((round(limit - 0.5, 2), True), (round(limit + 0.5, 2), False)):
        text = FULL.replace("objective: 95", f"objective: {objective}")
        _, findings = load_text(text, "x.yaml")
        hits = [f for f in findings if "can never fire" in f.message and "page" in f.message]
        assert bool(hits) is expect, objective


def test_policy_override_warning_points_at_policy_item():
    text = FULL.replace("budget_percent: 2\n", "budget_percent: 50\n")  # factor 336 at 99.5
    _, findings = load_text(text, "x.yaml")
    (hit,) = [f for f in findings if "can never fire" in f.message]
    assert hit.field == "slos[0].alerting.policy[0]" and hit.line == 20
    assert str(hit).startswith("x.yaml:20:11: slos[0].alerting.policy[0]: page alert")


def test_finding_api(tmp_path):
    path = _warn_file(tmp_path, LOW_OBJECTIVE)
    slos, findings = load_paths_with_warnings([path])
    (finding,) = [f for f in findings if "did you mean" in f.message]
    assert len(slos) == 2
    assert (finding.file, finding.line, finding.column) == (str(path), 7, 16)
    assert str(finding) == f"{path}:7:16: slos[0].objective: {finding.message}"


def test_every_built_query_of_starter_slos_parses():
    for slo in load_paths([SLO_DIR]):
        for window in ("5m", "1h", "30d"):
            for expr in sli_exprs(slo.sli, window):
                assert promql_error(expr) is None, expr


def test_multi_document_file():
    text = (
        FULL
        + "---\n"
        + FULL.replace("service: idp", "service: gw")
        .replace("name: issuance", "name: issuance2")
        .replace("name: latency", "name: latency2")
    )
    slos, _ = load_text(text, "m.yaml")
    assert [s.service for s in slos] == ["idp", "idp", "gw", "gw"]
    assert slos[2].source.line == FULL.count("\n") + 1 + 5
