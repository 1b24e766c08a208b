"""When a handful of requests already proves a breach: the one-sided exact binomial test.

The rule of three (``gate.min_requests``) says how many requests a check needs before
it can *pass*. A breach can be certain much earlier: 1,555 failures in 1,555 requests
cannot come from a service whose true error rate is 0.1%. The test asks how likely
``failures`` or more failures in ``requests`` would be if the true error rate were
exactly the error budget; below 5% (the confidence the rule of three uses) the breach
is certain — equivalently, the Clopper–Pearson 95% lower bound of the error rate
exceeds the budget. Pure math (log-gamma, summed in log space), no SciPy.
"""

from __future__ import annotations

import math

ALPHA = 0.05  # 95% confidence, as in the rule of three
NEGLIGIBLE = -50.0  # log of a term's share of the first (largest) one that no longer matters


def _log_pmf(k: int, n: int, log_p: float, log_q: float) -> float:
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * log_p + (n - k) * log_q


def _log_sum(n: int, log_p: float, log_q: float, ks: range) -> float:
    """log Σ pmf(k) over ``ks``, whose terms only shrink: the first one is the largest."""
    first = _log_pmf(ks[0], n, log_p, log_q)
    total = 0.0
    for k in ks:
        term = _log_pmf(k, n, log_p, log_q) - first
        if term < NEGLIGIBLE:
            break
        total += math.exp(term)
    return first + math.log(total)


def upper_tail(failures: int, requests: int, rate: float) -> float:
    """P(X ≥ failures) for X ~ Binomial(requests, rate), stable for any sample size.

    The sum runs away from the distribution's mode, where terms only shrink, so it
    stops once they no longer matter: above the mode the upper tail itself, below it
    one minus the lower tail.
    """
    if failures <= 0:
        return 1.0
    if failures > requests or rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    mode = math.floor((requests + 1) * rate)
    if failures > mode:
        return math.exp(_log_sum(requests, log_p, log_q, range(failures, requests + 1)))
    lower = math.exp(_log_sum(requests, log_p, log_q, range(failures - 1, -1, -1)))
    return max(0.0, 1.0 - lower)


def breach_certain(bad: int, total: int, budget: float, alpha: float = ALPHA) -> bool:
    """``bad`` of ``total`` is too many for a true bad share of ``budget``, at 1 − alpha."""
    return total > 0 and upper_tail(bad, total, budget) < alpha
