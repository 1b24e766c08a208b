"""dashboards/ holds the rendered output for slo/ and must not go stale."""

from __future__ import annotations

from dash_fixtures import REPO, repo_slos

from tokenslo.dashboards.generate import render_files

REFRESH = "run scripts/refresh-goldens (or: tokenslo dashboards render slo/ -o dashboards/)"


def test_checked_in_dashboards_match_a_fresh_render():
    fresh = render_files(repo_slos())
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "dashboards").glob("*.json")}
    missing = sorted(set(fresh) - set(on_disk))
    extra = sorted(set(on_disk) - set(fresh))
    stale = sorted(n for n in set(fresh) & set(on_disk) if fresh[n] != on_disk[n])
    assert not (missing or extra or stale), (
        f"dashboards/ is stale (missing {missing}, extra {extra}, changed {stale}): {REFRESH}"
    )


def test_refresh_script_renders_the_dashboards():
    script = (REPO / "scripts" / "refresh-goldens").read_text()
    assert "tokenslo dashboards render slo/ -o dashboards/" in script


def test_provisioning_files_point_grafana_at_the_dashboards():
    import yaml

    providers = yaml.safe_load((REPO / "dashboards/provisioning/dashboards.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    sources = yaml.safe_load((REPO / "dashboards/provisioning/datasource.example.yaml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"
