"""Where prediction code runs: a per-process concurrency limit with a bounded wait queue.

Sync model code runs in a worker thread (at most ``concurrency`` at once, because legacy
models are not thread-safe); ``async def`` code runs on the event loop under the same
limit. When ``queue`` requests are already waiting, the next one is refused at once with
503 and ``Retry-After``. With a ``timeout``, the client gets 504 when the model runs past
it; the slot stays taken until the model code really returns, so the limit stays true.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from modelaas.errors import ClientGone, Overloaded, PredictTimeout


class PredictGate:
    def __init__(self, *, concurrency: int = 1, queue: int = 64, timeout: float | None = None) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._running = 0
        self.stuck = 0
        """Calls that timed out and still hold a slot."""
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="predict")

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    async def run(
        self,
        func: Callable[..., Any],
        *args: Any,
        is_async: bool = False,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> Any:
        """Run ``func(*args)`` when a slot is free; raise Overloaded/PredictTimeout/ClientGone."""
        waited = self._slots.locked()
        if waited:
            if self._waiting >= self.queue:
                raise Overloaded(
                    f"The server is busy: {self._running} predictions running and {self._waiting} waiting. "
                    "Retry shortly.",
                    retry_after=1,
                )
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        release = True
        self._running += 1
        try:
            if waited and gone is not None and await gone():  # only a client that waited can have left
                raise ClientGone("The client went away before its prediction started.")
            if is_async:
                return await asyncio.wait_for(func(*args), self.timeout)
            loop = asyncio.get_running_loop()
            ctx = contextvars.copy_context()
            future = loop.run_in_executor(self._pool, functools.partial(ctx.run, func, *args))
            if self.timeout is None:
                return await future
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.timeout)
            except asyncio.TimeoutError:
                release = False
                self.stuck += 1
                future.add_done_callback(self._release_stuck)
                raise PredictTimeout(
                    f"The prediction did not finish within {self.timeout:g} s (--predict-timeout)."
                ) from None
        except asyncio.TimeoutError:  # the async path
            raise PredictTimeout(
                f"The prediction did not finish within {self.timeout:g} s (--predict-timeout)."
            ) from None
        finally:
            if release:
                self._running -= 1
                self._slots.release()

    def _release_stuck(self, _future: Any) -> None:
        self.stuck -= 1
        self._running -= 1
        self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
