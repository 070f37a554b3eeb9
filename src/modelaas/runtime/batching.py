"""Adaptive batching: concurrent predictions of a ``@batched`` model, one model call.

Each serving process has one :class:`Batcher` per batched model, on its event loop.
A request's validated arguments wait in the batcher's queue; a batch leaves when the
model has a free slot (the gate's ``concurrency``) and either:

* ``max_size`` requests are waiting, or
* waiting longer would not pay: no other request is expected within the wait budget
  (the measured gap between arrivals is longer than it), or
* the oldest request has waited its budget: a quarter of the measured time of a batch
  call, never more than ``max_wait``.

So a request alone is called at once (no concurrency, no wait), and under load the
batch fills while the previous one runs. Before the call, requests whose client left
are answered ``ClientGone`` and dropped; a request cancelled while waiting is dropped.
A batch goes through the gate like any call (so ``--predict-timeout`` and the model
thread apply); a call that raises fails each request of the batch with the model's
error, or, with ``retry_singly``, each request is called again alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from modelaas.errors import ClientGone, ModelaasError, Overloaded, PredictTimeout, from_model_exception
from modelaas.model.adapters import ModelAdapter
from modelaas.model.batch import BatchSpec
from modelaas.runtime.gate import PredictGate
from modelaas.telemetry import metrics, tracing

log = logging.getLogger("modelaas.runtime.batching")

BUDGET_SHARE = 0.25
"""The share of a batch call's measured time a request may wait for others (under ``max_wait``)."""
GAP_WEIGHT = 0.1
"""Weight of the newest gap between arrivals in their moving average."""
GONE_AFTER = 0.05
"""A request that waited longer than this (s) is checked for a departed client before its call;
a check costs tens of microseconds of the event loop, too much for every request of a large batch."""
GAP_CAP = 1.0
"""Longest gap between arrivals counted (s): one idle minute must not hide a burst for long."""


class _Item:
    __slots__ = ("arrived", "called", "ended", "future", "gone", "kwargs", "size", "weight")

    def __init__(
        self,
        kwargs: dict[str, Any],
        future: asyncio.Future[Any],
        gone: Callable[[], Awaitable[bool]] | None,
        weight: int = 1,
    ) -> None:
        self.kwargs = kwargs
        self.weight = weight
        """What it counts for against ``max_size``: the rows of its stacked tensors, else 1."""
        self.future = future
        self.gone = gone
        self.arrived = time.monotonic()
        self.called = self.ended = 0.0
        """When its batch's call started and ended (``time.monotonic()``); 0 until then."""
        self.size = 0
        """The size of its batch, once called."""


class BatchStats:
    """What a batcher did: calls, the requests in them, and the requests' waits (for logs and metrics)."""

    def __init__(self) -> None:
        self.calls = 0
        self.items = 0
        self.sizes: collections.deque[int] = collections.deque(maxlen=1000)
        """The sizes of the latest calls, oldest first."""

    def record(self, size: int) -> None:
        self.calls += 1
        self.items += size
        self.sizes.append(size)


class Batcher:
    def __init__(
        self,
        adapter: ModelAdapter,
        gate: PredictGate,
        spec: BatchSpec,
        *,
        on_batch: Callable[[int, list[float]], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.gate = gate
        self.spec = spec
        self.stats = BatchStats()
        self._on_batch = on_batch
        """Called with each call's size and its requests' waits (s), before the call."""
        self._pending: collections.deque[_Item] = collections.deque()
        self._pending_weight = 0
        self._running = 0
        """Batch calls in flight (at most the gate's concurrency)."""
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._last_arrival: float | None = None
        self._gap: float | None = None
        """Moving average of the time between two arrivals (s)."""
        self._call_time: float | None = None
        """Moving average of a batch call's time (s)."""

    @property
    def waiting(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ submit
    async def submit(self, kwargs: dict[str, Any], *, gone: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """The model's answer for one request's validated ``kwargs``, called in a batch."""
        if len(self._pending) >= self.gate.queue and self._running >= max(self.gate.concurrency, 1):
            raise Overloaded(
                f"The server is busy: {self._running} batches running and {len(self._pending)} predictions "
                "waiting. Retry shortly.",
                retry_after=1,
            )
        loop = asyncio.get_running_loop()
        item = _Item(kwargs, loop.create_future(), gone, self.adapter.batch_weight(kwargs))
        self._arrival(item.arrived)
        self._pending.append(item)
        self._pending_weight += item.weight
        if self._task is None:
            self._task = loop.create_task(self._flush())
        elif self._running < max(self.gate.concurrency, 1) or self._pending_weight >= self.spec.max_size:
            self._poke()  # otherwise the flush waits for a call to end, whatever arrives
        output = await item.future  # cancelled while waiting: dropped when its batch is taken
        if item.called and tracing.enabled():  # in the request's own trace
            spans = [("queue wait", item.arrived, item.called), ("model call", item.called, item.ended)]
            tracing.record_spans(spans, model=self.adapter.name, batch_size=item.size)
        return output

    def _arrival(self, now: float) -> None:
        last, self._last_arrival = self._last_arrival, now
        if last is None:
            return
        gap = min(now - last, GAP_CAP)
        self._gap = gap if self._gap is None else (1 - GAP_WEIGHT) * self._gap + GAP_WEIGHT * gap

    # ------------------------------------------------------------------- flush
    async def _flush(self) -> None:
        """Send batches while requests wait; ends when none do (``submit`` starts it again)."""
        try:
            while self._pending:
                if self._running >= max(self.gate.concurrency, 1):
                    await self._sleep(None)
                    continue
                delay = self._delay()
                if delay > 0:
                    await self._sleep(delay)
                    continue
                batch = self._take()
                if not batch:
                    continue
                self._running += 1
                asyncio.get_running_loop().create_task(self._run(batch))
        finally:
            self._task = None

    def _delay(self) -> float:
        """How much longer the waiting requests should wait for others (0: send now)."""
        pending = self._pending
        if self._pending_weight >= self.spec.max_size or self._call_time is None or self._gap is None:
            return 0.0
        budget = min(self.spec.max_wait, BUDGET_SHARE * self._call_time)
        if budget <= 0 or self._gap > budget:  # nobody else is expected in time
            return 0.0
        return max(0.0, pending[0].arrived + budget - time.monotonic())

    async def _sleep(self, timeout: float | None) -> None:
        """Wait for a poke (an arrival, a finished call) or ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        wake = self._wake = loop.create_future()
        timer = loop.call_later(timeout, self._poke) if timeout is not None else None
        try:
            await wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    def _poke(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        pending = self._pending
        weight = 0
        while pending and (not batch or weight + pending[0].weight <= self.spec.max_size):
            item = pending.popleft()
            self._pending_weight -= item.weight
            if not item.future.done():  # done: cancelled while it waited
                batch.append(item)
                weight += item.weight
        return batch

    # --------------------------------------------------------------------- run
    async def _run(self, batch: list[_Item]) -> None:
        try:
            batch = await self._present(batch)
            if not batch:
                return
            now = time.monotonic()
            waits = [now - item.arrived for item in batch]
            for item in batch:
                item.called, item.size = now, len(batch)
            self.stats.record(len(batch))
            if self._on_batch is not None:
                self._on_batch(len(batch), waits)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "Model %r: a batch of %d (waited %.1f ms at most)", self.adapter.name, len(batch), max(waits) * 1000
                )
            started = time.monotonic()
            try:
                outputs = await self._call([item.kwargs for item in batch])
            except BaseException as exc:  # every request of the batch gets it
                if isinstance(exc, asyncio.CancelledError):
                    for item in batch:
                        item.future.cancel()
                    raise
                await self._failed(batch, exc)
                return
            finally:
                ended = time.monotonic()
                elapsed = ended - started
                self._call_time = elapsed if self._call_time is None else 0.8 * self._call_time + 0.2 * elapsed
                for item in batch:
                    item.ended = ended
                metrics.current().batched(self.adapter.name, elapsed, waits)
            for item, output in zip(batch, outputs, strict=True):
                if not item.future.done():
                    item.future.set_result(output)
        finally:
            self._running -= 1
            self._poke()

    async def _present(self, batch: list[_Item]) -> list[_Item]:
        """The requests of ``batch`` whose client is still there; the others answered ``ClientGone``."""
        kept: list[_Item] = []
        checked_before = time.monotonic() - GONE_AFTER
        for item in batch:
            try:
                left = item.gone is not None and item.arrived < checked_before and await item.gone()
            except Exception:  # a failed check: a departed client
                left = True
            if item.future.done():
                continue
            if left:
                item.future.set_exception(ClientGone("The client went away before its prediction started."))
            else:
                kept.append(item)
        return kept

    async def _call(self, items: list[dict[str, Any]]) -> list[Any]:
        adapter = self.adapter
        if adapter.predict_is_async:
            return await self.gate.run(self._call_async, items, is_async=True)
        return await self.gate.run(adapter.predict_batch, items)

    async def _call_async(self, items: list[dict[str, Any]]) -> list[Any]:
        return await self.adapter.predict_batch_async(items)

    async def _failed(self, batch: list[_Item], exc: BaseException) -> None:
        error = self._error(exc, len(batch))
        if self.spec.retry_singly and len(batch) > 1 and not isinstance(error, PredictTimeout):
            log.info(
                "Model %r: a batch of %d failed (%s); calling each request alone", self.adapter.name, len(batch), error
            )
            for item in batch:
                if item.future.done():
                    continue
                try:
                    (output,) = await self._call([item.kwargs])
                except Exception as single:  # this request's own answer
                    if not item.future.done():
                        item.future.set_exception(self._error(single, 1))
                else:
                    if not item.future.done():
                        item.future.set_result(output)
            return
        for item in batch:
            if not item.future.done():
                item.future.set_exception(error)

    def _error(self, exc: BaseException, size: int) -> ModelaasError:
        """The error the requests of a failed call get, logged once for the call."""
        if isinstance(exc, ModelaasError):
            return exc
        error = from_model_exception(exc, model=self.adapter.name, method="predict")
        if error.status >= 500:
            log.error("Model %r raised in predict (a batch of %d)", self.adapter.name, size, exc_info=exc)
        else:
            log.info("Model %r refused a batch of %d: %s", self.adapter.name, size, error.message)
        return error
