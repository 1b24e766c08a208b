"""The token-replay experiment as a game day, through the CLI against a real lab on free
ports: its expectation is to deviate (the replay alert fires), and that is met."""

from __future__ import annotations

import json

import pytest
from test_gameday_e2e import report_dir, run_game_day, write_game_day

pytestmark = [pytest.mark.lab, pytest.mark.chaos, pytest.mark.slow, pytest.mark.prometheus]


def test_a_game_day_of_the_replay_meets_its_deviated_expectation(tmp_path):
    """Through `tokenslo gameday` with paced background load (whose clients each keep
    their token to one source: the steady state holds before the replay)."""
    plan = write_game_day(tmp_path, [{"name": "token-replay", "expect": "deviated"}])
    proc = run_game_day(plan, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads((report_dir(tmp_path) / "result.json").read_text())
    (experiment,) = result["experiments"]
    assert experiment["outcome"] == "deviated"
    assert experiment["met"] and experiment["misses"] == [], experiment
