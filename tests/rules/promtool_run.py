"""Run ``promtool test rules`` on generated rules in a temporary directory (the I/O
half of the alert-timing proofs; ``tokenslo.rules.promtool_tests`` builds the tests)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
from tokenslo.prometheus.process import run_promtool
from tokenslo.rules.generate import render_rules
from tokenslo.rules.promtool_tests import promtool_file


def run_rule_tests(
    tmp_path: Path, slos: Sequence[SLO], groups: list[dict], evaluation_interval: float
) -> subprocess.CompletedProcess:
    """Write the rules of ``slos`` and a test file of ``groups``, then run promtool."""
    (tmp_path / "rules.yml").write_text(render_rules(list(slos)))
    test_doc = promtool_file(["rules.yml"], format_duration(evaluation_interval), groups)
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_doc, sort_keys=False, width=10_000))
    return run_promtool(
        "test", "rules", "test.yml", cwd=tmp_path, timeout=540
    )  # under pytest-timeout's 600 s; the slowest takes 1–3 min beside other tests
