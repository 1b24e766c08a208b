"""Generated rules must pass the real ``promtool check rules``, in both formats,
with and without a time scale."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rules_fixtures import events_bad, events_good, latency

from tokenslo.prometheus.process import run_promtool
from tokenslo.rules.generate import generate_rule_groups, render_rules

pytestmark = pytest.mark.prometheus

SLOS = {"events-bad": events_bad, "events-good": events_good, "latency": latency}


def rule_count(slos) -> int:
    return sum(len(g["rules"]) for g in generate_rule_groups(slos))


def check(path: Path):
    return run_promtool("check", "rules", str(path), timeout=60)


@pytest.mark.parametrize("time_scale", [1, 7, 60])
@pytest.mark.parametrize("fixture", list(SLOS))
def test_prometheus_format_passes_promtool(tmp_path, fixture, time_scale):
    slos = [SLOS[fixture]()]
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(slos, time_scale=time_scale))
    result = check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {rule_count(slos)} rules found" in result.stdout


@pytest.mark.parametrize("time_scale", [1, 60])
def test_operator_spec_passes_promtool(tmp_path, time_scale):
    """promtool reads plain rule files, so each PrometheusRule's ``spec`` is checked."""
    slos = [f() for f in SLOS.values()]
    docs = list(yaml.safe_load_all(render_rules(slos, fmt="operator", time_scale=time_scale)))
    assert len(docs) == 2  # idp, gateway
    for i, doc in enumerate(docs):
        path = tmp_path / f"spec-{i}.yml"
        path.write_text(yaml.safe_dump(doc["spec"], sort_keys=False, width=10_000))
        result = check(path)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_can_fail(tmp_path):
    """The check is real: a corrupted expression in generated output is rejected."""
    text = render_rules([events_bad()]).replace("or vector(0))", "or vector(0)", 1)
    path = tmp_path / "rules.yml"
    path.write_text(text)
    result = check(path)
    assert result.returncode != 0
    assert "tokenslo:slo_errors:5m" in result.stderr and "parse error" in result.stderr


def test_checked_in_goldens_pass_promtool():
    golden = Path(__file__).resolve().parents[1] / "golden" / "rules"
    files = sorted(str(p) for p in golden.glob("*.rules.yml"))
    assert files, "no rule goldens: run scripts/refresh-goldens"
    result = run_promtool("check", "rules", *files, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
