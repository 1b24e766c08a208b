"""Query planning: one batched query per distinct window, every SLO inside."""

from __future__ import annotations

import promql_parser
import pytest
from engine_slos import DAY, events_slo, good_events_slo, latency_slo, policy

from tokenslo.core.durations import format_duration
from tokenslo.engine import evaluator as ev
from tokenslo.errors import InputError

DEFAULT_WINDOWS = {30 * DAY, 3600, 300, 6 * 3600, 1800, DAY, 7200, 3 * DAY}


def _or_operands(node) -> list:
    """Flatten a chain of ``a or b or c`` into its operands."""
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "or":
        return _or_operands(node.lhs) + _or_operands(node.rhs)
    return [node]


def _tags(query: str) -> set[tuple[str, str]]:
    """(slo, kind) of every operand, checking each is label_replace(label_replace(...))."""
    found = set()
    for operand in _or_operands(promql_parser.parse(query)):
        assert isinstance(operand, promql_parser.Call)
        assert operand.func.name == "label_replace"
        inner = operand.args[0]
        assert isinstance(inner, promql_parser.Call) and inner.func.name == "label_replace"
        assert operand.args[1].val == ev.KIND_LABEL and inner.args[1].val == ev.SLO_LABEL
        assert [a.val for a in operand.args[3:]] == ["", ""]
        found.add((inner.args[2].val, operand.args[2].val))
    return found


def test_default_policy_needs_eight_windows():
    assert ev.status_windows(events_slo("a")) == DEFAULT_WINDOWS


def _expected_parts(w: str) -> list[str]:
    """By hand, from engine_slos' definitions: every SLI summed; errors 0 when absent;
    good-events and latency SLIs count errors as total minus good (the bucket at the
    threshold, which has no zero fallback: a missing bucket is no data, never a page);
    latency counts come from increase() of the histogram's series."""
    a = 'demo_requests_total{job="a"'
    b = 'demo_requests_total{job="b"'
    c_total = f'sum(increase(demo_duration_seconds_count{{job="c"}}[{w}]))'
    return [
        f"sum(rate({a}}}[{w}]))",
        f'(sum(rate({a},code=~"5.."}}[{w}])) or vector(0))',
        f"sum(increase({b}}}[{w}]))",
        f'sum(increase({b}}}[{w}])) - (sum(increase({b},code="200"}}[{w}])) or vector(0))',
        c_total,
        f'{c_total} - sum(increase(demo_duration_seconds_bucket{{job="c", le="0.25"}}[{w}]))',
    ]


def test_one_query_per_window_with_every_slo_inside():
    slos = [events_slo("a"), good_events_slo("b"), latency_slo("c")]
    plan = ev.plan_queries(slos)
    assert [w for w, _ in plan] == sorted(DEFAULT_WINDOWS)
    expected = {(s.name, k) for s in slos for k in ("errors", "total")}
    for window, query in plan:
        assert _tags(query) == expected
        for part in _expected_parts(format_duration(window)):
            assert part in query, part
        assert "{{window}}" not in query


def test_query_count_does_not_grow_with_slos():
    few = ev.plan_queries([events_slo(f"s{i}") for i in range(3)])
    many = ev.plan_queries([events_slo(f"s{i}") for i in range(150)])
    assert len(few) == len(many) == len(DEFAULT_WINDOWS)


def test_window_holds_only_the_slos_that_need_it():
    short = events_slo(
        "short", window=3600, alerting=policy(("page", 0.1, 600, 60, 0))
    )  # windows 1h, 10m, 1m
    month = events_slo("month")
    plan = ev.plan_queries([short, month])
    by_window: dict[float, set[str]] = {}
    for window, query in plan:
        by_window.setdefault(window, set()).update(name for name, _ in _tags(query))
    assert by_window[600] == {"short"} and by_window[60] == {"short"}
    assert by_window[3600] == {"short", "month"}
    assert by_window[30 * DAY] == {"month"}
    assert len(plan) == len(DEFAULT_WINDOWS | {600, 60})


def test_oversized_batches_split_by_size_never_per_slo():
    slos = [events_slo(f"slo{i:03d}") for i in range(40)]
    one = ev.window_queries(slos, 3600)
    assert len(one) == 1
    budget = len(one[0]) // 3 + 1
    parts = ev.window_queries(slos, 3600, max_chars=budget)
    assert 3 <= len(parts) <= 4  # by size: far fewer than 40
    assert all(len(p) <= budget for p in parts)
    union = set().union(*(_tags(p) for p in parts))
    assert union == _tags(one[0])
    for part in parts:  # an SLO's two terms are never split apart
        names = [n for n, _ in _tags(part)]
        assert all(names.count(n) == 2 for n in names)


def test_slo_name_is_escaped_as_promql_string():
    odd = events_slo('we"ird\\na$1me', job="x")
    [(name, _), _] = sorted(_tags(ev.window_queries([odd], 300)[0]))
    # parser unescapes \" and \\; $$ stays (label_replace turns it into a literal $)
    assert name == 'we"ird\\na$$1me'


def test_duplicate_names_are_rejected():
    with pytest.raises(InputError, match="duplicate SLO name 'a'"):
        ev.check_unique_names([events_slo("a"), latency_slo("a")])


def test_parse_vector_and_counts():
    result = [
        {"metric": {ev.SLO_LABEL: "a", ev.KIND_LABEL: "errors"}, "value": [1, "2"]},
        {"metric": {ev.SLO_LABEL: "a", ev.KIND_LABEL: "total"}, "value": [1, "100"]},
        {"metric": {ev.SLO_LABEL: "b", ev.KIND_LABEL: "errors"}, "value": [1, "0"]},
        {"metric": {ev.SLO_LABEL: "c", ev.KIND_LABEL: "total"}, "value": [1, "NaN"]},
        {"metric": {"unrelated": "x"}, "value": [1, "5"]},
    ]
    counts: ev.Counts = {}
    ev.counts_from_values(300, ev.parse_vector(result), counts)
    assert counts["a"][300] == ev.WindowCounts(2.0, 100.0)
    assert counts["b"][300] == ev.WindowCounts(0.0, None)
    assert counts["c"][300] == ev.WindowCounts(None, None)
    assert set(counts) == {"a", "b", "c"}
