"""``create_app(settings)``: the ASGI application. Nothing is built before it is called."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from modelaas.errors import ModelLoadError
from modelaas.jobs.ids import new_server_id
from modelaas.jobs.service import JobService
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.tokens import load_tokens
from modelaas.web import spool
from modelaas.web.debug import LogCapture
from modelaas.web.errors import HANDLERS
from modelaas.web.middleware import build_middleware, install_log_filter
from modelaas.web.routes import build_routes
from modelaas.web.state import AppState

if TYPE_CHECKING:
    from modelaas.jobs.scheduler import Scheduler

log = logging.getLogger("modelaas.web")


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    on_fatal: Callable[[ModelLoadError], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    on_settled: Callable[[], None] | None = None,
    server_id: str | None = None,
    on_job_submitted: Callable[[], None] | None = None,
) -> Starlette:
    """Build the app for ``settings`` (loaded from the environment when not given).

    Models are imported now (a failing import raises :class:`ModelLoadError`); ``warm()``
    runs in the background once the server starts, and ``/readyz`` answers 200 after it.
    ``on_fatal`` is called if warming fails (a serving process uses it to exit),
    ``on_ready`` once the models are warm, ``on_settled`` after that once what is loaded
    in the background (the job store) is loaded.

    Training jobs are queued in the job store under ``server_id``; the scheduler that
    runs them is started here too unless a ``server_id`` is given (then the process that
    gave it, the supervisor, runs the scheduler; ``on_job_submitted`` tells it of new jobs).
    """
    settings = settings or Settings.load()
    tokens = load_tokens(settings)
    runtime = runtime or Runtime.load(settings)
    st = AppState(settings=settings, runtime=runtime, spool_root=spool.process_spool(settings.upload_dir))
    st.extras["tokens"] = tokens
    scheduler: Scheduler | None = None
    if settings.train_endpoint:
        if server_id is None:  # on its own: a scheduler here, and the store opened at start-up
            from modelaas.jobs.backends import make_backend
            from modelaas.jobs.scheduler import Scheduler
            from modelaas.jobs.store import JobStore, store_url

            server_id = new_server_id()
            store = JobStore(store_url(settings.jobs_db, settings.data_dir))
            scheduler = Scheduler(settings, store, server_id, make_backend(settings))
            on_job_submitted = scheduler.wake
            st.jobs = JobService(settings, store, server_id)
        else:  # a serving process: the supervisor has opened the store; open it here when ready
            st.jobs = JobService(settings, None, server_id)
        if on_job_submitted is not None:
            st.extras["wake_scheduler"] = on_job_submitted
    if settings.debug_endpoint:
        st.debug_log = LogCapture()
        logging.getLogger().addHandler(st.debug_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        removed = spool.sweep(settings.upload_dir)
        if removed:
            log.info("Removed %d upload folder(s) left by stopped processes.", len(removed))
        if scheduler is not None:
            assert st.jobs is not None
            await asyncio.to_thread(st.jobs.store.migrate)
            await asyncio.to_thread(scheduler.start)
        task = asyncio.create_task(_warm_then_settle(runtime, on_fatal, on_ready, on_settled, st.jobs))
        try:
            yield
        finally:
            task.cancel()
            if scheduler is not None:
                await asyncio.to_thread(scheduler.stop)
            if st.jobs is not None:
                st.jobs.close()
            runtime.close()
            shutil.rmtree(st.spool_root, ignore_errors=True)
            if st.debug_log is not None:
                logging.getLogger().removeHandler(st.debug_log)

    routes = build_routes(st)
    install_log_filter()
    app = Starlette(
        routes=routes,
        middleware=build_middleware(settings, routes, tokens),
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
    if jobs is not None and not jobs.store_open:  # now, rather than on the first train request
        try:
            await asyncio.to_thread(lambda: jobs.store)
        except Exception as exc:  # the train routes will say it again, to their clients
            log.error("Cannot open the job store: %s", exc)
    if on_settled is not None:
        on_settled()
