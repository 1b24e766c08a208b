"""How the lab's services and the fault proxy expose their Prometheus metrics.

Each service has a ``CollectorRegistry`` of its own, so several can run in one test
process. A counter whose label values are known up front has every series created at 0
(``zeroed_counter``): ``rate()`` of a series that does not exist yet is "no data" rather
than 0, and a burn-rate alert over it cannot evaluate before the first error.

A label whose value comes from what a caller sends must come from a fixed set, or
anyone could add series without bound: ``client_label`` is that set for ``client_id``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from itertools import product

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.responses import Response

UNKNOWN_CLIENT = "unknown"  # every client_id label value that is not a registered client


def client_label(client_id: object, registered: Container[str]) -> str:
    """The ``client_id`` label of a series: the id if it is a registered client, else
    ``unknown``, so unauthenticated garbage cannot grow the series count. (A client
    registered as ``unknown`` would share its series with them; the lab has none.)

    Callers pass an id only once something vouches for it: the IdP after the client
    authenticated, the gateway after the token's signature verified."""
    if isinstance(client_id, str) and client_id in registered:
        return client_id
    return UNKNOWN_CLIENT


def client_values(registered: Iterable[str]) -> tuple[str, ...]:
    """Every value a ``client_id`` label can take: the registered clients and ``unknown``."""
    return (*sorted(set(registered) - {UNKNOWN_CLIENT}), UNKNOWN_CLIENT)


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
