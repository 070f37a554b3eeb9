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


# ===================================================================== trailers
PREDICT = "/v2/models/v2-basic/predict/"
CHUNKED_FORM = (
    f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    "Transfer-Encoding: chunked\r\n\r\n7\r\ncount=3\r\n0\r\n"
).encode()


def stream_then_read(port: int, first: bytes, more: bytes, most: int) -> tuple[bytes, int]:
    """Send ``first``, then ``more`` until ``most`` bytes or the server stops taking them;
    answer what the server said and how many bytes of ``more`` went out."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=HELD) as sock:
        sock.sendall(first)
        try:
            while sent < most:
                sock.sendall(more)
                sent += len(more)
        except OSError:  # closed by the server
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def test_a_streamed_trailer_is_cut_at_the_header_limit(strict):
    """Finding: trailers had no size limit and were parsed with quadratic cost on the event
    loop (one chunked request streaming a trailer pushed /healthz to 7 s and 300 MB)."""
    answer, sent = stream_then_read(strict.port, CHUNKED_FORM + b"X-Trailer: ", b"a" * 16384, 64 * 1024 * 1024)
    print(f"\na streamed trailer: the server stopped taking it after {sent / 1024 / 1024:.1f} MiB")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:300]
    assert b"trailers are larger than 8192 bytes" in answer and b"--max-header-size" in answer
    assert sent < 64 * 1024 * 1024
    # a route that answers without reading the body: answered, then the connection is closed
    healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: "
    answer, sent = stream_then_read(strict.port, healthz, b"a" * 16384, 64 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 200 ") and sent < 64 * 1024 * 1024, (answer[:300], sent)


def test_many_trailers_and_long_chunk_extensions_are_cut_too(strict):
    many, _ = stream_then_read(strict.port, CHUNKED_FORM, b"X-T: 1\r\n" * 1024, 16 * 1024 * 1024)
    assert many.startswith(b"HTTP/1.1 431 "), many[:300]
    head = CHUNKED_FORM.removesuffix(b"7\r\ncount=3\r\n0\r\n") + b"7;ext="
    extension, _ = stream_then_read(strict.port, head, b"e" * 16384, 64 * 1024 * 1024)
    assert extension.startswith((b"HTTP/1.1 431 ", b"HTTP/1.1 400 ")), extension[:300]


def test_small_trailers_are_accepted_and_the_body_is_served(strict):
    with socket.create_connection(("127.0.0.1", strict.port), timeout=HELD) as sock:
        sock.sendall(CHUNKED_FORM + b"X-Checksum: abc\r\n\r\n")
        answer = b""
        while b'"count":3' not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_many_pipelined_requests_are_all_answered_not_refused_as_one_big_head(strict):
    """Finding: more than 64 KiB of pipelined requests got a false 431 (the bytes of the
    earlier requests in one read were counted into the head of the last)."""
    count = 2000
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    data = request * (count - 1) + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", strict.port), timeout=HELD) as sock:
        for start in range(0, len(data), 20_005):  # reads that end inside a request
            sock.sendall(data[start : start + 20_005])
            time.sleep(0.05)
        answers = b""
        try:
            while chunk := sock.recv(65536):
                answers += chunk
        except ConnectionResetError:
            pass
    assert b" 431 " not in answers
    assert answers.count(b"HTTP/1.1 200 ") == count
