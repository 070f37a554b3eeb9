"""One serving process: import the models, build the app, serve the shared socket.

It tells its supervisor ``("ready",)`` once the models are warm, or
``("fatal", message, traceback)`` if they cannot be loaded or warmed, then exits 3.

uvicorn is given the connection limits of the settings: ``keep_alive_timeout`` for idle
connections between requests, and, through :func:`bounded_http_protocol`, a size cap
(``max_header_size``, 431) and a deadline (``header_timeout``, 408) for request heads,
which uvicorn's httptools protocol does not have on its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

from modelaas.errors import ModelLoadError
from modelaas.settings import Settings

FATAL_EXIT = 3
log = logging.getLogger("modelaas.serve")


def worker_main(settings: Settings, sock: socket.socket, conn: Connection, server_id: str) -> None:
    _die_with_parent()
    from modelaas.serve.logs import configure_logging

    configure_logging(settings.log_level)
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    try:
        import uvicorn

        from modelaas.runtime import Runtime
        from modelaas.web.app import create_app

        runtime = Runtime.load(settings)
    except ModelLoadError as exc:
        _send(conn, ("fatal", exc.message, exc.traceback_text or ""))
        sys.exit(FATAL_EXIT)

    failed: list[ModelLoadError] = []
    server: Any = None

    def on_fatal(exc: ModelLoadError) -> None:
        failed.append(exc)
        _send(conn, ("fatal", exc.message, exc.traceback_text or ""))
        if server is not None:
            server.should_exit = True

    def on_ready() -> None:
        # What start-up built (frameworks, the models) lives as long as the process: keep it out of
        # the collector's full scans, which otherwise stop a busy server for tens of milliseconds.
        gc.freeze()
        _send(conn, ("ready",))

    def on_settled() -> None:
        gc.freeze()  # again: the job store, loaded after the first freeze, lives as long

    app = create_app(
        settings,
        runtime=runtime,
        on_fatal=on_fatal,
        on_ready=on_ready,
        on_settled=on_settled,
        server_id=server_id,
        on_job_submitted=lambda: _send(conn, ("job-submitted",)),
    )
    config = uvicorn.Config(
        app,
        lifespan="on",
        loop="auto",
        http=bounded_http_protocol(settings.max_header_size, settings.header_timeout) or "h11",
        log_config=None,
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        h11_max_incomplete_event_size=settings.max_header_size,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    sys.exit(FATAL_EXIT if failed else 0)


def bounded_http_protocol(max_head: int, head_timeout: float) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol with a cap on request heads and a deadline for them.

    * A request line plus headers larger than ``max_head`` bytes answers 431 and the
      connection is closed (without it, httptools buffers headers of any size).
    * A request head that takes longer than ``head_timeout`` seconds to arrive answers 408;
      a new connection that sends nothing for that long is closed (slow-loris clients).

    None when httptools is not installed (uvicorn's h11 protocol then enforces the size).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return None

    too_large = f"The request line and headers are larger than {max_head} bytes (see --max-header-size)."
    too_slow = f"The request headers did not arrive within {head_timeout:g} s (see --header-timeout)."

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        # Head bytes are counted twice: as parsed (the URL and each complete header), and
        # as received while the head is unfinished (httptools buffers a header until its end).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._in_head, self._begun, self._refused = True, False, False
            self._received = self._parsed = 0
            self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(head_timeout, self._head_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self._in_head and not self._refused and not self.transport.is_closing():
                self._received += len(data)
                if self._received > max_head:
                    self._refuse(431, "Request Header Fields Too Large", too_large)

        # parser callbacks: after a refusal the rest of the bytes already read are ignored
        def on_message_begin(self) -> None:
            if self._refused:
                return
            super().on_message_begin()
            self._in_head, self._begun = True, True
            self._received = self._parsed = 0
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_late)

        def on_url(self, url: bytes) -> None:
            self._parsed += len(url)
            if not self._refused:
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._parsed += len(name) + len(value) + 4
            if not self._refused:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._refused:
                return
            self._in_head = False
            self._stop_head_timer()
            if self._parsed > max_head:
                self._refuse(431, "Request Header Fields Too Large", too_large)
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refused:
                super().on_message_complete()

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if not self._in_head or self._refused or self.transport.is_closing():
                return
            if not self._begun:  # a connection that never said anything
                self.transport.close()
                return
            self._refuse(408, "Request Timeout", too_slow)

        def _refuse(self, status: int, reason: str, message: str) -> None:
            self._refused = True
            self._stop_head_timer()
            request_id = uuid.uuid4().hex  # answered before routing, like every answer: with an id
            log.info("[request %s] %s %s: %s", request_id, status, reason, message)
            body = json.dumps({"message": message, "request_id": request_id}).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"x-request-id: {request_id}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode("ascii") + body)
            self.transport.close()

    return BoundedHttpToolsProtocol


def _send(conn: Connection, message: tuple[Any, ...]) -> None:
    try:
        conn.send(message)
    except (OSError, ValueError):  # the supervisor is gone; we are about to be too
        pass


def _die_with_parent() -> None:
    """Exit when the supervisor dies, even by SIGKILL (no orphaned serving processes)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM) == 0:  # PR_SET_PDEATHSIG (Linux)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
                os._exit(1)
            time.sleep(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
