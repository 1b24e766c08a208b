"""The one-sided exact binomial test behind 'a breach is certain whatever the sample size'."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from tokenslo.load.binomial import breach_certain, upper_tail


def exact_tail(failures: int, requests: int, rate: str) -> float:
    """P(X ≥ failures) summed term by term in exact rational arithmetic (slow, obviously right)."""
    p = Fraction(rate)
    terms = (
        comb(requests, k) * p**k * (1 - p) ** (requests - k) for k in range(failures, requests + 1)
    )
    return float(sum(terms))


@pytest.mark.parametrize(
    ("failures", "requests", "rate", "expected"),
    [
        (1, 1, "0.001", 0.001),  # one request, failed: exactly the error rate
        (2, 10, "0.1", 0.2639010709),  # 1 - 0.9^10 - 10 * 0.1 * 0.9^9
        (1, 51, "0.001", 0.0497455774),  # 1 - 0.999^51
        (1, 52, "0.001", 0.0506958319),  # 1 - 0.999^52
        (0, 10, "0.5", 1.0),
        (11, 10, "0.5", 0.0),
    ],
)
def test_upper_tail_against_hand_computed_values(failures, requests, rate, expected):
    assert upper_tail(failures, requests, float(rate)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("failures", "requests", "rate"),
    [(7, 300, "0.01"), (5, 200, "0.01"), (6, 200, "0.01"), (3, 600, "0.005"), (40, 60, "0.05")],
)
def test_upper_tail_matches_exact_rational_arithmetic(failures, requests, rate):
    assert upper_tail(failures, requests, float(rate)) == pytest.approx(
        exact_tail(failures, requests, rate), rel=1e-9
    )


def test_huge_samples_and_all_failed_are_stable():
    assert upper_tail(1555, 1555, 0.001) == 0.0  # 0.001^1555 underflows: certain
    assert upper_tail(50, 100_000, 0.001) == pytest.approx(1.0)  # far below the mean of 100
    assert 0.5 < upper_tail(1000, 10**7, 0.0001) < 0.51  # at the mean, ten million requests


def test_the_boundary_where_a_breach_becomes_certain():
    # 99.9%: one failure is a certain breach in up to 51 requests, not in 52
    assert breach_certain(1, 51, 0.001) and not breach_certain(1, 52, 0.001)
    # 2,000 requests: 6 failures are (1.65%), 5 are not (5.26%)
    assert breach_certain(6, 2000, 0.001) and not breach_certain(5, 2000, 0.001)
    # the runs: 1,555 of 1,555 and 834 of 1,720 failed
    assert breach_certain(1555, 1555, 0.001) and breach_certain(834, 1720, 0.001)
    assert not breach_certain(0, 10, 0.001) and not breach_certain(0, 0, 0.001)
