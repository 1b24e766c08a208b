"""Every PromQL query of a rendered dashboard, with Grafana's variables substituted.

The schema test, the live-query test (and anyone checking dashboards against a
real Prometheus) need the same list: panel targets, annotation queries and
query variables. Grafana variables are not PromQL, so they are replaced by
concrete values first. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# What Grafana would substitute on a short time range with a 1 s scrape interval.
DEFAULT_VALUES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "datasource": "prometheus",
    "client": ".*",  # the client variable's "All"
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title / annotation name / variable name
    ref: str  # refId, or "annotation"/"variable"
    expr: str  # as written in the dashboard
    instant: bool = False


def queries(name: str, doc: dict) -> Iterator[Query]:
    for panel in doc.get("panels", []):
        for target in panel.get("targets", []):
            yield Query(
                name,
                panel.get("title", ""),
                target.get("refId", ""),
                target["expr"],
                bool(target.get("instant")),
            )
    for annotation in doc.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield Query(name, annotation.get("name", ""), "annotation", annotation["expr"])


def variable_queries(doc: dict) -> dict[str, tuple[str, str]]:
    """Query variables written as ``label_values(metric, label)`` → (metric, label)."""
    found = {}
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        if var.get("type") == "query" and isinstance(query, str):
            match = _LABEL_VALUES.match(query)
            if match:
                found[var["name"]] = (match["metric"], match["label"])
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``/``${name}`` with ``values[name]``; unknown variables raise KeyError
    (a query with a leftover variable is not valid PromQL)."""
    merged = {**DEFAULT_VALUES, **values}

    def repl(match: re.Match) -> str:
        return merged[match.group(1) or match.group(2)]

    return _VARIABLE.sub(repl, expr)
