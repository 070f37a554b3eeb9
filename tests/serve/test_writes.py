"""A response head leaves with its body in one write; nothing is held past the loop turn."""

from __future__ import annotations

import asyncio

from modelaas.serve.writes import CoalescingTransport


class Recorder(asyncio.Transport):
    """The socket's side: what was written, in how many writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def run(steps):
    async def main():
        raw = Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())
        await steps(t, raw)
        return raw

    return asyncio.run(main())


def test_head_and_body_of_one_turn_are_one_write():
    async def steps(t, raw):
        t.write(HEAD)
        assert raw.writes == []  # held back for the body
        t.write(b"{}")
        assert raw.writes == [HEAD + b"{}"]

    run(steps)


def test_a_head_alone_leaves_by_the_end_of_the_turn():
    async def steps(t, raw):
        t.write(HEAD)
        await asyncio.sleep(0)  # the next turn: a streamed answer's body may come much later
        assert raw.writes == [HEAD]
        t.write(b"data: 1\n\n")
        assert raw.writes == [HEAD, b"data: 1\n\n"]

    run(steps)


def test_other_writes_pass_at_once_and_close_sends_what_is_held():
    async def steps(t, raw):
        t.write(b"0\r\n\r\n")
        assert raw.writes == [b"0\r\n\r\n"]
        t.write(HEAD)
        t.close()
        assert raw.writes == [b"0\r\n\r\n", HEAD] and raw.closed
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the socket's transport

    run(steps)


def test_abort_drops_what_is_held():
    async def steps(t, raw):
        t.write(HEAD)
        assert t.get_write_buffer_size() == len(HEAD)
        t.abort()
        await asyncio.sleep(0)
        assert raw.writes == [] and raw.aborted

    run(steps)
