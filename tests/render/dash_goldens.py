"""The checked-in dashboards of a traffic-aware SLO (``tests/golden/dashboards/``), defined
once for the staleness test and for ``scripts/refresh-goldens`` (which runs this file).

The SLOs count Prometheus' own HTTP requests, so a bare Prometheus scraping itself gives
them traffic: one traffic-aware SLO (its page lines move with the traffic) beside one
static SLO (constant lines at its factors)."""

from __future__ import annotations

import sys
from pathlib import Path

from tokenslo.dashboards.generate import render_files
from tokenslo.spec.loader import load_text

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "dashboards" / "traffic-aware"

SLO = """\
  - name: api-{mode}
    description: Prometheus answers its HTTP API without server errors ({mode} burn rates).
    objective: 99.9
    window: 30d
    sli:
      events:
        bad: sum(increase(prometheus_http_requests_total{{code=~"5.."}}[{{{{window}}}}]))
        total: sum(increase(prometheus_http_requests_total[{{{{window}}}}]))
    alerting: {{burn_rate: {mode}}}
"""
SLOS = "version: tokenslo/v1\nservice: prometheus\nslos:\n" + "".join(
    SLO.format(mode=mode) for mode in ("traffic-aware", "static")
)


def slos():
    return load_text(SLOS, "traffic-aware.yaml")[0]


def goldens() -> dict[str, str]:
    """Dashboard file name → rendered text."""
    return render_files(slos())


def main() -> int:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in goldens().items():
        (GOLDEN_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {(GOLDEN_DIR / name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
