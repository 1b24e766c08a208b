"""The checked-in generated rules (``tests/golden/rules/``), defined once for the
staleness test and for ``scripts/refresh-goldens`` (which runs this file)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rules_fixtures import all_fixtures, calendars, mean_ratio, timeslices, traffic_aware

from tokenslo.rules.generate import render_rules

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "rules"
SLO_DIR = REPO / "slo"


def fixture_goldens() -> dict[str, Callable[[], str]]:
    """Goldens of the Python fixture SLOs (events bad, events good, latency, and the
    traffic-aware, timeslices, mean-ratio timeslices and calendar variants)."""
    return {
        "fixtures.rules.yml": lambda: render_rules(all_fixtures()),
        "fixtures.operator.yml": lambda: render_rules(all_fixtures(), fmt="operator"),
        "fixtures.time-scale-60.rules.yml": lambda: render_rules(all_fixtures(), time_scale=60),
        "fixtures.traffic-aware.rules.yml": lambda: render_rules([traffic_aware()]),
        "fixtures.timeslices.rules.yml": lambda: render_rules([timeslices()]),
        "fixtures.calendar.rules.yml": lambda: render_rules(calendars()),
        "fixtures.mean-ratio.rules.yml": lambda: render_rules([mean_ratio()]),
    }


def slo_goldens() -> dict[str, Callable[[], str]]:
    """Goldens of the starter SLOs in ``slo/`` (written by the CLI in the refresh script)."""
    from tokenslo.spec.loader import load_paths

    return {
        "slo.rules.yml": lambda: render_rules(load_paths([SLO_DIR])),
        "slo.operator.yml": lambda: render_rules(load_paths([SLO_DIR]), fmt="operator"),
    }


def main() -> int:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, render in fixture_goldens().items():
        (GOLDEN_DIR / name).write_text(render())
        print(f"wrote {(GOLDEN_DIR / name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
