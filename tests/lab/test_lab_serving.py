"""Header size and read deadlines of every lab service, over real sockets (issue 11, item 11).

Before, a 16 MB request header was parsed and a slowloris connection was held
for as long as the client liked. The lab's services now run with
``tokenslo.lab.serving.server_options()``; the threaded tests use a short read
deadline, the subprocess test the real entry points with their defaults.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_fixtures import subprocess_lab
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from support import ServedApp
from tokenslo.lab.serving import MAX_HEADER_BYTES, server_options

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

READ_SECONDS = 1.0
GUARD_SECONDS = 30  # socket timeout: only bounds a broken test, never asserted on


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{len(await request.body())}")


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    app = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])
    server = ServedApp(app, **server_options(READ_SECONDS)).start()
    yield server
    server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_SECONDS)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what the server lets us send; it may close early (that is the point)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def test_a_complete_request_is_answered_on_a_kept_alive_connection(served: ServedApp) -> None:
    with connect(served.port) as sock:
        for _ in range(2):
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("size", [4 * MAX_HEADER_BYTES, 16 * 1024 * 1024])
def test_an_oversized_header_is_refused(served: ServedApp, size: int) -> None:
    with connect(served.port) as sock:
        send_quietly(sock, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
        answer = read_until_closed(sock)
    assert not answer.startswith(b"HTTP/1.1 200")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connect and say nothing
        b"GET /echo HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",  # body
    ],
    ids=["silent", "slow-headers", "slow-body"],
)
def test_a_slow_request_is_cut_off(served: ServedApp, partial: bytes) -> None:
    with connect(served.port) as sock:
        sock.sendall(partial)
        # the server closes; recv returns b"" (a guard timeout would raise instead)
        assert b"HTTP/1.1 200" not in read_until_closed(sock)


def test_the_deadline_restarts_for_each_request_on_a_connection(served: ServedApp) -> None:
    with connect(served.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # the second one stalls
        assert read_until_closed(sock) == b""


@pytest.mark.slow
def test_entry_points_refuse_big_headers_and_cut_slow_clients(tmp_path: Path) -> None:
    with subprocess_lab(tmp_path) as lab, contextlib.ExitStack() as stack:
        ports = [int(url.rsplit(":", 1)[1]) for url in (lab.idp_url, lab.gateway_url)]
        # Both slow clients stall at once, so their real 10 s deadlines run side by side.
        stalled = [stack.enter_context(connect(port)) for port in ports]
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for port in ports:
            with connect(port) as sock:
                send_quietly(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 10**6)
                assert not read_until_closed(sock).startswith(b"HTTP/1.1 200")
        assert [read_until_closed(sock) for sock in stalled] == [b"", b""]
