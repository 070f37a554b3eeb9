"""``create_app(settings)``: the ASGI application. Nothing is built before it is called."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette

from modelaas.errors import ModelLoadError
from modelaas.jobs.service import JobService
from modelaas.jobs.wiring import LocalTrainings, Trainings
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.telemetry import metrics
from modelaas.tokens import load_tokens
from modelaas.web import spool
from modelaas.web.accesslog import RequestRecorder
from modelaas.web.debug import LogCapture
from modelaas.web.errors import HANDLERS
from modelaas.web.metrics import sample_gate
from modelaas.web.middleware import build_middleware, install_log_filter
from modelaas.web.routes import build_routes
from modelaas.web.state import AppState
from modelaas.web.streams import StreamSlots

log = logging.getLogger("modelaas.web")


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    trainings: Trainings | None = None,
    on_fatal: Callable[[ModelLoadError], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    on_settled: Callable[[], None] | None = None,
) -> Starlette:
    """Build the app for ``settings`` (loaded from the environment when not given).

    Models are imported now (a failing import raises :class:`ModelLoadError`); ``warm()``
    runs in the background once the server starts, and ``/readyz`` answers 200 after it.
    ``on_fatal`` is called if warming fails (a serving process uses it to exit),
    ``on_ready`` once the models are warm, ``on_settled`` after that once what is loaded
    in the background (the job store) is loaded.

    ``trainings`` is how training jobs run (:mod:`modelaas.jobs.wiring`): by default, with
    the train endpoint on, a scheduler in this process (:class:`LocalTrainings`); serving
    processes of ``modelaas serve`` give theirs, whose scheduler is the supervisor's.
    """
    settings = settings or Settings.load()
    runtime = runtime or Runtime.load(settings)
    if settings.train_endpoint and trainings is None:
        from modelaas.versions.trainings import training_hook  # here: it imports the job store

        trainings = LocalTrainings(settings, ended=training_hook(settings))
    st = AppState(
        settings=settings,
        runtime=runtime,
        spool_root=spool.process_spool(settings.upload_dir),
        tokens=load_tokens(settings),
        event_streams=StreamSlots(settings.max_event_streams),
        trainings=trainings if settings.train_endpoint else None,
    )
    recording = metrics.install() if settings.metrics else metrics.current()
    if settings.debug_endpoint:
        st.debug_log = LogCapture()
        logging.getLogger().addHandler(st.debug_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        removed = spool.sweep(settings.upload_dir)
        if removed:
            log.info(
                "Removed %d upload folder%s left by stopped processes.", len(removed), "" if len(removed) == 1 else "s"
            )
        if st.trainings is not None:
            await st.trainings.start()
        task = asyncio.create_task(_warm_then_settle(runtime, on_fatal, on_ready, on_settled, st.jobs))
        sampler = asyncio.create_task(sample_gate(st)) if recording.active else None
        try:
            yield
        finally:
            task.cancel()
            if sampler is not None:
                sampler.cancel()
            if st.trainings is not None:
                await st.trainings.stop()
            if st.jobs is not None:
                st.jobs.close()
            runtime.close()
            shutil.rmtree(st.spool_root, ignore_errors=True)
            if st.debug_log is not None:
                logging.getLogger().removeHandler(st.debug_log)

    routes = st.routes = build_routes(st)
    install_log_filter()
    app = Starlette(
        routes=routes,
        middleware=build_middleware(
            settings,
            routes,
            st.tokens,
            RequestRecorder(routes, runtime.names, access_log=settings.access_log, metrics=recording),
        ),
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.modelaas = st
    return app


async def _warm_then_settle(
    runtime: Runtime,
    on_fatal: Callable[[ModelLoadError], None] | None,
    on_ready: Callable[[], None] | None,
    on_settled: Callable[[], None] | None,
    jobs: JobService | None,
) -> None:
    """Warm the models (then ``on_ready``), open the job store if it is not open (then ``on_settled``)."""
    try:
        await runtime.warm()
    except ModelLoadError as exc:
        log.error("%s\n%s", exc.message, exc.traceback_text or "")
        if on_fatal is not None:
            on_fatal(exc)
        return
    if on_ready is not None:
        on_ready()
    recording = metrics.current()
    if isinstance(recording, metrics.Metrics):  # prometheus_client now, not on the way to ready
        await asyncio.to_thread(recording.series)
    if jobs is not None and not jobs.store_open:  # now, rather than on the first train request
        try:
            await asyncio.to_thread(lambda: jobs.store)
        except Exception as exc:  # the train routes will say it again, to their clients
            log.error("Cannot open the job store: %s", exc)
    if on_settled is not None:
        on_settled()
