"""PromClient's HTTP edge against a loopback stub: request shape and error mapping.

The stub stands in for failure modes a healthy Prometheus will not produce on
demand (5xx, a non-API server); real-Prometheus behaviour is covered in
test_engine_prometheus.py.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from support import JSONStub, serving
from tokenslo.errors import InputError, UnavailableError
from tokenslo.prometheus.client import PromClient


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
