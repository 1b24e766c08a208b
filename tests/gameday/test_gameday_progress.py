"""The progress display: a redrawn line on a terminal, one line per phase otherwise."""

from __future__ import annotations

import io
import time

from tokenslo.gameday.progress import Progress, format_elapsed, status_line


def test_status_line():
    assert format_elapsed(125.7) == "02:05"
    line = status_line("running", "idp-outage", 1, 4, 65, 2)
    assert line == "[gameday 01:05]  running  experiment 1/4 idp-outage  alerts fired: 2"
    assert status_line("cleaning up", "", 0, 0, 3, None) == "[gameday 00:03]  cleaning up"


def test_without_a_terminal_one_plain_line_per_phase():
    out = io.StringIO()
    progress = Progress(out, tty=False, alerts_fired=lambda: 99)
    progress.phase("bringing up the target")
    progress.phase("running", "idp-outage", 1, 2)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue() and "\033" not in out.getvalue()
    assert lines[1].endswith("running  experiment 1/2 idp-outage")


def test_disabled_writes_nothing():
    out = io.StringIO()
    progress = Progress(out, enabled=False, tty=True)
    progress.phase("running", "x", 1, 1)
    progress.note("warning")
    progress.close()
    assert out.getvalue() == ""


def test_on_a_terminal_the_line_is_redrawn_with_the_alert_count(monkeypatch):
    import tokenslo.gameday.progress as mod

    monkeypatch.setattr(mod, "REDRAW_SECONDS", 0.02)
    monkeypatch.setattr(mod, "POLL_SECONDS", 0.0)
    out = io.StringIO()
    progress = Progress(out, tty=True, alerts_fired=lambda: 3)
    progress.phase("running", "jwks-unavailable", 2, 4)
    deadline = time.monotonic() + 5
    while "alerts fired: 3" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    progress.close()
    text = out.getvalue()
    assert "alerts fired: 3" in text and text.count("\r\033[K") >= 2
    assert text.endswith("\n") and text.count("\n") == 1  # one line, redrawn in place


def test_a_failing_alert_poll_never_breaks_the_display(monkeypatch):
    import tokenslo.gameday.progress as mod

    monkeypatch.setattr(mod, "REDRAW_SECONDS", 0.01)
    monkeypatch.setattr(mod, "POLL_SECONDS", 0.0)

    def boom() -> int:
        raise RuntimeError("prometheus down")

    out = io.StringIO()
    progress = Progress(out, tty=True, alerts_fired=boom)
    time.sleep(0.1)
    progress.close()
    assert "[gameday" in out.getvalue() and "alerts fired" not in out.getvalue()
