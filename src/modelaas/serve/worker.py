"""One serving process: import the models, build the app, serve the shared socket.

It tells its supervisor ``("ready",)`` once the models are warm, or
``("fatal", message, traceback)`` if they cannot be loaded or warmed, then exits 3.

uvicorn is given the connection limits of the settings: ``keep_alive_timeout`` for idle
connections between requests, and, through :func:`~modelaas.serve.http.bounded_http_protocol`,
a size cap (``max_header_size``, 431) for request heads and trailers and a deadline for
every state in which the server waits on a client (``header_timeout``, ``body_timeout``,
``keep_alive_timeout``), which uvicorn's httptools protocol does not have on its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from modelaas.errors import ModelLoadError
from modelaas.serve.http import bounded_http_protocol
from modelaas.settings import Settings

FATAL_EXIT = 3
log = logging.getLogger("modelaas.serve")


def worker_main(
    settings: Settings,
    sock: socket.socket,
    conn: Connection,
    server_id: str,
    metrics_sock: socket.socket | None = None,
) -> None:
    # SIGINT (a terminal's Ctrl-C, sent to the supervisor too), blocked since this process
    # started, is ignored (one pending is dropped): the supervisor stops us with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent()
    from modelaas.serve.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, capture_output=True)
    if settings.tracing:
        from modelaas.telemetry.tracing import enable_from_environment

        enable_from_environment("modelaas")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    try:
        import uvicorn

        from modelaas.runtime import Runtime
        from modelaas.web.app import create_app

        runtime = Runtime.load(settings, serving=_serving_state(settings))
    except ModelLoadError as exc:
        _send(conn, ("fatal", exc.message, exc.traceback_text or ""))
        sys.exit(FATAL_EXIT)

    failed: list[ModelLoadError] = []
    server: Any = None

    def on_fatal(exc: ModelLoadError) -> None:
        failed.append(exc)
        _send(conn, ("fatal", exc.message, exc.traceback_text or ""))
        if server is not None:
            server.should_exit = True

    def on_ready() -> None:
        # What start-up built (frameworks, the models) lives as long as the process: keep it out of
        # the collector's full scans, which otherwise stop a busy server for tens of milliseconds.
        gc.freeze()
        models = runtime.models()
        _send(conn, ("ready", [(m.name, m.interface) for m in models], {m.name: m.generation for m in models}))

    def on_settled() -> None:
        gc.freeze()  # again: the job store, loaded after the first freeze, lives as long

    from modelaas.jobs.wiring import SupervisedTrainings

    # trainings are queued under the supervisor's id and run by its scheduler, which is told of each
    trainings = SupervisedTrainings(settings, server_id, notify=lambda: _send(conn, ("job-submitted",)))
    app = create_app(
        settings, runtime=runtime, trainings=trainings, on_fatal=on_fatal, on_ready=on_ready, on_settled=on_settled
    )
    app.state.modelaas.serving_changed = lambda: _send(conn, ("serving-changed",))
    config = uvicorn.Config(
        app,
        lifespan="on",
        loop="auto",
        http=bounded_http_protocol(
            settings.max_header_size,
            settings.header_timeout,
            body_timeout=settings.body_timeout,
            idle_timeout=settings.keep_alive_timeout,
        )
        or "h11",
        log_config=None,
        access_log=False,
        log_level=None,  # levels are ours (serve/logs.py); uvicorn would reset them, and knows no "warn"
        timeout_graceful_shutdown=30,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        h11_max_incomplete_event_size=settings.max_header_size,
    )
    server = _uvicorn_server(_grpc_starter(settings, runtime, app, failed, conn))(config)
    server.run(sockets=[sock] if metrics_sock is None else [sock, metrics_sock])
    sys.exit(FATAL_EXIT if failed else 0)


def _grpc_starter(settings: Settings, runtime: Any, app: Any, failed: list[ModelLoadError], conn: Connection) -> Any:
    """What starts the Open Inference Protocol's gRPC server beside uvicorn (None when --grpc-port is not set)."""
    if settings.grpc_port is None:
        return None

    async def start() -> Any:
        from modelaas.oip.grpc_server import start_grpc_server
        from modelaas.web.oip import dataplane_of

        try:
            return await start_grpc_server(dataplane_of(app.state.modelaas), settings, app.state.modelaas.tokens)
        except Exception as exc:  # the port is taken (by a program that does not share it), or the address is wrong
            message = f"Cannot serve gRPC on {settings.listen_ip}:{settings.grpc_port}: {exc}"
            failed.append(ModelLoadError(message))
            _send(conn, ("fatal", message, ""))
            return None

    return start


def _uvicorn_server(start_grpc: Any = None) -> type:
    import uvicorn

    class Server(uvicorn.Server):
        grpc: Any = None
        _drain_task: Any = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if sig == signal.SIGINT:  # ignored: the supervisor, which got it too, sends SIGTERM
                return
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            # SIGUSR1 from the supervisor: a new process serves in our place (a rolling reload)
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._drain_soon)
            if start_grpc is not None:
                self.grpc = await start_grpc()
                if self.grpc is None:
                    self.should_exit = True

        def _drain_soon(self) -> None:
            if self._drain_task is None:
                self._drain_task = asyncio.get_running_loop().create_task(self._drain())

        async def _drain(self) -> None:
            """Stop accepting; each connection's next answer says ``Connection: close`` (its client
            reconnects, to another process); exit once none is left (or idle ones timed out)."""
            log.info("Replaced by a new serving process: finishing this one's connections.")
            for server in self.servers:
                server.close()
            for connection in list(self.server_state.connections):
                drain = getattr(connection, "drain", None)
                if drain is not None:
                    drain()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.timeout_keep_alive + 1.0
            while self.server_state.connections and loop.time() < deadline:
                await asyncio.sleep(0.02)
            self.should_exit = True

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            busy = len(self.server_state.tasks)
            if busy:
                log.info("Stopping: finishing %d request(s) in flight.", busy)
            if self.grpc is not None:  # no new calls; those under way get the HTTP grace period
                await self.grpc.stop(grace=30)
            await super().shutdown(sockets=sockets)
            # Processes model code forked hold the listening socket and the supervisor's sentinel
            # (stop waited 35 s for them, and the port stayed bound): they end with the process.
            # Here, not after run(): uvicorn re-raises the SIGTERM it caught once serving stops.
            from modelaas.jobs.tree import kill_descendants

            kill_descendants()

    return Server


def _serving_state(settings: Settings) -> dict[str, Any] | None:
    """Which version of each model to serve (the job store's serving state), or None if it cannot be read."""
    from modelaas.jobs.database import first_line, store_url
    from modelaas.versions.serving import ServingStore

    try:
        store = ServingStore(store_url(settings.jobs_db, settings.data_dir), retry_for=5.0)
        try:
            store.migrate()  # beside the supervisor's, which it waits for
            return dict(store.serving())
        finally:
            store.close()
    except Exception as exc:
        log.warning(
            "Cannot read the versions to serve from the job store (%s); serving the models as installed.",
            first_line(exc),
        )
        return None


def _send(conn: Connection, message: tuple[Any, ...]) -> None:
    try:
        conn.send(message)
    except (OSError, ValueError):  # the supervisor is gone; we are about to be too
        pass


def _die_with_parent() -> None:
    """Exit when the supervisor dies, even by SIGKILL (no orphaned serving processes)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM) == 0:  # PR_SET_PDEATHSIG (Linux)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
                os._exit(1)
            time.sleep(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
