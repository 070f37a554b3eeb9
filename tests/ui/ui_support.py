"""Helpers for the browser tests: waiting for a server, serving an app in a thread, making a PNG."""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become ready")


def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (30, 120, 220)) -> bytes:
    """A small valid PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@contextlib.contextmanager
def app_server(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread on a free loopback port; yields its URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz")
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
