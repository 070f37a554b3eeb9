"""uvicorn's httptools protocol with a limit on every request head and a deadline on every wait.

uvicorn's httptools protocol buffers request heads and trailers of any size and, in some
states, waits for a client for ever. :func:`bounded_http_protocol` closes those gaps; each
state of a connection in which the server waits on the client has a deadline:

==============================================  ==================================================
the connection...                                deadline
==============================================  ==================================================
is new, or a request head is arriving            ``head_timeout``: 408 (or closed if it said nothing)
has a request whose body the app reads           ``body_timeout`` (the app's :class:`_BodyDeadline`)
has its answer sent, the request's body unread   ``body_timeout`` from the answer, then closed
is idle between requests (blank lines included)  ``idle_timeout`` (uvicorn's keep-alive), then closed
==============================================  ==================================================

Bytes are bounded too: a request line plus headers beyond ``max_head`` answers 431, and so
do trailers of a chunked body (with chunk extensions) beyond ``max_head``. Trailers are
never handed to the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from modelaas.serve.writes import CoalescingTransport

log = logging.getLogger("modelaas.serve")

CHUNK_FRAMING = 32
"""Bytes allowed per chunk of a chunked body for its size line and line ends."""


def bounded_http_protocol(
    max_head: int, head_timeout: float, *, body_timeout: float = 60.0, idle_timeout: float = 5.0
) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol with the limits above.

    * A request line plus headers larger than ``max_head`` bytes answers 431 and the
      connection is closed (without it, httptools buffers headers of any size); so do
      trailers (and chunk extensions) larger than ``max_head``.
    * A request head that takes longer than ``head_timeout`` seconds to arrive answers 408;
      a new connection that sends nothing for that long is closed (slow-loris clients).
    * Once a request is answered, the rest of its body must arrive within ``body_timeout``
      seconds, and a connection between requests is closed after ``idle_timeout`` seconds
      even if it keeps sending blank lines.

    None when httptools is not installed (uvicorn's h11 protocol then enforces the size).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return None

    too_large = f"The request line and headers are larger than {max_head} bytes (see --max-header-size)."
    trailers_too_large = f"The request's trailers are larger than {max_head} bytes (see --max-header-size)."
    too_slow = f"The request headers did not arrive within {head_timeout:g} s (see --header-timeout)."

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        # Head bytes are counted twice: as parsed (the URL and each complete header), and as
        # received while the head is unfinished (httptools buffers a header until its end).
        # Bytes of a call in which a message began are not counted as received (they may
        # belong to the previous message); the parsed count catches those once complete.
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
            self._draining = False
            self._in_head, self._begun, self._refused = True, False, False
            self._message_open = self._began_now = False
            self._received = self._parsed = 0
            self._after_head = self._body_bytes = self._chunks = self._trailers = 0
            self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(head_timeout, self._head_late)
            self._wait_timer: asyncio.TimerHandle | None = None
            """The deadline of an unread body after the answer, or of an idle connection."""

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            self._stop_wait_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._began_now = False
            super().data_received(data)
            if self._refused or self.transport.is_closing():
                return
            if not self._began_now:
                if self._in_head:
                    self._received += len(data)
                    if self._received > max_head:
                        self._refuse(431, "Request Header Fields Too Large", too_large)
                        return
                elif self._message_open:
                    self._after_head += len(data)
                    framing = self._after_head - self._body_bytes - CHUNK_FRAMING * self._chunks
                    if framing > max_head:
                        self._refuse(431, "Request Header Fields Too Large", trailers_too_large)
                        return
            self._watch()

        # parser callbacks: after a refusal the rest of the bytes already read are ignored
        def on_message_begin(self) -> None:
            if self._refused:
                return
            super().on_message_begin()
            self._in_head, self._begun, self._message_open, self._began_now = True, True, True, True
            self._received = self._parsed = 0
            self._stop_wait_timer()
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_late)

        def on_url(self, url: bytes) -> None:
            self._parsed += len(url)
            if not self._refused:
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            if not self._in_head:  # a trailer: counted, never given to the app
                self._trailers += len(name) + len(value) + 4
                if self._trailers > max_head and not self._refused:
                    self._refuse(431, "Request Header Fields Too Large", trailers_too_large)
                return
            self._parsed += len(name) + len(value) + 4
            if not self._refused:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._refused:
                return
            self._in_head = False
            self._after_head = self._body_bytes = self._chunks = self._trailers = 0
            self._stop_head_timer()
            if self._parsed > max_head:
                self._refuse(431, "Request Header Fields Too Large", too_large)
                return
            super().on_headers_complete()
            if self._draining and self.cycle is not None:
                self.cycle.keep_alive = False

        def on_chunk_header(self) -> None:
            self._chunks += 1

        def on_body(self, body: bytes) -> None:
            self._body_bytes += len(body)
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._message_open = False
            if not self._refused:
                super().on_message_complete()
            self._stop_wait_timer()  # the rest of an answered request's body has come: now idle

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def drain(self) -> None:
            """The process is being replaced: the answer in progress, or else the next one, says
            ``Connection: close`` and the connection closes after it (clients reconnect elsewhere)."""
            self._draining = True
            cycle: Any = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False

        # deadlines
        def _watch(self) -> None:
            """Arm the deadline of the state the connection is in, if the server waits on the client."""
            if self._refused or self.transport.is_closing() or self._wait_timer is not None:
                return
            cycle: Any = self.cycle
            if self._in_head or (cycle is not None and not cycle.response_complete):
                return  # a head is arriving (its own timer), or the app has the request
            if self._message_open:  # answered, but the body is still coming
                self._wait_timer = self.loop.call_later(body_timeout, self._close)
            elif self.timeout_keep_alive_task is None and not self.pipeline:  # idle, uvicorn's timer gone
                self._wait_timer = self.loop.call_later(idle_timeout, self._close)

        def _close(self) -> None:
            self._wait_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _stop_wait_timer(self) -> None:
            if self._wait_timer is not None:
                self._wait_timer.cancel()
                self._wait_timer = None

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
            self._stop_wait_timer()
            request_id = uuid.uuid4().hex  # answered before routing, like every answer: with an id
            log.info("[request %s] %s %s: %s", request_id, status, reason, message)
            cycle: Any = self.cycle
            if cycle is not None and not self._in_head:  # the app has this request
                if not cycle.response_complete:  # it reads no more of it; what it sends is dropped
                    cycle.disconnected = True
                    cycle.message_event.set()
                if cycle.response_started or cycle.response_complete:
                    self.transport.close()  # an answer is out already: nothing more can be said
                    return
            body = json.dumps({"message": message, "request_id": request_id}).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"x-request-id: {request_id}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode("ascii") + body)
            self.transport.close()

    return BoundedHttpToolsProtocol
