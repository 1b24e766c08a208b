"""Build ``promtool test rules`` files from Python. Pure: returns dicts, no I/O.

The alert-timing proofs synthesise counter series, ask promtool which alerts fire
at chosen times, and take the expected labels and annotations from the generated
rules themselves, so a test can only pass if the real rule text does what the
burn-rate math says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import iter_alerts, series_labels


def counter_values(segments: Sequence[tuple[float, int]]) -> str:
    """Expanding notation for a counter that starts at 0 and then, per segment,
    grows by ``increment`` at each of ``steps`` samples.

    ``[(100, 3), (0, 2)]`` → ``0 100+100x2 300+0x1`` (0 100 200 300 300 300).
    """
    parts, value = ["0"], 0.0
    for increment, steps in segments:
        if steps <= 0:
            continue
        first = value + increment
        parts.append(f"{_num(first)}+{_num(increment)}x{steps - 1}")
        value += increment * steps
    return " ".join(parts)


def _num(value: float) -> str:
    return f"{value:.15g}"


def find_alert(groups: Iterable[dict], alertname: str, **labels: str) -> dict:
    """The one ``alertname`` rule whose labels include ``labels`` (e.g. ``long_window="1h"``)."""
    found = [
        rule
        for rule in iter_alerts(groups)
        if rule["alert"] == alertname
        and all(rule["labels"].get(k) == v for k, v in labels.items())
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} {alertname} rules have labels {labels}")
    return found[0]


def expected_alert(rule: Mapping, expr_labels: Mapping[str, str]) -> dict:
    """``exp_labels``/``exp_annotations`` of a firing ``rule`` whose expression yields a
    series labelled ``expr_labels``: the rule's labels override the series' ones."""
    return {
        "exp_labels": {**expr_labels, **rule.get("labels", {})},
        "exp_annotations": dict(rule.get("annotations", {})),
    }


def burn_alert_expectation(slo: SLO, groups: Iterable[dict], **labels: str) -> dict:
    """A burn alert's expression keeps the recorded series' labels."""
    rule = find_alert(groups, c.BURN_ALERT, **{c.SLO_LABEL: slo.name, **labels})
    return expected_alert(rule, series_labels(slo))


def no_data_expectation(slo: SLO, groups: Iterable[dict]) -> dict:
    """``absent()`` only keeps the selector's equality matchers: slo and service."""
    rule = find_alert(groups, c.NO_DATA_ALERT, **{c.SLO_LABEL: slo.name})
    return expected_alert(rule, {c.SLO_LABEL: slo.name, c.SERVICE_LABEL: slo.service})


def alert_check(eval_time: float, alertname: str, expected: Sequence[Mapping]) -> dict:
    """Exactly ``expected`` (firing alerts) at ``eval_time`` seconds; [] means none."""
    return {
        "eval_time": format_duration(eval_time),
        "alertname": alertname,
        "exp_alerts": [dict(e) for e in expected],
    }


def promtool_group(
    name: str, interval: float, series: Mapping[str, str], checks: Sequence[dict]
) -> dict:
    return {
        "name": name,
        "interval": format_duration(interval),
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": list(checks),
    }


def promtool_file(
    rule_files: Sequence[str], evaluation_interval: str, groups: Sequence[dict]
) -> dict:
    """promtool evaluates every rule group at ``evaluation_interval`` and ignores the
    groups' own ``interval``, so callers pass the generated interval here."""
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": evaluation_interval,
        "tests": list(groups),
    }
