"""The battery, connection part: no connection state without a deadline, no unbounded parsing.

A real server with short deadlines (--header-timeout 1, --keep-alive-timeout 1,
--body-timeout 2); raw sockets on loopback. Every check gives up after ``HELD`` seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import psutil
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

HELD = 15.0
"""A connection still open this long after the client went quiet counts as held forever."""
HEALTHZ_WITH_BODY = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"


@pytest.fixture
def strict(server):
    return server(
        "--model",
        "v2_basic",
        "--max-header-size",
        "8192",
        "--header-timeout",
        "1",
        "--keep-alive-timeout",
        "1",
        "--body-timeout",
        "2",
    )


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer to /healthz (its head and its body may come in two reads)."""
    answer = b""
    while not answer.endswith(b'{"status":"ok"}'):
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def held_for(port: int, first: bytes, then: Callable[[socket.socket], None] = lambda s: None) -> float:
    """Send ``first``, read the answer, run ``then``; seconds until the server closes (inf: never)."""
    with socket.create_connection(("127.0.0.1", port), timeout=HELD) as sock:
        sock.sendall(first)
        assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
        quiet = time.monotonic()
        stop = threading.Event()
        worker = threading.Thread(target=lambda: _ignore_errors(then, sock, stop), daemon=True)
        worker.start()
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            return float("inf")
        except ConnectionResetError:
            pass
        finally:
            stop.set()
        return time.monotonic() - quiet


def _ignore_errors(then: Callable[[socket.socket], None], sock: socket.socket, stop: threading.Event) -> None:
    try:
        then(sock)
    except OSError:
        pass


def drip(data: bytes, every: float = 0.3, times: int = 40) -> Callable[[socket.socket], None]:
    def send(sock: socket.socket) -> None:
        for _ in range(times):
            sock.sendall(data)
            time.sleep(every)

    return send


@pytest.mark.parametrize(
    "then",
    [
        pytest.param(lambda s: s.sendall(b"x"), id="one-byte-of-the-unread-body-then-silence"),
        pytest.param(lambda s: s.sendall(b"x" * 1000), id="the-whole-unread-body-then-silence"),
        pytest.param(drip(b"x"), id="the-unread-body-dripped"),
    ],
)
def test_the_unread_body_of_an_answered_request_cannot_hold_the_connection(strict, then):
    """Finding: /healthz with Content-Length: 1000, the answer read, one byte sent, then
    silence: no header, body or keep-alive deadline fired, and the connection stayed for good."""
    took = held_for(strict.port, HEALTHZ_WITH_BODY, then)
    assert took < HELD, "the connection was held open"


@pytest.mark.parametrize(
    "then",
    [
        pytest.param(lambda s: s.sendall(b"\r\n"), id="a-blank-line-then-silence"),
        pytest.param(drip(b"\r\n"), id="blank-lines-dripped"),
    ],
)
def test_bytes_between_requests_do_not_hold_an_idle_connection(strict, then):
    took = held_for(strict.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", then)
    assert took < HELD, "the connection was held open"


def test_a_thousand_such_connections_are_all_closed_and_their_descriptors_freed(strict):
    (worker,) = [
        p for p in psutil.Process(strict.proc.pid).children() if "resource_tracker" not in " ".join(p.cmdline())
    ]
    baseline = worker.num_fds()
    socks = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", strict.port), timeout=HELD)
            sock.sendall(HEALTHZ_WITH_BODY)
            socks.append(sock)
        for sock in socks:
            read_answer(sock)
            sock.sendall(b"x")
        peak = worker.num_fds()
        wait_for(lambda: worker.num_fds() <= baseline + 5, timeout=HELD, what="the connections to be closed")
        closed = 0
        for sock in socks:
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
    finally:
        for sock in socks:
            sock.close()
    print(f"\n1000 held connections: server fds {baseline} -> {peak} -> {worker.num_fds()}")
    assert closed == 1000
