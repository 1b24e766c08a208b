from __future__ import annotations

import pytest

from tokenslo.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("28d", 28 * 86400), ("250ms", 0.25), ("1w", 604800)],
)
def test_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "m5", "1 h", "-5m", "5x", None, 5])
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(300, "5m"), (5400, "1h30m"), (30 * 86400, "30d"), (5, "5s"), (0.25, "250ms"), (0, "0s"),
     (300 / 60, "5s"), (3600 / 7, "8m34s286ms")],
)
def test_format(seconds, text):
    assert format_duration(seconds) == text
    if seconds:
        assert parse_duration(text) == pytest.approx(seconds, abs=0.001)
