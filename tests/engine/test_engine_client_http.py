"""PromClient's HTTP edge against a loopback stub: request shape and error mapping.

The stub stands in for failure modes a healthy Prometheus will not produce on
demand (5xx, a non-API server); real-Prometheus behaviour is covered in
test_engine_prometheus.py.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from support import JSONStub, serving
from tokenslo.errors import InputError, UnavailableError
from tokenslo.prometheus.client import PromClient
from tokenslo.waiting import wait_until


class _Stub(JSONStub):
    reply: tuple[int, str] = (200, "{}")
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        type(self).seen.append(
            {
                "path": urlsplit(self.path).path,
                "url_query": urlsplit(self.path).query,
                "form": parse_qs(body),
            }
        )
        self.answer(*type(self).reply)


@pytest.fixture
def stub():
    _Stub.seen = []
    with serving(_Stub) as url:
        yield _Stub, url


def _ok(result_type: str, result) -> str:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}})


def test_queries_go_in_the_post_body_and_are_counted(stub):
    handler, url = stub
    handler.reply = (200, _ok("vector", [{"metric": {"a": "b"}, "value": [1, "2"]}]))
    client = PromClient(url)
    long_query = "sum(x)" + " or sum(x)" * 5000  # ~50 kB: too long for many URL limits
    assert client.query(long_query, 1700000000.25) == [{"metric": {"a": "b"}, "value": [1, "2"]}]
    handler.reply = (200, _ok("matrix", []))
    assert client.query_range("up", 1000.5, 2000.5, 15) == []
    assert client.queries == 2
    instant, ranged = handler.seen
    assert instant["path"] == "/api/v1/query" and instant["url_query"] == ""
    assert instant["form"] == {"query": [long_query], "time": ["1700000000.250"]}
    assert ranged["path"] == "/api/v1/query_range"
    assert ranged["form"] == {
        "query": ["up"],
        "start": ["1000.500"],
        "end": ["2000.500"],
        "step": ["15.000"],
        "nocache": ["1"],  # VictoriaMetrics would otherwise move the grid to step multiples
    }


def test_scalar_result_becomes_one_sample(stub):
    handler, url = stub
    handler.reply = (200, _ok("scalar", [1, "3"]))
    assert PromClient(url).query("1+2", 1) == [{"metric": {}, "value": [1, "3"]}]


def test_server_errors_are_unavailable(stub):
    handler, url = stub
    handler.reply = (503, json.dumps({"status": "error", "errorType": "timeout", "error": "slow"}))
    client = PromClient(url)
    with pytest.raises(UnavailableError) as info:
        client.query("up", 1)
    assert str(info.value) == f"Prometheus at {url} answered HTTP 503 (timeout: slow)"
    assert len(handler.seen) == 1  # no retry on a status: fail fast


def test_rejected_queries_are_input_errors_naming_the_query(stub):
    handler, url = stub
    error = {"status": "error", "errorType": "execution", "error": "many-to-many matching"}
    handler.reply = (422, json.dumps(error))
    query = "a / on() b" + " " * 300 + "TAIL"
    with pytest.raises(InputError) as info:
        PromClient(url).query(query, 1)
    message = str(info.value)
    assert message.startswith("Prometheus rejected the query (execution: many-to-many matching)")
    assert "a / on() b" in message and "TAIL" not in message  # first 200 chars only
    assert info.value.exit_code == 2


def test_non_api_answer_is_unavailable(stub):
    handler, url = stub
    handler.reply = (200, "<html>grafana</html>")
    with pytest.raises(UnavailableError, match="non-API response"):
        PromClient(url).query("up", 1)


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://host", "http://", "prometheus"])
def test_bad_url_is_input_error(url):
    with pytest.raises(InputError) as info:
        PromClient(url)
    assert info.value.field == "--prometheus" and info.value.exit_code == 2


def test_credentials_in_the_url_never_reach_messages():
    client = PromClient("http://admin:s3cret@127.0.0.1:1")
    with pytest.raises(UnavailableError) as info:
        client.query("up", 1)
    assert "s3cret" not in str(info.value) and "http://***@127.0.0.1:1" in str(info.value)


class _EchoStub(JSONStub):
    """Answers each range query with one series naming the query; holds a query named
    ``hold*`` until ``release`` is set, and rejects ``bad``."""

    release = threading.Event()
    in_flight = 0
    most_in_flight = 0
    encodings: list[str] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server naming
        cls = type(self)
        body = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        query = body["query"][0]
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
            cls.encodings.append(self.headers.get("Accept-Encoding", ""))
        try:
            if query.startswith("hold"):
                cls.release.wait(10)
            if query == "bad":
                error = {"status": "error", "errorType": "bad_data", "error": "parse error"}
                self.answer(400, json.dumps(error))
                return
            self.answer(200, _ok("matrix", [{"metric": {"q": query}, "values": [[1, "1"]]}]))
        finally:
            with cls.lock:
                cls.in_flight -= 1


@pytest.fixture
def echo():
    _EchoStub.release = threading.Event()
    _EchoStub.in_flight = _EchoStub.most_in_flight = 0
    _EchoStub.encodings = []
    with serving(_EchoStub) as url:
        yield _EchoStub, url


def test_parallel_range_queries_answer_in_request_order(echo):
    handler, url = echo
    client = PromClient(url)
    names = [f"hold{i}" for i in range(4)] + [f"q{i}" for i in range(7)]
    got: list[str] = []

    def consume() -> None:
        answers = client.query_ranges(((name, 0, 60, 15) for name in names), workers=3)
        got.extend(series["metric"]["q"] for result in answers for series in result)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        # the first three held queries are in flight together, the fourth waits for a worker
        wait_until(lambda: handler.in_flight == 3, timeout=10, interval=0.01, what="3 queries")
        assert got == []
    finally:
        handler.release.set()
        consumer.join(timeout=10)
    assert got == names and client.queries == len(names)
    assert handler.most_in_flight == 3


def test_parallel_range_queries_raise_the_first_rejection(echo):
    handler, url = echo
    handler.release.set()
    client = PromClient(url)
    answers = client.query_ranges([("q0", 0, 60, 15), ("bad", 0, 60, 15), ("q2", 0, 60, 15)])
    assert next(answers)[0]["metric"] == {"q": "q0"}
    with pytest.raises(InputError, match="bad_data: parse error"):
        next(answers)


def test_loopback_answers_come_uncompressed(echo):
    handler, url = echo
    handler.release.set()
    PromClient(url).query_range("q", 0, 60, 15)
    list(PromClient(url).query_ranges([("q", 0, 60, 15)]))
    assert handler.encodings == ["identity", "identity"]  # no gzip work on one machine
