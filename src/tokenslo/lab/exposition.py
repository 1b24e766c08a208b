"""How the lab's services and the fault proxy expose their Prometheus metrics.

Each service has a ``CollectorRegistry`` of its own, so several can run in one test
process. A counter whose label values are known up front has every series created at 0
(``zeroed_counter``): ``rate()`` of a series that does not exist yet is "no data" rather
than 0, and a burn-rate alert over it cannot evaluate before the first error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import product

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.responses import Response


def zeroed_counter(
    name: str,
    documentation: str,
    label: str,
    values: Iterable[str],
    registry: CollectorRegistry,
) -> Counter:
    """A counter with one label whose series for ``values`` exist (at 0) from the start."""
    return zeroed_counter_of_pairs(
        name, documentation, (label,), ((value,) for value in values), registry
    )


def zeroed_grid(
    name: str,
    documentation: str,
    labels: Mapping[str, Iterable[str]],
    registry: CollectorRegistry,
) -> Counter:
    """A counter whose series exist (at 0) for every combination of the ``labels`` values.

    Only for labels whose every value is known up front and few: the series count is the
    product of the value counts.
    """
    names = tuple(labels)
    combinations = product(*(tuple(labels[n]) for n in names))
    return zeroed_counter_of_pairs(name, documentation, names, combinations, registry)


def zeroed_counter_of_pairs(
    name: str,
    documentation: str,
    labels: tuple[str, ...],
    combinations: Iterable[tuple[str, ...]],
    registry: CollectorRegistry,
) -> Counter:
    """A counter with several labels whose series for the label-value ``combinations`` that
    can occur (not their whole cross product) exist (at 0) from the start."""
    counter = Counter(name, documentation, list(labels), registry=registry)
    for values in combinations:
        counter.labels(*values)
    return counter


def metrics_response(registry: CollectorRegistry) -> Response:
    """The ``/metrics`` answer: ``registry`` in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
