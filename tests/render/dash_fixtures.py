"""Helpers shared by the dashboard tests (owned by the dashboards renderer)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tokenslo.dashboards.generate import render_dashboards
from tokenslo.spec.loader import load_paths, load_text

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = ("slo-detail", "slo-overview", "token-debug", "token-executive", "token-oncall")


@cache
def repo_slos():
    return tuple(load_paths([REPO / "slo"]))


def rendered() -> dict[str, dict]:
    """Fresh dicts each call, so tests may mutate them."""
    return render_dashboards(repo_slos())


def slos_from(text: str):
    return load_text(text, "test.yaml")[0]


ONE_SLO = """
version: tokenslo/v1
service: idp
slos:
  - name: issuance
    objective: 99.5
    window: 7d
    sli:
      events:
        bad: sum(rate(idp_token_requests_total{code=~"5.."}[{{window}}]))
        total: sum(rate(idp_token_requests_total[{{window}}]))
"""
