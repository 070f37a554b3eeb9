"""Where prediction code runs: a per-process concurrency limit with a bounded wait queue.

Sync model code runs on the gate's model threads: ``concurrency`` of them, so at most
that many calls run at once. With the default of 1, every call of every model (and,
through :meth:`PredictGate.call_on_model_thread`, its ``warm()``) runs on the same
thread: legacy models are not thread-safe, and some, such as TensorFlow 1 graphs, only
work from the thread they were loaded on. ``async def`` code runs on the event loop
under the same limit. When ``queue`` requests are already waiting, the next one is
refused at once with 503 and ``Retry-After``. With a ``timeout``, the client gets 504
when the model runs past it; the slot stays taken until the model code really returns,
so the limit stays true.

``inline`` (``never``, ``always``, ``auto``) lets sync calls run on the event loop
thread instead, which saves the thread hand-off (see docs/benchmarks.md) but blocks the
loop while the model runs, so a call cannot time out:

* ``never`` (the default): always on the model thread(s);
* ``always``: always on the event loop thread (one consistent thread too), ``warm()`` included;
* ``auto``: on the model thread until ``AUTO_CALLS`` calls have a median under
  ``AUTO_FAST`` seconds and none took more than ``AUTO_SLOW``; then on the event loop
  thread, and back on the model thread for good if a call there takes more than
  ``AUTO_SLOW``. Calls change thread (at most twice): only for models that do not care.

Calls reach the model threads in batches (:mod:`modelaas.runtime.model_threads`). A prediction
that must wait for its turn waits on the event loop, and is checked for a client that
went away before it is handed over. For a model measured fast, calls are handed over a
little ahead of their turn (at most ``AHEAD_SECONDS`` of measured model time, never more
than ``queue``): the model thread then runs them back to back instead of waiting for the
event loop between calls, which is what keeps the hand-off cheap under load. A call
handed over ahead is not checked again for a departed client; a model measured slow
never gets calls ahead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from modelaas.errors import ClientGone, Overloaded, PredictTimeout
from modelaas.runtime.model_threads import Call, ModelThreads
from modelaas.telemetry import metrics, tracing

INLINE_MODES = ("never", "always", "auto")
AHEAD_SECONDS = 0.002
"""How much measured model time may be handed to the model threads ahead of its turn."""
AUTO_CALLS = 100
AUTO_FAST = 0.0003
AUTO_SLOW = 0.005


class _Waiter:
    __slots__ = ("future", "kind")

    def __init__(self, future: asyncio.Future[None], kind: str) -> None:
        self.future = future
        self.kind = kind
        """``thread``, ``inline`` or ``async``: what the granted slot is for."""


class PredictGate:
    def __init__(
        self, *, concurrency: int = 1, queue: int = 64, timeout: float | None = None, inline: str = "never"
    ) -> None:
        if inline not in INLINE_MODES:
            raise ValueError(f"inline must be one of {', '.join(INLINE_MODES)}, not {inline!r}")
        self.concurrency = concurrency
        self.queue = queue
        self.timeout = timeout
        self.inline = inline
        self.stuck = 0
        """Calls that timed out and still hold a slot."""
        self._on_loop = inline == "always"
        """Whether sync calls run on the event loop thread now."""
        self._auto_samples: list[float] | None = [] if inline == "auto" else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = ModelThreads(concurrency, self._answer, self._after_answers)
        self._inflight: collections.deque[Call] = collections.deque()
        """Calls handed to the model threads and not back yet, oldest first."""
        self._reserved = 0
        """Model-thread slots granted to waiting calls that are not handed over yet."""
        self._loop_running = 0
        """Calls running on the event loop: async ones, and inline ones granted a slot."""
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._preparing = 0
        """Calls being prepared (their URL inputs fetched): they hold places in the queue."""
        self._estimate: float | None = None
        """Seconds per model-thread call: a moving average, or the last call when it was slower."""

    @classmethod
    def from_settings(cls, settings: Any) -> PredictGate:
        """The gate the settings ask for (``predict_concurrency``, ``_queue``, ``_timeout``, ``_inline``)."""
        return cls(
            concurrency=settings.predict_concurrency,
            queue=settings.predict_queue,
            timeout=settings.predict_timeout,
            inline=settings.predict_inline,
        )

    # ------------------------------------------------------------------ counts
    @property
    def waiting(self) -> int:
        """Calls waiting for their turn: on the event loop, or handed ahead to a busy model thread."""
        ahead = max(0, len(self._inflight) + self._reserved - self.concurrency)
        return len(self._waiters) + ahead + self._preparing

    @property
    def running(self) -> int:
        return min(len(self._inflight) + self._reserved, self.concurrency) + self._loop_running

    @property
    def on_loop(self) -> bool:
        """Whether sync calls run on the event loop thread now (``inline``)."""
        return self._on_loop

    def _free(self) -> bool:
        return len(self._inflight) + self._reserved + self._loop_running < self.concurrency

    def _can_hand_over(self) -> bool:
        if self._free():
            return True
        return self._loop_running == 0 and len(self._inflight) + self._reserved < self.concurrency + self._ahead()

    def _ahead(self) -> int:
        """How many calls may be handed to the model threads beyond their free slots."""
        estimate = self._estimate
        if estimate is None or estimate >= AHEAD_SECONDS or self.queue == 0:
            return 0
        if self._inflight:
            started = self._inflight[0].started
            if started is not None and time.monotonic() - started > AHEAD_SECONDS:
                return 0  # the call running now is slow, whatever the average says
        return min(self.queue, int(AHEAD_SECONDS / max(estimate, 1e-6)))

    # -------------------------------------------------------------------- run
    def _busy(self) -> str:
        running = f"{self.running} prediction{'' if self.running == 1 else 's'} running"
        return f"The server is busy: {running} and {self.waiting} waiting. Retry shortly."

    @contextlib.asynccontextmanager
    async def preparing(self) -> AsyncIterator[None]:
        """Hold a place in the wait queue while a call is prepared (its URL inputs fetched).

        A call being prepared counts as waiting: when the queue is full (``queue`` places,
        at least one), the next call is refused with 503 at once, whether it would fetch
        or predict; so at most that many requests fetch at once.
        """
        if self.waiting >= max(self.queue, 1):
            raise Overloaded(self._busy(), retry_after=1)
        self._preparing += 1
        try:
            yield
        finally:
            self._preparing -= 1

    async def run(
        self,
        func: Callable[..., Any],
        *args: Any,
        is_async: bool = False,
        gone: Callable[[], Awaitable[bool]] | None = None,
        model: str | None = None,
    ) -> Any:
        """Run ``func(*args)`` when a slot is free; raise Overloaded/PredictTimeout/ClientGone.

        With metrics on, the call's time in the model and its wait for a turn are recorded
        under ``model``.
        """
        loop = self._bind()
        timing = (
            (model, time.monotonic()) if model is not None and (metrics.current().active or tracing.enabled()) else None
        )
        if is_async:
            return await self._run_async(loop, func, args, gone, timing)
        if self._on_loop:
            return await self._run_inline(loop, func, args, gone, timing)
        if not self._waiters and self._can_hand_over():
            return await self._hand_over(loop, func, args, timing)
        await self._wait(loop, "thread")  # a model-thread slot is now reserved for this call
        try:
            left = gone is not None and await gone()  # only a client that waited can have left
        except BaseException:
            left = True
            raise
        finally:
            self._reserved -= 1
            if left:
                self._dispatch()
        if left:
            raise ClientGone("The client went away before its prediction started.")
        return await self._hand_over(loop, func, args, timing)

    async def _run_inline(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        gone: Callable[[], Awaitable[bool]] | None,
        timing: tuple[str, float] | None = None,
    ) -> Any:
        if await self._take_loop_slot(loop, "inline"):
            try:
                if gone is not None and await gone():
                    raise ClientGone("The client went away before its prediction started.")
            except BaseException:
                self._loop_running -= 1
                self._dispatch()
                raise
        started = time.monotonic()
        try:
            return contextvars.copy_context().run(func, *args)
        finally:
            self._loop_running -= 1
            ended = time.monotonic()
            if timing is not None:
                _record(timing, started, ended - started)
            if self.inline == "auto" and ended - started > AUTO_SLOW:
                self._on_loop = False  # for good: this model is not always fast
            if self._waiters:
                self._dispatch()

    async def _run_async(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        gone: Callable[[], Awaitable[bool]] | None,
        timing: tuple[str, float] | None = None,
    ) -> Any:
        await self._take_loop_slot(loop, "async")
        try:
            if gone is not None and await gone():
                raise ClientGone("The client went away before its prediction started.")
            started = time.monotonic()
            result = await asyncio.wait_for(func(*args), self.timeout)
            if timing is not None:
                _record(timing, started, time.monotonic() - started)
            return result
        except asyncio.TimeoutError:
            raise PredictTimeout(_too_slow(self.timeout)) from None
        finally:
            self._loop_running -= 1
            self._dispatch()

    async def _take_loop_slot(self, loop: asyncio.AbstractEventLoop, kind: str) -> bool:
        """Take a slot for code that runs on the event loop (counted in ``_loop_running``); True if it waited."""
        if not self._waiters and self._free():
            self._loop_running += 1
            return False
        await self._wait(loop, kind)
        return True

    async def _wait(self, loop: asyncio.AbstractEventLoop, kind: str) -> None:
        """Wait for a slot, first come first served; it is counted as taken on return."""
        if self.waiting >= self.queue:
            raise Overloaded(self._busy(), retry_after=1)
        waiter = _Waiter(loop.create_future(), kind)
        self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():  # granted, then cancelled: give it back
                if kind == "thread":
                    self._reserved -= 1
                else:
                    self._loop_running -= 1
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            self._dispatch()
            raise

    def _dispatch(self) -> None:
        """Grant free slots to waiting calls, first come first served."""
        waiters = self._waiters
        while waiters:
            waiter = waiters[0]
            if waiter.future.done():  # cancelled while waiting
                waiters.popleft()
                continue
            if waiter.kind == "thread":
                if not self._can_hand_over():
                    return
                self._reserved += 1
            else:
                if not self._free():
                    return
                self._loop_running += 1
            waiters.popleft()
            waiter.future.set_result(None)

    async def _hand_over(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        timing: tuple[str, float] | None = None,
    ) -> Any:
        call = Call(func, args, loop.create_future())
        self._inflight.append(call)
        self._threads.submit(loop, call, busy=len(self._inflight))
        if self.timeout is not None:
            call.timer = loop.call_later(self.timeout, self._check_timeout, call)
        result = await call.future
        if timing is not None and call.started is not None:
            _record(timing, call.started, call.elapsed)
        return result

    def _check_timeout(self, call: Call) -> None:
        call.timer = None
        if call.future.done():
            return
        assert self.timeout is not None and self._loop is not None
        started = call.started
        ran = 0.0 if started is None else time.monotonic() - started
        if ran < self.timeout:  # not started yet, or started after the timer was set
            call.timer = self._loop.call_later(self.timeout - ran, self._check_timeout, call)
            return
        call.timed_out = True
        self.stuck += 1
        call.future.set_exception(PredictTimeout(_too_slow(self.timeout)))

    async def call_on_model_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the thread where sync predictions run (for ``warm()``).

        It does not wait for a slot, but holds one while it runs, so predictions wait for it.
        """
        loop = self._bind()
        if self._on_loop:
            return func(*args)
        call = Call(func, args, loop.create_future(), learn=False)
        self._inflight.append(call)
        self._threads.submit_alone(loop, call)
        return await call.future

    # ----------------------------------------------------------- model thread
    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None and (self._inflight or self._waiters or self._loop_running):
                raise RuntimeError("A PredictGate serves one event loop at a time.")
            self._loop = loop
        return loop

    def _answer(self, call: Call) -> None:
        """On the loop: a call the model threads finished; answer its caller."""
        try:
            self._inflight.remove(call)
        except ValueError:  # pragma: no cover - every call handed over is in flight
            pass
        if call.learn:
            self._learn(call.elapsed)
        if call.timer is not None:
            call.timer.cancel()
        if call.timed_out:
            self.stuck -= 1
        elif not call.future.done():
            if call.error is not None:
                call.future.set_exception(call.error)
            else:
                call.future.set_result(call.result)
        call.error = call.result = None

    def _after_answers(self) -> None:
        """On the loop, after a bunch of answers: grant the freed slots."""
        if self._waiters:
            self._dispatch()

    def _learn(self, elapsed: float) -> None:
        estimate = self._estimate
        self._estimate = elapsed if estimate is None or elapsed > estimate else 0.8 * estimate + 0.2 * elapsed
        samples = self._auto_samples
        if samples is not None:
            if elapsed > AUTO_SLOW:
                self._auto_samples = None  # for good: this model is not always fast
            elif len(samples) < AUTO_CALLS:
                samples.append(elapsed)
                if len(samples) == AUTO_CALLS:
                    self._auto_samples = None
                    self._on_loop = statistics.median(samples) < AUTO_FAST

    def close(self) -> None:
        """Stop the model threads once they finish what they are running (calls not started are dropped)."""
        self._threads.close()


def _record(timing: tuple[str, float], started: float, elapsed: float) -> None:
    """A prediction's wait for its turn and its time in the model: metrics, and spans when tracing."""
    model, entered = timing
    metrics.current().predicted(model, elapsed, started - entered)
    if tracing.enabled():
        tracing.record_spans(
            [("queue wait", entered, started), ("model call", started, started + elapsed)], model=model
        )


def _too_slow(timeout: float | None) -> str:
    return f"The prediction did not finish within {timeout:g} s (--predict-timeout)."
