"""docs/seed-coverage.md names real things: every guide metric (M1–M15) and failure mode
(F1–F10) has a row, and every SLO, alert, panel, experiment, probe step, metric and test
it names exists, so the page cannot drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tokenslo.prober.result import STEPS

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "seed-coverage.md"
TICKED = re.compile(r"`([^`]+)`")


def rows() -> dict[str, list[str]]:
    """Table rows by their first cell (M1 … F10): the remaining cells."""
    found: dict[str, list[str]] = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and re.fullmatch(r"[MF]\d+", cells[0]):
            assert cells[0] not in found, f"{cells[0]} twice"
            found[cells[0]] = cells[1:]
    return found


ROWS = rows()
METRICS = {k: v for k, v in ROWS.items() if k.startswith("M")}
MODES = {k: v for k, v in ROWS.items() if k.startswith("F")}


def slo_names() -> set[str]:
    names = set()
    for path in (REPO / "slo").rglob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        names |= {slo["name"] for slo in (document or {}).get("slos", [])}
    return names


def alert_names() -> set[str]:
    rules = REPO / "src" / "tokenslo" / "lab" / "security_rules.yaml"
    groups = yaml.safe_load(rules.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def panel_titles() -> set[str]:
    def walk(panels: list[dict]):
        for panel in panels:
            yield panel["title"]
            yield from walk(panel.get("panels", []))

    titles: set[str] = set()
    for path in (REPO / "dashboards").glob("*.json"):
        titles |= set(walk(json.loads(path.read_text(encoding="utf-8"))["panels"]))
    return titles


def test_every_guide_metric_and_failure_mode_has_a_row():
    assert sorted(METRICS, key=lambda k: int(k[1:])) == [f"M{i}" for i in range(1, 16)]
    assert sorted(MODES, key=lambda k: int(k[1:])) == [f"F{i}" for i in range(1, 11)]
    assert all(len(cells) == 6 for cells in ROWS.values())


@pytest.mark.parametrize("key", list(ROWS))
def test_the_named_test_exists(key):
    (node,) = TICKED.findall(ROWS[key][-1])
    file, _, function = node.partition("::")
    path = REPO / file
    assert path.is_file(), f"{key}: {file} does not exist"
    assert re.search(rf"^(async )?def {re.escape(function)}\(", path.read_text(), re.M), (
        f"{key}: no test {function} in {file}"
    )


@pytest.mark.parametrize("key", list(ROWS))
def test_slos_alerts_panels_experiments_and_probe_steps_exist(key):
    _what, _shows, judged, panels, rehearsed, _test = ROWS[key]
    slos, alerts, titles = slo_names(), alert_names(), panel_titles()
    for name in TICKED.findall(judged):
        if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name):
            assert name in slos, f"{key}: no SLO {name}"
        elif re.fullmatch(r"[A-Z][A-Za-z]+", name):
            assert name in alerts, f"{key}: no alert {name}"
    for title in TICKED.findall(panels):
        assert title in titles, f"{key}: no panel {title!r}"
    for match in re.finditer(r"(probe )?`([^`]+)`", rehearsed):
        probe, name = match.groups()
        if probe:
            assert name in STEPS, f"{key}: no probe step {name}"
        elif " " not in name:
            assert (REPO / "experiments" / f"{name}.yaml").is_file(), f"{key}: no experiment {name}"


@pytest.mark.parametrize("key", list(METRICS))
def test_the_named_metrics_are_exposed_by_the_code(key):
    source = "\n".join(p.read_text() for p in (REPO / "src" / "tokenslo").rglob("*.py"))
    for metric in TICKED.findall(METRICS[key][1]):
        name = metric.split("{")[0]
        stem = re.sub(r"_total$", "", name)
        assert f'"{name}"' in source or f'"{stem}"' in source, f"{key}: {name} is not exposed"
