"""The threads sync model code runs on, and the cheap way calls get there and back.

Calls handed over during one turn of the event loop go to the model threads as one batch
(a ``SimpleQueue`` they block on); finished calls come back in a deque, with one
``call_soon_threadsafe`` per batch rather than per call. Under load a model thread then
runs calls back to back and the event loop answers them in bunches: the two threads
rarely compete for the GIL (see docs/benchmarks.md for what this bought).

:class:`ModelThreads` only moves calls; :class:`modelaas.runtime.gate.PredictGate` decides when a
call may go (the concurrency limit, the queue, timeouts).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import queue as queue_module
import threading
import time
from collections.abc import Callable
from typing import Any


class Call:
    """One sync call on its way to a model thread and back."""

    __slots__ = (
        "args",
        "ctx",
        "elapsed",
        "error",
        "func",
        "future",
        "learn",
        "result",
        "started",
        "timed_out",
        "timer",
    )

    def __init__(
        self, func: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any], *, learn: bool = True
    ) -> None:
        self.func = func
        self.learn = learn
        """Whether its duration tells how fast predictions are (not for warm())."""
        self.args = args
        self.ctx = contextvars.copy_context()
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None
        self.started: float | None = None
        """When a model thread started it (``time.monotonic()``); None until then."""
        self.elapsed = 0.0
        self.timed_out = False
        self.timer: asyncio.TimerHandle | None = None


class ModelThreads:
    """Up to ``size`` daemon threads, started as calls need them, all named ``predict-<n>``.

    ``on_done(call)`` runs on the event loop for each finished call (its ``result`` or
    ``error`` set), then ``after_done()`` once for the bunch.
    """

    def __init__(self, size: int, on_done: Callable[[Call], None], after_done: Callable[[], None]) -> None:
        self.size = size
        self._on_done = on_done
        self._after_done = after_done
        self._threads: list[threading.Thread] = []
        self._jobs: queue_module.SimpleQueue[list[Call] | None] = queue_module.SimpleQueue()
        self._batch: list[Call] = []
        self._done: collections.deque[Call] = collections.deque()
        self._notified = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def submit(self, loop: asyncio.AbstractEventLoop, call: Call, *, busy: int) -> None:
        """Hand ``call`` over with the others of this loop turn; ``busy`` calls are in flight, this one included."""
        self._loop = loop
        if len(self._threads) < min(self.size, busy):
            self._start_thread()
        if not self._batch:
            loop.call_soon(self._send_batch)
        self._batch.append(call)

    def submit_alone(self, loop: asyncio.AbstractEventLoop, call: Call) -> None:
        """Hand ``call`` over at once, in a batch of its own."""
        self._loop = loop
        if not self._threads:
            self._start_thread()
        self._jobs.put([call])

    def close(self) -> None:
        """Stop the threads once they finish what they are running (calls not started are dropped)."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        if self.size == 1:
            self._jobs.put(batch)
        else:  # one call per thread that is free
            for call in batch:
                self._jobs.put([call])

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name=f"predict-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get, done, clock = self._jobs.get, self._done, time.monotonic
        while True:
            batch = get()
            if batch is None or self._closed:
                return
            for call in batch:
                started = call.started = clock()
                try:
                    call.result = call.ctx.run(call.func, *call.args)
                except BaseException as exc:
                    call.error = exc
                call.elapsed = clock() - started
                done.append(call)  # before the flag is read: a pending _finish will see it
                if not self._notified:
                    self._notified = True
                    loop = self._loop
                    try:
                        if loop is not None:
                            loop.call_soon_threadsafe(self._finish)
                    except RuntimeError:  # the loop is closed: nobody waits for the answer
                        self._notified = False

    def _finish(self) -> None:
        """On the loop: pass on every call the threads finished, then call ``after_done``."""
        self._notified = False
        done, on_done = self._done, self._on_done
        while done:
            on_done(done.popleft())
        self._after_done()
