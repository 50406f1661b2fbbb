"""A real server cuts off clients that send too slowly (slowloris), and keeps serving the others meanwhile."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import ServerProcess

TIMEOUT_S = 1.0


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection (None if it was still open after `seconds`)."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(4096):  # an answer (e.g. 408) is allowed before the close
            pass
    except TimeoutError:
        return None
    return time.monotonic() - started


@pytest.mark.e2e
def test_slow_heads_and_stalled_bodies_are_cut_off(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env={"UMBRELLA_CLIENT_TIMEOUT_S": str(TIMEOUT_S)}).start()
    port = server.port
    assert port is not None
    silent = socket.create_connection(("127.0.0.1", port))  # connects, says nothing
    half_head = socket.create_connection(("127.0.0.1", port))
    half_head.sendall(b"POST /collections/x/search HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b'PUT /collections/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"dim"')
    dripping = socket.create_connection(("127.0.0.1", port))
    dripping.sendall(b"GET /healthz HTTP/1.1\r\n")
    started, cut_after = time.monotonic(), None
    while cut_after is None and time.monotonic() - started < 5 * TIMEOUT_S:
        time.sleep(TIMEOUT_S / 4)  # a header byte every quarter timeout: never idle, never done
        try:
            dripping.sendall(b"X")
        except OSError:  # broken pipe or reset: the server hung up
            cut_after = time.monotonic() - started
    assert cut_after is not None and cut_after < 3 * TIMEOUT_S, "a head dripped byte by byte was never cut"
    dripping.close()
    with server.client() as client:  # meanwhile everyone else is served
        assert client.get("/healthz").status_code == 200
    for name, sock in (("silent", silent), ("half head", half_head), ("stalled body", stalled)):
        assert _closed_within(sock, 4 * TIMEOUT_S) is not None, f"{name} connection still open"
        sock.close()
    with server.client() as client:
        assert client.put("/collections/ok", json={"dim": 2}).status_code == 201
    assert "request head too slow" in server.log_text() and "request body stalled" in server.log_text()


@pytest.mark.e2e
def test_a_body_dripped_just_fast_enough_is_cut_at_ten_timeouts(server_factory: Callable[..., ServerProcess]) -> None:
    timeout = 0.3
    server = server_factory(env={"UMBRELLA_CLIENT_TIMEOUT_S": str(timeout)}).start()
    assert server.port is not None
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"PUT /collections/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    started, cut_after = time.monotonic(), None
    while cut_after is None and time.monotonic() - started < 30 * timeout:
        time.sleep(timeout / 3)
        try:
            sock.sendall(b" ")
        except OSError:
            cut_after = time.monotonic() - started
    sock.close()
    assert cut_after is not None and 10 * timeout <= cut_after < 20 * timeout, cut_after
    assert "request body too slow" in server.log_text()
