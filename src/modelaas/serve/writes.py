"""A response's head and body in one write to the socket.

uvicorn writes a response head as soon as the app starts its answer, and the body when it
comes: two ``send`` calls, two TCP segments, and on loopback two wake-ups of the client,
for an answer the app sends in one go. :class:`CoalescingTransport` holds a response head
back until the next write of the same event-loop turn (the body, usually) and sends both
at once; whatever happens, the head leaves by the end of that turn (a streamed answer
whose body comes later loses nothing but the merge).
"""

from __future__ import annotations

import asyncio
from typing import Any

_HEAD = b"HTTP/1."


class CoalescingTransport:
    """A transport that merges a response head with the write that follows it in the same loop turn."""

    __slots__ = ("_flush_scheduled", "_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: bytes | None = None
        self._flush_scheduled = False

    def write(self, data: Any) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._transport.write(pending + bytes(data))
        elif data[:7] == _HEAD and not self._transport.is_closing():
            self._pending = bytes(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send a held-back head now."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._transport.write(pending)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def close(self) -> None:
        self.flush()  # a transport sends what it was given before it closes
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + (len(self._pending) if self._pending is not None else 0)

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)
