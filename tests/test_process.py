"""Starting real Prometheus on a picked free port that another process takes first."""

from __future__ import annotations

import socket

import pytest
import requests

from tokenslo.prometheus import process

pytestmark = pytest.mark.prometheus


def test_a_picked_port_taken_before_prometheus_binds_is_picked_again(tmp_path, monkeypatch):
    real_free_port = process.free_port
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        picks = iter([taken])  # the first pick is stolen, as by a parallel test
        monkeypatch.setattr(process, "free_port", lambda: next(picks, None) or real_free_port())
        prom = process.start_prometheus({"global": {"scrape_interval": "15s"}}, tmp_path / "p")
        try:
            assert prom.url != f"http://127.0.0.1:{taken}"
            assert requests.get(prom.url + "/-/ready", timeout=5).status_code == 200
            assert "address already in use" in prom.log_path.read_text().lower()
        finally:
            prom.stop()


def test_a_port_the_caller_chose_is_never_swapped(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(process.UnavailableError, match="exited"):
            process.start_prometheus({}, tmp_path / "p", port=port)
