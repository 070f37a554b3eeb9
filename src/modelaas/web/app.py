"""``create_app(settings)``: the ASGI application. Nothing is built before it is called."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette

from modelaas.errors import ModelLoadError
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web import spool
from modelaas.web.debug import LogCapture
from modelaas.web.errors import HANDLERS
from modelaas.web.routes import build_routes
from modelaas.web.state import AppState

log = logging.getLogger("modelaas.web")


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    on_fatal: Callable[[ModelLoadError], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """Build the app for ``settings`` (loaded from the environment when not given).

    Models are imported now (a failing import raises :class:`ModelLoadError`); ``warm()``
    runs in the background once the server starts, and ``/readyz`` answers 200 after it.
    ``on_fatal`` is called if warming fails (a serving process uses it to exit),
    ``on_ready`` once the models are warm.
    """
    settings = settings or Settings.load()
    runtime = runtime or Runtime.load(settings)
    st = AppState(settings=settings, runtime=runtime, spool_root=spool.process_spool(settings.upload_dir))
    if settings.debug_endpoint:
        st.debug_log = LogCapture()
        logging.getLogger().addHandler(st.debug_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        removed = spool.sweep(settings.upload_dir)
        if removed:
            log.info("Removed %d upload folder(s) left by stopped processes.", len(removed))
        task = asyncio.create_task(_warm(runtime, on_fatal, on_ready))
        try:
            yield
        finally:
            task.cancel()
            runtime.close()
            shutil.rmtree(st.spool_root, ignore_errors=True)
            if st.debug_log is not None:
                logging.getLogger().removeHandler(st.debug_log)

    app = Starlette(routes=build_routes(st), exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.modelaas = st
    return app


async def _warm(
    runtime: Runtime,
    on_fatal: Callable[[ModelLoadError], None] | None,
    on_ready: Callable[[], None] | None,
) -> None:
    try:
        await runtime.warm()
    except ModelLoadError as exc:
        log.error("%s\n%s", exc.message, exc.traceback_text or "")
        if on_fatal is not None:
            on_fatal(exc)
        return
    if on_ready is not None:
        on_ready()
