"""tokenslo.waiting.wait_until: bounded polling on the monotonic clock."""

from __future__ import annotations

import time

import pytest

from tokenslo.waiting import wait_until


def test_returns_the_first_truthy_value():
    answers = iter([None, 0, "", {"ready": True}])
    assert wait_until(lambda: next(answers), 5, 0.01, "readiness") == {"ready": True}


def test_an_immediate_success_does_not_sleep():
    began = time.monotonic()
    assert wait_until(lambda: 42, 5, 10, "the answer") == 42
    assert time.monotonic() - began < 1


def test_timeout_names_what_was_awaited_and_checks_at_the_deadline():
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s waiting for Prometheus"):
        wait_until(never, 0.3, 0.2, "Prometheus")
    assert 0.3 <= calls[-1] - began < 0.45  # the last check is at the deadline, not after
    assert len(calls) == 3  # at 0, 0.2 and 0.3 s


def test_zero_timeout_checks_once():
    calls = []
    with pytest.raises(TimeoutError):
        wait_until(lambda: calls.append(1), 0, 1, "nothing")
    assert calls == [1]


def test_an_exception_from_the_check_ends_the_wait():
    def dead() -> bool:
        raise RuntimeError("process exited")

    with pytest.raises(RuntimeError, match="process exited"):
        wait_until(dead, 5, 0.01, "a dead process")
