"""Exact latency counts and the worker → master merge."""

from __future__ import annotations

import json

from tokenslo.load.recorder import NameStats, Recorder, error_text


def test_latency_rounds_up_to_the_microsecond():
    stats = NameStats()
    stats.add(49.9999, None)  # 49999.9 µs → 50000 µs: still at or under 50 ms
    stats.add(50.0001, None)  # 50000.1 µs → 50001 µs: over
    stats.add(1.0, "HTTP 503")
    assert stats.at_or_under(0.05) == 1
    assert (stats.requests, stats.failures, stats.successes) == (3, 1, 2)


def test_merge_of_worker_reports_equals_one_recorder_fed_everything():
    a, b, whole = Recorder(), Recorder(), Recorder()
    samples = [
        ("jwks", 3.2, None, 10.0),
        ("jwks", 7.0, "HTTP 500", 11.0),
        ("revoke", 2.5, None, 9.5),
    ]
    for index, (name, ms, err, start) in enumerate(samples * 5):
        (a if index % 2 else b).record(name, ms, err, start)
        whole.record(name, ms, err, start)
    sent = {"w1": a.total, "w2": b.total}
    master = Recorder()
    # workers send drained JSON with every report; reports may arrive more than once per worker
    master.merge(Recorder.from_json(json.loads(json.dumps(a.drain()))), worker="w1")
    master.merge(Recorder.from_json(json.loads(json.dumps(b.drain()))), worker="w2")
    master.merge(Recorder.from_json(a.drain()), worker="w1")  # empty after draining
    assert master.to_json()["names"] == whole.to_json()["names"]
    assert (master.first_start, master.last_end) == (whole.first_start, whole.last_end)
    assert master.workers == sent and set(sent.values()) == {7, 8}
    assert sum(master.workers.values()) == master.total == 15
    assert a.total == 0 and a.first_start is None


def test_round_trip_through_a_file(tmp_path):
    rec = Recorder()
    rec.record("api:resource", 12.3456, None, start=5.0)
    rec.record("api:resource", 1.0, "HTTP 401 invalid_token", start=6.0)
    rec.write(tmp_path / "r.json")
    back = Recorder.read(tmp_path / "r.json")
    assert back.to_json() == rec.to_json()
    assert back.names["api:resource"].errors == {"HTTP 401 invalid_token": 1}


def test_error_text_is_one_short_line():
    assert error_text(None) is None
    assert error_text(ValueError("a\nb")) == "a"
    assert len(error_text(RuntimeError("x" * 500))) == 160


def test_unsent_reasons_and_the_stop_reason_survive_json_and_merging():
    worker = Recorder()
    worker.note_unsent("token:refresh_token", "no refresh tokens")
    master = Recorder()
    master.merge(Recorder.from_json(worker.drain()), worker="w1")
    master.stopped = "stopped early: because"
    back = Recorder.from_json(json.loads(json.dumps(master.to_json())))
    assert back.unsent == {"token:refresh_token": "no refresh tokens"}
    assert back.stopped == "stopped early: because"
    assert worker.unsent == {} and worker.stopped is None  # drained
