"""Every rendered dashboard validates against the pinned grafana-foundation-sdk schema,
and the validator really rejects what the schema forbids."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from dash_fixtures import REPO, rendered

from tokenslo.dashboards import schema as dash_schema
from tokenslo.dashboards.generate import SCHEMA_VERSION


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return rendered()


def test_the_sdk_version_is_the_one_pinned_in_pyproject():
    pinned = re.search(r'"grafana-foundation-sdk==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned, "pin an exact grafana-foundation-sdk version in pyproject.toml"
    assert dash_schema.sdk_version() == pinned.group(1)


def test_schema_version_is_the_one_the_sdk_generates():
    from grafana_foundation_sdk.models.dashboard import Dashboard

    assert Dashboard().schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    "name", ["slo-detail", "slo-overview", "token-debug", "token-executive", "token-oncall"]
)
def test_rendered_dashboard_validates(docs, name):
    assert dash_schema.validate(docs[f"{name}.json"]) == []


def test_checked_in_dashboards_validate():
    import json

    files = sorted((REPO / "dashboards").glob("*.json"))
    assert len(files) == 5
    for path in files:
        assert dash_schema.validate(json.loads(path.read_text())) == [], path.name


def _first(doc: dict, panel_type: str) -> dict:
    return next(p for p in doc["panels"] if p["type"] == panel_type)


def _mutated(docs, change) -> list[str]:
    doc = copy.deepcopy(docs["token-oncall.json"])
    change(doc)
    return dash_schema.validate(doc)


@pytest.mark.parametrize(
    "change, expected",
    [
        # a misspelt field is dropped by the decoder: caught by the round trip
        (
            lambda d: _first(d, "timeseries")["targets"][0].update(legendFromat="x"),
            r"targets\[0\]\.legendFromat: not a field",
        ),
        (lambda d: d.update(schemaVerison=41), r"\$\.schemaVerison: not a field"),
        # enum and literal values
        (lambda d: d.update(graphTooltip=7), r"graph_tooltip: 7 is not one of"),
        (
            lambda d: _first(d, "stat")["options"].update(colorMode="rainbow"),
            r"color_mode: 'rainbow'",
        ),
        (
            lambda d: _first(d, "timeseries")["fieldConfig"]["defaults"]["custom"].update(
                drawStyle="zigzag"
            ),
            r"draw_style: 'zigzag'",
        ),
        # wrong JSON types
        (lambda d: _first(d, "timeseries").update(title=5), r"\.title: expected a string"),
        (lambda d: _first(d, "timeseries")["gridPos"].update(w="wide"), r"grid_pos\.w: expected"),
        (lambda d: _first(d, "table")["transformations"][0].update(id=3), r"transformations\[0\]"),
        # a query of a data source type the schema does not know
        (
            lambda d: _first(d, "timeseries")["datasource"].update(type="nosuchdb"),
            r"targets\[0\]: query of a data source type",
        ),
    ],
)
def test_validator_rejects_what_the_schema_forbids(docs, change, expected):
    problems = _mutated(docs, change)
    assert any(re.search(expected, p) for p in problems), problems


def test_validator_reports_garbage_without_raising():
    problems = dash_schema.validate({"panels": [{"type": "timeseries", "targets": 5}]})
    assert problems and problems[0].startswith("$")


def test_no_json_schema_file_ships_with_the_sdk():
    """Why dash_schema reads the generated model types: if a future pinned SDK ships a
    JSON Schema, this fails and the validator should switch to it."""
    import grafana_foundation_sdk

    root = Path(grafana_foundation_sdk.__file__).parent
    assert not [p for p in root.rglob("*") if p.suffix in (".json", ".cue")]
