"""Checked-in rules must equal what the generator produces now."""

from __future__ import annotations

import pytest
from goldens import GOLDEN_DIR, SLO_DIR, fixture_goldens, slo_goldens

GOLDENS = {**fixture_goldens(), **slo_goldens()}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_is_current(name):
    if name.startswith("slo.") and not any(SLO_DIR.glob("*.yaml")):
        pytest.skip("no starter SLOs in slo/")
    path = GOLDEN_DIR / name
    assert path.exists(), f"{path} is missing: run scripts/refresh-goldens"
    assert path.read_text() == GOLDENS[name](), (
        f"{path.name} is stale: run scripts/refresh-goldens and review the diff"
    )
