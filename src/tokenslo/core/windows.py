"""How the generated rules compute each window, shared by the rule generator and the
backtest so the two cannot disagree. Pure: no I/O.

Windows up to ``EXACT_WINDOW_LIMIT`` are counted straight from the raw counters.
Longer ones are *derived*: the rules record 5m counts (``BASE_WINDOW``) at every
group evaluation (``BASE_INTERVAL`` apart) and sum those samples with
``sum_over_time(…[window])``. The sum is not the window's count (consecutive 5m
windows overlap), but errors and events are over-counted by the same factor, so
their ratio is what the alerts compare. It is smeared by up to one base window
at the edges, which is why a backtest must sum the same samples to agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

BASE_WINDOW = 300.0  # the 5m counts every long window is derived from
EXACT_WINDOW_LIMIT = 6 * 3600.0  # windows up to this are computed from the raw counters
BASE_INTERVAL = 30.0  # group evaluation interval at time scale 1
MIN_INTERVAL = 1.0  # never evaluate faster than this, whatever the time scale


def is_derived(window: float) -> bool:
    """True for a window the rules sum from 5m counts rather than count directly."""
    return window > EXACT_WINDOW_LIMIT


def window_sums(
    samples: Sequence[float],
    spacing: float,
    window: float,
    at: Sequence[int],
    left_closed: bool = True,
) -> list[float | None]:
    """``sum_over_time(series[window])`` at sample indices ``at``, for a series sampled
    every ``spacing`` seconds (NaN: no sample at that evaluation).

    ``left_closed``: a sample exactly ``window`` old still counts, as in Prometheus 2
    (Prometheus 3 range selectors are left-open). Without any sample in the range the
    result is None, as PromQL's is absent. Prefix sums make each point O(1).
    """
    return sums_from_prefix(prefix_sums(samples), spacing, window, at, left_closed)


# running sum of the samples (NaN as 0) and running count of present samples, from 0
Prefix = tuple[list[float], Sequence[int]]


def prefix_sums(samples: Sequence[float]) -> Prefix:
    """What ``sums_from_prefix`` needs of a series; computed once, any window reuses it.
    A series without NaN (the usual case: sum() is NaN as soon as one sample is) takes
    the fast path, where every sample is present and counts itself."""
    if not math.isnan(sum(samples)):
        return [0.0, *accumulate(samples)], range(len(samples) + 1)
    total = [0.0, *accumulate(v if v == v else 0.0 for v in samples)]  # NaN != NaN
    present = [0, *accumulate(v == v for v in samples)]
    return total, present


def sums_from_prefix(
    prefix: Prefix, spacing: float, window: float, at: Sequence[int], left_closed: bool = True
) -> list[float | None]:
    """``window_sums`` of the series whose ``prefix_sums`` is ``prefix``."""
    total, present = prefix
    reach = round(window / spacing) - (0 if left_closed else 1)
    ends = [i + 1 for i in at]
    starts = [i - reach if i > reach else 0 for i in at]
    return [
        total[e] - total[s] if present[e] > present[s] else None
        for e, s in zip(ends, starts, strict=True)
    ]
