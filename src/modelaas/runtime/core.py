"""The core: the models of one serving process and how predictions run.

No web or CLI imports here: transports parse a request into raw argument values, call
the runtime, and render the :class:`~modelaas.runtime.answers.Answer` or error it gives back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from modelaas.errors import (
    ConfigError,
    FetchFailed,
    FetchRefused,
    ModelaasError,
    ModelLoadError,
    ModelNotFound,
    OutputInvalid,
    Overloaded,
    PredictTimeout,
    from_model_exception,
)
from modelaas.fetch.destinations import FetchPolicy, check_destination, is_plain_url, shown
from modelaas.fetch.inputs import fetch_url_files
from modelaas.model.adapters import ModelAdapter
from modelaas.model.batch import BatchSpec
from modelaas.model.loader import load_models
from modelaas.runtime.answers import Answer, render
from modelaas.runtime.batching import Batcher
from modelaas.runtime.gate import PredictGate
from modelaas.runtime.media import negotiate
from modelaas.settings import Settings
from modelaas.telemetry import metrics, tracing

log = logging.getLogger("modelaas.runtime")
T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings, models: Iterable[ModelAdapter]) -> None:
        self.settings = settings
        self._models = {m.name: m for m in models}
        self.gate = PredictGate.from_settings(settings)
        self.fetch_policy = FetchPolicy.from_settings(settings)
        """How URL inputs are fetched and checked (raises ConfigError for a bad allow-list)."""
        self.batchers: dict[str, Batcher] = {}
        """One per model whose predict is ``@batched`` (and not turned off by ``--batch``)."""
        bounds = settings.batch_bounds()
        for adapter in self._models.values():
            spec = _batch_spec(adapter, bounds)
            if spec is not None:
                self.batchers[adapter.name] = Batcher(adapter, self.gate, spec)
        unknown = set(bounds) - set(self._models) - {"*"}
        if unknown:
            raise ConfigError(
                f"batch: no model named {', '.join(sorted(map(repr, unknown)))} is served "
                f"(served: {', '.join(self._models) or 'none'})."
            )
        self.ready = False
        self.warm_error: ModelLoadError | None = None
        self._warming: asyncio.Task[None] | None = None

    @classmethod
    def load(cls, settings: Settings, serving: Mapping[str, Any] | None = None) -> Runtime:
        """Import the models the settings select (raises :class:`ModelLoadError`).

        ``serving``: each model's :class:`~modelaas.versions.serving.ServingState` (its active
        version's files are given to it before ``warm()``); absent models serve as installed.
        """
        runtime = cls(settings, load_models(settings))
        for adapter in runtime.models():
            state = (serving or {}).get(adapter.name)
            if state is not None:
                version = state.active_version
                files = settings.data_dir / "versions" / adapter.name / str(version) if version is not None else None
                adapter.serve(version, state.generation, files)
        return runtime

    # ------------------------------------------------------------------ models
    @property
    def names(self) -> list[str]:
        return list(self._models)

    def models(self) -> list[ModelAdapter]:
        return list(self._models.values())

    def model(self, name: str) -> ModelAdapter:
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(name, self.names) from None

    def occupancy(self) -> tuple[int, int]:
        """Predictions running and waiting now (those waiting in a batcher included)."""
        waiting = self.gate.waiting + sum(b.waiting for b in self.batchers.values())
        return self.gate.running, waiting

    async def warm(self) -> None:
        """Warm the models once; later and concurrent callers wait for that one warm-up.

        Raises :class:`ModelLoadError` (every time) if a model's ``warm()`` failed.
        """
        if self.ready:
            return
        if self._warming is None:
            self._warming = asyncio.ensure_future(self._warm_all())
        try:
            await asyncio.shield(self._warming)
        except ModelLoadError as exc:
            self.warm_error = exc
            raise

    async def _warm_all(self) -> None:
        """Call every model's ``warm()`` (on the thread its predictions run on) if settings ask; then be ready."""
        if self.settings.warm:
            for adapter in self._models.values():
                log.info("Warming model %r.", adapter.name)
                started = time.monotonic()
                await self.gate.call_on_model_thread(adapter.warm)  # its failure: a ModelLoadError
                log.info("Model %r is warm (%.2f s).", adapter.name, time.monotonic() - started)
        self.ready = True

    # ----------------------------------------------------------------- predict
    async def predict(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        accept: str | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
        envelope: bool = True,
        spool_root: Path | None = None,
    ) -> Answer:
        """Validate ``raw`` argument values, run the model's predict, shape the answer.

        ``raw`` maps wire names to text, lists, JSON values or uploaded files; ``accept``
        is the client's Accept header; ``gone`` tells whether the client has left.
        URL inputs are fetched into a directory under ``spool_root`` (the web layer gives
        its upload spool; default: the system's temp dir) that is deleted before this returns.
        """

        def shape(adapter: ModelAdapter, output: Any, media: str | None, fetch_dir: str | None) -> Answer:
            try:
                with tracing.span("render", model=name):
                    answer = render(adapter, output, media, envelope=envelope)
            except OutputInvalid as exc:
                raise exc.of_model(name) from None
            return _detached(answer, fetch_dir)

        return await self._predict(name, raw, shape, accept=accept, gone=gone, spool_root=spool_root)

    async def predict_output(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        gone: Callable[[], Awaitable[bool]] | None = None,
        spool_root: Path | None = None,
    ) -> Any:
        """As :meth:`predict` (validation, admission, timeouts), but the model's output as it returned it.

        For transports that shape outputs themselves (the Open Inference Protocol's tensors).
        """
        return await self._predict(
            name, raw, lambda a, output, m, d: output, accept=None, gone=gone, spool_root=spool_root
        )

    async def _predict(
        self,
        name: str,
        raw: Mapping[str, Any],
        shape: Callable[[ModelAdapter, Any, str | None, str | None], T],
        *,
        accept: str | None,
        gone: Callable[[], Awaitable[bool]] | None,
        spool_root: Path | None,
    ) -> T:
        adapter = self.model(name)
        params = adapter.params_for("predict")
        if not self.ready:
            await self.warm()
        media: str | None = None
        offered = adapter.media_types
        if offered and raw.get("accept") in (None, ""):
            raw = {**raw, "accept": negotiate(accept, offered)}
        with tracing.span("validate arguments", model=name):
            kwargs = params.validate(raw)
        if offered:
            accept_param = params.get("accept")
            media = str(kwargs.get(accept_param.name if accept_param else "accept") or offered[0])
        for url in adapter.urls_fetched_by_model(kwargs):  # v1 predict_url: check before the model fetches
            try:
                await check_destination(url, self.fetch_policy)
            except FetchRefused as exc:
                raise FetchRefused(f"Argument 'url': {exc.message}") from None
            except FetchFailed as exc:  # unresolvable here: the model may resolve it elsewhere (its hosts file)
                if not self.settings.pass_unresolved_urls:
                    raise FetchRefused(
                        f"Argument 'url': {shown(url)} is refused: {exc.message} The model fetches URLs itself, "
                        "so where this one leads cannot be checked (operators can allow such URLs with "
                        "--pass-unresolved-urls)."
                    ) from None
                log.info("URL for model %r passed unchecked (--pass-unresolved-urls): %s", name, exc.message)
            if not is_plain_url(url):  # after the destination check, so that its reasons come first
                raise FetchRefused(
                    f"Argument 'url': {shown(url)} is not a plain http or https URL: a host name or dotted IPv4 "
                    "address, no user info, printable ASCII (percent-encode the rest)."
                )
        fetch_dir: str | None = None
        try:
            if any(p.extra.get("fetch") and kwargs.get(p.name) is not None for p in params):
                root = spool_root or Path(tempfile.gettempdir())
                root.mkdir(parents=True, exist_ok=True)
                given = [kwargs[p.name] for p in params if p.extra.get("fetch") and kwargs.get(p.name) is not None]
                urls = sum(len(v) if isinstance(v, list) else 1 for v in given)
                policy = self.fetch_policy.for_request(urls, predict_timeout=self.settings.predict_timeout)
                fetch_dir = tempfile.mkdtemp(dir=root, prefix="fetch-")
                async with self.gate.preparing():  # fetching waits in the predict queue
                    kwargs = await fetch_url_files(params, kwargs, Path(fetch_dir), policy)
            output = await self._call(adapter, kwargs, gone=gone)
            return shape(adapter, output, media, fetch_dir)
        finally:
            if fetch_dir is not None:
                shutil.rmtree(fetch_dir, ignore_errors=True)

    async def _call(
        self, adapter: ModelAdapter, kwargs: dict[str, Any], *, gone: Callable[[], Awaitable[bool]] | None
    ) -> Any:
        """The model's predict on validated ``kwargs``: through its batcher if it batches, else the gate."""
        batcher = self.batchers.get(adapter.name)
        try:
            if batcher is not None:
                return await batcher.submit(kwargs, gone=gone)
            return await self.gate.run(
                adapter.predict, kwargs, is_async=adapter.predict_is_async, gone=gone, model=adapter.name
            )
        except (Overloaded, PredictTimeout) as exc:
            reason = "overloaded" if isinstance(exc, Overloaded) else "timeout"
            metrics.current().refused(adapter.name, reason)
            raise
        except ModelaasError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # model code may raise these too
            error = from_model_exception(exc, model=adapter.name, method="predict")
            if error.status >= 500:
                log.error("Model %r raised in predict", adapter.name, exc_info=exc)
            else:
                log.info("Model %r refused a prediction: %s", adapter.name, error.message)
            raise error from exc

    def close(self) -> None:
        self.gate.close()


def _batch_spec(adapter: ModelAdapter, bounds: Mapping[str, tuple[int, float | None]]) -> BatchSpec | None:
    """How ``adapter`` batches once ``--batch`` is applied; None: one request per call."""
    spec = adapter.batch
    if spec is None:
        if adapter.name in bounds and bounds[adapter.name][0] > 1:
            raise ConfigError(f"batch: model {adapter.name!r} does not batch (its predict is not @batched).")
        return None
    size, wait = bounds.get(adapter.name) or bounds.get("*") or (spec.max_size, spec.max_wait)
    if size <= 1:
        return None
    return dataclasses.replace(spec, max_size=size, max_wait=spec.max_wait if wait is None else wait)


def _detached(answer: Answer, fetch_dir: str | None) -> Answer:
    """An answer that does not point into ``fetch_dir`` (about to be deleted): its bytes instead."""
    if fetch_dir is None or answer.path is None:
        return answer
    path = os.path.realpath(answer.path)
    if os.path.commonpath([path, os.path.realpath(fetch_dir)]) != os.path.realpath(fetch_dir):
        return answer
    with open(path, "rb") as fh:
        return dataclasses.replace(answer, content=fh.read(), path=None)
