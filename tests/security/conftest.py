"""Servers for the URL-input tests: a canary that must never be reached, and an allowed origin.

Both listen on the same port: the canary on 127.0.0.1 (and ::1), the origin on 127.0.0.2
(Linux routes all of 127/8 to the loopback interface). Tests allow ``127.0.0.2/32`` only,
so the origin is reachable and every spelling of 127.0.0.1 must still be refused; a
redirect from the origin to the canary is the "allowed host redirects to a refused one"
case. The canary counts accepted connections; the origin counts requests.
"""

from __future__ import annotations

import gzip
import http.server
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

ORIGIN_IP = "127.0.0.2"
ALLOW = f"{ORIGIN_IP}/32"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BOMB_DECODED = 64 * 1024 * 1024


# ------------------------------------------------------------------ canary
class _CanaryServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hits: list[Any], lock: threading.Lock, family: int) -> None:
        self.address_family = family
        self.hits, self.lock = hits, lock
        super().__init__(address, _CanaryHandler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:  # counted when accepted, before anything is read
            self.hits.append(client_address)
        return True


class _CanaryHandler(socketserver.BaseRequestHandler):
    """Answers like an image server, so that an unguarded fetch succeeds."""

    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            self.request.recv(65536)
            self.request.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanary"
            )
        except OSError:
            pass


@dataclass
class Canary:
    port: int
    hits: list[Any]
    lock: threading.Lock
    ipv6: bool

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.hits)

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()

    def wait_for_hit(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count


# ------------------------------------------------------------------ origin
_bomb: bytes | None = None


def bomb_body() -> bytes:
    global _bomb
    if _bomb is None:
        _bomb = gzip.compress(b"\0" * BOMB_DECODED, compresslevel=9)
    return _bomb


class _OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], requests: list[str], lock: threading.Lock) -> None:
        self.requests, self.lock = requests, lock
        self.sni: list[str | None] = []
        self.sent = 0
        self.busy = self.most_busy = 0
        super().__init__(address, _OriginHandler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.requests.append("connection")
        return True


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    """Routes: /img/<name>, /text, /notype, /gzip, /bomb, /corrupt-gzip, /endless, /drip,
    /declared-big, /status/<code>, /redirect?to=<url>[&hops=<n>], /hops/<n>,
    /bytes/<n> (n bytes of image/png), /slow/<seconds> (a PNG after that long; counted in
    ``busy`` meanwhile, the most at once in ``most_busy``)."""

    server: _OriginServer
    timeout = 2

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        try:
            self._route()
        except OSError:  # the client went away (cut at a limit): expected
            pass

    def _send(self, status: int, body: bytes = b"", ctype: str | None = "text/plain", **headers: str) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.sent += len(body)

    def _route(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path.startswith("/img/"):
            self._send(200, PNG, "image/png")
        elif path == "/text":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif path == "/notype":
            self._send(200, b"no type", None)
        elif path == "/gzip":
            self._send(200, gzip.compress(b"hello " * 1000), "text/plain", Content_Encoding="gzip")
        elif path == "/bomb":
            self._send(200, bomb_body(), "image/png", Content_Encoding="gzip")
        elif path == "/corrupt-gzip":
            self._send(200, b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 10, "text/plain", Content_Encoding="gzip")
        elif path == "/brotli":
            self._send(200, b"\x0b\x02\x80hello\x03", "text/plain", Content_Encoding="br")
        elif path == "/endless":
            self._stream(b"\xff" * 65536, pause=0.0, limit=30.0)
        elif path == "/drip":
            self._stream(b"x", pause=0.1, limit=30.0)
        elif path == "/declared-big":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(10 * 1024**3))
            self.end_headers()
            self._stream(b"x", pause=0.1, limit=5.0, headers=False)
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/redirect":
            hops = int(query.get("hops", ["0"])[0])
            target = query["to"][0]
            if hops > 0:
                target = f"/redirect?{url.query.replace(f'hops={hops}', f'hops={hops - 1}')}"
            self._send(302, b"", None, Location=target)
        elif path.startswith("/bytes/"):
            self._send(200, b"\x89" * int(path.rsplit("/", 1)[1]), "image/png")
        elif path.startswith("/slow/"):
            with self.server.lock:
                self.server.busy += 1
                self.server.most_busy = max(self.server.most_busy, self.server.busy)
            try:
                time.sleep(float(path.rsplit("/", 1)[1]))
                self._send(200, PNG, "image/png")
            finally:
                with self.server.lock:
                    self.server.busy -= 1
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            if left > 0:
                self._send(302, b"", None, Location=f"/hops/{left - 1}")
            else:
                self._send(200, PNG, "image/png")
        else:
            self._send(404, b"not found")

    def _stream(self, chunk: bytes, *, pause: float, limit: float, headers: bool = True) -> None:
        if headers:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.wfile.write(chunk)
            self.wfile.flush()
            with self.server.lock:
                self.server.sent += len(chunk)
            if pause:
                time.sleep(pause)


@dataclass
class Origin:
    ALLOW: ClassVar[str] = ALLOW
    """The ``fetch_allow_networks`` value that allows this origin (and nothing else)."""
    PNG: ClassVar[bytes] = PNG
    BOMB_DECODED: ClassVar[int] = BOMB_DECODED

    port: int
    requests: list[str]
    lock: threading.Lock
    server: _OriginServer
    scheme: str = "http"
    host: str = ORIGIN_IP

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.requests)

    @property
    def sent(self) -> int:
        with self.lock:
            return self.server.sent

    @property
    def most_busy(self) -> int:
        """The most /slow/ requests that were answered at once."""
        with self.lock:
            return self.server.most_busy

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.server.sent = 0
            self.server.most_busy = 0


def _serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[Canary, Origin]]:
    lock = threading.Lock()
    hits: list[Any] = []
    requests: list[str] = []
    for _ in range(20):  # find a port free on 127.0.0.1, ::1 and 127.0.0.2 at once
        servers: list[socketserver.BaseServer] = []
        try:
            v4 = _CanaryServer(("127.0.0.1", 0), hits, lock, socket.AF_INET)
            servers.append(v4)
            port = v4.server_address[1]
            origin = _OriginServer((ORIGIN_IP, port), requests, lock)
            servers.append(origin)
            ipv6 = True
            try:
                servers.append(_CanaryServer(("::1", port), hits, lock, socket.AF_INET6))
            except OSError:
                ipv6 = False
            break
        except OSError:
            for srv in servers:
                srv.server_close()
    else:
        pytest.fail("no port free on 127.0.0.1 and 127.0.0.2")
    threads = [_serve(srv) for srv in servers]
    yield Canary(port, hits, lock, ipv6), Origin(port, requests, lock, origin)
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    for thread in threads:
        thread.join(5)


@pytest.fixture
def canary(_servers: tuple[Canary, Origin]) -> Iterator[Canary]:
    c = _servers[0]
    c.reset()
    yield c


@pytest.fixture
def origin(_servers: tuple[Canary, Origin]) -> Iterator[Origin]:
    o = _servers[1]
    o.reset()
    yield o


# ------------------------------------------------------------------ TLS origin
@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a certificate for ``allowed.test`` signed by it (needs the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("tls")
    ext = d / "leaf.ext"
    ext.write_text(
        "subjectAltName=DNS:allowed.test\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    sign = ["-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext"]
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=modelaas test CA"],
        ["req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=allowed.test"],
        ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", *sign],
    ):
        subprocess.run(["openssl", *cmd], cwd=d, check=True, capture_output=True)
    return {"ca": d / "ca.pem", "cert": d / "leaf.pem", "key": d / "leaf.key"}


@pytest.fixture
def tls_origin(tls_files: dict[str, Path]) -> Iterator[Origin]:
    """The origin's routes over https on 127.0.0.2, with a certificate for ``allowed.test`` only."""
    lock = threading.Lock()
    server = _OriginServer((ORIGIN_IP, 0), [], lock)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])

    def record_sni(sock: Any, name: str | None, _ctx: Any) -> None:
        server.sni.append(name)

    ctx.sni_callback = record_sni
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = _serve(server)
    yield Origin(server.server_address[1], server.requests, lock, server, scheme="https")
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``fake_dns(name, first, then=None)``: ``name`` resolves to ``first``, later to ``then``.

    Returns the list of answers given, one per lookup of ``name``.
    """
    real = socket.getaddrinfo
    answers: list[str] = []

    def install(name: str, first: str, then: str | None = None) -> list[str]:
        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if (host.decode() if isinstance(host, bytes) else host) != name:  # anyio passes bytes
                return real(host, port, *args, **kwargs)
            ip = first if not answers or then is None else then
            answers.append(ip)
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, int(port), 0, 0) if family == socket.AF_INET6 else (ip, int(port))
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return answers

    return install
