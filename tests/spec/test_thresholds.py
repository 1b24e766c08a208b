"""The spec's pure half of `slo validate --prometheus`, with the bucket lookup faked."""

from __future__ import annotations

import math

import pytest

from tokenslo.core.model import LatencySLI
from tokenslo.errors import InputError, UnavailableError
from tokenslo.spec.loader import load_result
from tokenslo.spec.thresholds import check_latency_buckets, unchecked_thresholds

SLO_FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: latency
    objective: 95
    window: 30d
    sli:
      latency:
        metric: m_seconds
        threshold: {threshold}
"""


def _result(tmp_path, threshold: float):
    path = tmp_path / "lat.yaml"
    path.write_text(SLO_FILE.format(threshold=threshold))
    return load_result([path]), path


def _fetch(bounds: list[float]):
    asked: list[LatencySLI] = []

    def fetch(sli: LatencySLI) -> list[float]:
        asked.append(sli)
        return bounds

    return fetch, asked


def test_threshold_on_a_bucket_passes_and_asks_once_per_latency_sli(tmp_path):
    result, _ = _result(tmp_path, 0.3)
    fetch, asked = _fetch([0.1, 0.3, math.inf])
    check_latency_buckets(result, "http://prom", fetch)
    assert [sli.metric for sli in asked] == ["m_seconds"]


def test_threshold_between_buckets_points_at_the_field(tmp_path):
    result, path = _result(tmp_path, 0.25)
    fetch, _ = _fetch([0.1, 0.3, math.inf])
    with pytest.raises(InputError) as err:
        check_latency_buckets(result, "http://prom", fetch)
    assert str(err.value).startswith(f"{path}:10:")
    assert "available le buckets: 0.1, 0.3, +Inf" in str(err.value)


def test_no_buckets_at_all_is_unavailable(tmp_path):
    result, _ = _result(tmp_path, 0.3)
    fetch, _ = _fetch([])
    with pytest.raises(UnavailableError, match=r"count by \(le\) \(m_seconds_bucket\)"):
        check_latency_buckets(result, "http://prom", fetch)


def test_offline_every_latency_threshold_gets_a_note(tmp_path):
    result, path = _result(tmp_path, 0.3)
    (note,) = unchecked_thresholds(result)
    assert note.format("note").startswith(f"{path}:10:")
