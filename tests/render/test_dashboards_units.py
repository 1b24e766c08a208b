"""Dashboard rendering: templates, context, ids, layout, queries, CLI. No network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from dash_fixtures import DASHBOARDS, ONE_SLO, REPO, rendered, repo_slos, slos_from

from tokenslo.cli import main
from tokenslo.dashboards import context as dc
from tokenslo.dashboards import generate as d
from tokenslo.dashboards.queries import queries, substitute, variable_queries
from tokenslo.errors import InputError
from tokenslo.templating import BRACKETS, environment


def test_renders_the_five_dashboards_with_stable_short_uids():
    out = rendered()
    assert sorted(out) == [f"{n}.json" for n in DASHBOARDS]
    for name, doc in out.items():
        assert doc["uid"] == d.uid_for(name.removesuffix(".json"))
        assert 1 <= len(doc["uid"]) <= d.UID_MAX


def test_uid_for_long_names_stays_unique_and_short():
    a, b = d.uid_for("x" * 60 + "-a"), d.uid_for("x" * 60 + "-b")
    assert a != b and len(a) <= 40 and len(b) <= 40
    assert d.uid_for("SLO Overview!") == "tokenslo-slo-overview"


def test_grafana_legends_pass_through_jinja_untouched():
    legends = [
        t["legendFormat"]
        for doc in rendered().values()
        for p in doc["panels"]
        for t in p.get("targets", [])
    ]
    assert "{{service}}/{{slo}}" in legends
    assert "{{grant_type}} {{code}}" in legends


def test_bracket_environment_leaves_curly_braces_alone(tmp_path):
    (tmp_path / "t.j2").write_text('{"legend": "{{slo}}", "n": [[ n ]]}')
    env = environment(d.TEMPLATES, tmp_path, delimiters=BRACKETS)
    assert env.get_template("t.j2").render(n=3) == '{"legend": "{{slo}}", "n": 3}'


def test_every_panel_and_target_uses_the_datasource_variable():
    for doc in rendered().values():
        names = [v["name"] for v in doc["templating"]["list"]]
        assert names[0] == "datasource"
        assert doc["templating"]["list"][0]["type"] == "datasource"
        for panel in doc["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"


def test_panel_ids_unique_and_stable_when_an_slo_is_added():
    base = d.render_dashboards(slos_from(ONE_SLO))["slo-overview.json"]
    more = (
        ONE_SLO
        + """
  - name: aaa-first
    objective: 99
    window: 7d
    sli:
      events:
        bad: sum(rate(idp_jwks_requests_total{code=~"5.."}[{{window}}]))
        total: sum(rate(idp_jwks_requests_total[{{window}}]))
"""
    )
    grown = d.render_dashboards(slos_from(more))["slo-overview.json"]
    ids = {p["title"]: p["id"] for p in base["panels"]}
    ids_grown = {p["title"]: p["id"] for p in grown["panels"]}
    assert len(set(ids_grown.values())) == len(ids_grown)
    assert len(ids_grown) == len(ids) + 2  # one stat and one gauge for the new SLO
    assert all(ids_grown[title] == pid for title, pid in ids.items())


def test_panel_id_collisions_probe_onward():
    taken: set[int] = set()
    first = d.panel_id("a", taken)
    assert d.panel_id("a", taken) == first % d.PANEL_ID_SPACE + 1


def test_layout_fills_24_columns_without_overlap():
    for doc in rendered().values():
        cells: set[tuple[int, int]] = set()
        for panel in doc["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            cover = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cover & cells, (doc["title"], panel["title"])
            cells |= cover


def test_layout_wraps_and_rows_start_new_lines():
    panels = [
        {"type": "stat", "gridPos": {"w": 16, "h": 4}},
        {"type": "stat", "gridPos": {"w": 16, "h": 6}},
        {"type": "row"},
        {"type": "stat", "gridPos": {"w": 8, "h": 2}},
    ]
    d.layout(panels)
    assert [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels] == [
        (0, 0),
        (0, 4),
        (0, 10),
        (0, 11),
    ]


def test_overview_thresholds_come_from_each_slo_objective():
    doc = rendered()["slo-overview.json"]
    for slo in repo_slos():
        panel = next(p for p in doc["panels"] if p["title"].startswith(slo.name + " · SLI"))
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1] == {"color": "green", "value": pytest.approx(slo.objective / 100)}
        assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_token_views_use_the_slo_measuring_each_sli():
    context = dc.build_context(repo_slos())
    assert context.roles["issuance"].slo == "token-issuance-availability"
    assert context.roles["refresh"].slo == "token-refresh-success"
    assert context.roles["validation"].objective == 99.95
    assert context.roles["validation_latency"].latency_threshold == 0.05
    oncall = rendered()["token-oncall.json"]
    panel = next(p for p in oncall["panels"] if p["title"] == "Token validation latency p95/p99")
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.05


def test_token_views_fall_back_to_the_guide_targets_without_a_matching_slo():
    context = dc.build_context(slos_from(ONE_SLO))
    assert context.roles["issuance"].slo == "issuance"
    assert context.roles["issuance"].objective == 99.5
    assert context.roles["validation"].slo is None
    assert context.roles["validation"].objective == 99.95  # guide M3
    assert "gateway_token_validations_total" in context.roles["validation"].period_sli


def test_issuance_panel_is_the_slo_sli_as_written_in_its_file():
    # Expected from the SLO file's own text, not the production builder: its bad and
    # total queries at $__rate_interval, each summed, the bad one 0 when absent.
    doc = yaml.safe_load((REPO / "slo" / "idp.yaml").read_text())
    spec = next(s for s in doc["slos"] if s["name"] == "token-issuance-availability")
    bad, total = (
        spec["sli"]["events"][k].replace("{{window}}", "$__rate_interval") for k in ("bad", "total")
    )
    oncall = rendered()["token-oncall.json"]
    panel = next(p for p in oncall["panels"] if p["title"] == "Issuance success now")
    assert panel["targets"][0]["expr"] == f"1 - ((sum({bad}) or vector(0))) / (sum({total}))"


def test_every_query_is_valid_promql_once_variables_are_substituted():
    count = 0
    for name, doc in rendered().items():
        values = {var: "token-issuance-availability" for var in variable_queries(doc)}
        for query in queries(name, doc):
            expr = substitute(query.expr, values)
            assert "$" not in expr, (query.where, expr)
            promql_parser.parse(expr)
            count += 1
    assert count > 60


def test_substitute_rejects_unknown_variables():
    assert substitute('x{slo="$slo"}[$__rate_interval]', {"slo": "a"}) == 'x{slo="a"}[1m]'
    with pytest.raises(KeyError):
        substitute("x[$nope]", {})


def test_detail_dashboard_is_driven_by_the_slo_variable():
    doc = rendered()["slo-detail.json"]
    assert variable_queries(doc) == {"slo": ("tokenslo:slo_objective:ratio", "slo")}
    for query in queries("slo-detail", doc):
        if query.ref != "annotation":
            assert '"$slo"' in query.expr, query.where


@pytest.mark.parametrize("name", ["token-oncall.json", "token-debug.json"])
def test_oncall_and_debug_break_down_by_the_client_variable(name):
    """Every panel that groups by client_id narrows to the chosen client apps, and the
    variable offers the label's values (multi-value, All = any)."""
    doc = rendered()[name]
    assert variable_queries(doc) == {"client": ("idp_token_requests_total", "client_id")}
    (var,) = [v for v in doc["templating"]["list"] if v["name"] == "client"]
    assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"
    per_client = [q for q in queries(name, doc) if "client_id" in q.expr]
    assert len(per_client) >= 3
    for query in per_client:
        assert 'client_id=~"$client"' in query.expr, query.where
    exprs = " ".join(q.expr for q in queries(name, doc))
    for metric in ("gateway_token_validations_total", "idp_token_errors_total"):
        assert re.search(metric + r'\{[^}]*client_id=~"\$client"', exprs), metric


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("token-oncall.json", "gateway_authorization_decisions_total"),  # M8
        ("token-debug.json", "gateway_authorization_decisions_total"),
        ("token-oncall.json", "idp_token_errors_total"),  # M12
        ("token-debug.json", "idp_token_errors_total"),
        ("token-oncall.json", "idp_privilege_escalation_attempts_total"),  # M15
        ("token-debug.json", "idp_privilege_escalation_attempts_total"),
        ("token-debug.json", "gateway_scope_beyond_registration_total"),  # M15 at the gateway
    ],
)
def test_the_security_signals_have_panels(name, metric):
    assert any(metric in q.expr for q in queries(name, rendered()[name]))


def test_override_directory_replaces_one_template_and_adds_another(tmp_path):
    (tmp_path / "slo-overview.json.j2").write_text(
        '[% import "_panels.j2" as p with context %]{ [[ p.header("Mine", []) ]] "panels": '
        '[ [[ p.stat("Objectives", [target("tokenslo:slo_objective:ratio", "{{slo}}")]) ]] ] }'
    )
    (tmp_path / "extra.json.j2").write_text(
        (tmp_path / "slo-overview.json.j2").read_text().replace("Mine", "Extra")
    )
    out = d.render_dashboards(repo_slos(), tmp_path)
    assert out["slo-overview.json"]["title"] == "Mine"
    assert out["extra.json"]["uid"] == "tokenslo-extra"
    assert out["token-oncall.json"]["title"].endswith("on-call")  # built-in still used


def test_template_that_is_not_json_names_file_and_line(tmp_path):
    (tmp_path / "slo-overview.json.j2").write_text('{\n  "title": "x",\n  "panels": [,]\n}\n')
    with pytest.raises(InputError) as err:
        d.render_dashboards(repo_slos(), tmp_path)
    assert err.value.file.endswith("slo-overview.json.j2") and err.value.line == 3


def test_template_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "slo-overview.json.j2").write_text("{\n[% if %]\n}\n")
    with pytest.raises(InputError) as err:
        d.render_dashboards(repo_slos(), tmp_path)
    assert err.value.line == 2 and "syntax" in err.value.message


def test_undefined_template_variable_is_an_error(tmp_path):
    (tmp_path / "slo-overview.json.j2").write_text('{"title": [[ nope|json ]]}')
    with pytest.raises(InputError, match="nope"):
        d.render_dashboards(repo_slos(), tmp_path)


def test_duplicate_panel_titles_are_rejected(tmp_path):
    (tmp_path / "slo-overview.json.j2").write_text(
        '[% import "_panels.j2" as p with context %]{ [[ p.header("T", []) ]] "panels": [ '
        '[[ p.stat("Same", [target("up")]) ]], [[ p.stat("Same", [target("up")]) ]] ] }'
    )
    with pytest.raises(InputError, match="unique") as err:
        d.render_dashboards(repo_slos(), tmp_path)
    assert err.value.field == "panels[1].title"


def test_cli_writes_every_dashboard(tmp_path):
    out = tmp_path / "d"
    assert main(["dashboards", "render", str(REPO / "slo"), "-o", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{n}.json" for n in DASHBOARDS]
    assert json.loads((out / "slo-overview.json").read_text())["schemaVersion"] == 41
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dashboards", "render", "no/such/dir", "-o", "{out}"], "no/such/dir"),
        (
            ["dashboards", "render", str(REPO / "slo"), "-o", "{out}", "--templates", "/no/where"],
            "--templates",
        ),
        (["dashboards", "render", str(REPO / "slo")], "-o"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    argv = [a.replace("{out}", str(tmp_path / "o")) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit instead of returning
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_cli_output_path_that_is_a_file_is_bad_input(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["dashboards", "render", str(REPO / "slo"), "-o", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_generated_note_names_the_slo_files_not_absolute_paths():
    for doc in rendered().values():
        assert "idp.yaml" in doc["description"] and "gateway.yaml" in doc["description"]
        assert not re.search(r"/work|/tmp|/home", doc["description"])


def test_templates_are_package_data():
    names = {p.name for p in d.TEMPLATES.iterdir()}
    assert {f"{n}.json.j2" for n in DASHBOARDS} | {"_panels.j2"} <= names
    text = (Path(REPO) / "pyproject.toml").read_text()
    assert '"**/*.j2"' in text


def test_table_panels_have_the_columns_they_rename():
    """Grafana names instant table columns ``Value #<refId>``; the organize
    transformation renames exactly those, so every renamed refId must exist."""
    for doc in rendered().values():
        for panel in doc["panels"]:
            for step in panel.get("transformations", []):
                renamed = step.get("options", {}).get("renameByName", {})
                refs = {t["refId"] for t in panel["targets"]}
                for column in renamed:
                    if column.startswith("Value #"):
                        assert column.removeprefix("Value #") in refs, (panel["title"], column)
