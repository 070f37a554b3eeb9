"""``modelaas serve --engine ray``: the app as a Ray Serve deployment.

This process is the server's control process, as the supervisor is for the process engine:

* It connects to Ray (``--ray-address``, or a private local Ray that it stops again),
  starts Ray Serve's HTTP proxy on ``--listen-ip``/``--listen-port`` and deploys
  ``--replicas`` replicas (or autoscaling between ``--min-replicas`` and
  ``--max-replicas`` on ``--target-ongoing-requests``). Each replica builds the same ASGI
  app as a serving process and warms its models before it takes requests
  (:mod:`modelaas.serve.ray_replica`). Ray Serve replaces a replica that dies.
* It runs the server's training scheduler, whose trainings run as Ray tasks (the Ray
  backend), over the job store that every replica shares.
* SIGTERM/SIGINT: the application is deleted (replicas finish in-flight requests), running
  trainings are stopped and recorded, Ray Serve is shut down if no other application uses
  it, and Ray is left (or stopped, if it was ours). No actor of ours stays behind.

Replicas on several machines cannot share a SQLite file: with ``--ray-address`` the job
store must be PostgreSQL (``--jobs-db``), and ``--data-dir`` a filesystem all nodes mount.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import signal
import sys
import time
from typing import Any

from modelaas.errors import ConfigError, ModelLoadError
from modelaas.jobs.ids import new_server_id
from modelaas.serve.logs import configure_logging
from modelaas.serve.supervisor import bind_socket, is_loopback
from modelaas.settings import Settings
from modelaas.tokens import load_tokens

log = logging.getLogger("modelaas.serve")
APP_NAME = "modelaas"
MISSING_SERVE = "--engine ray needs Ray Serve: pip install 'modelaas[ray]'"


def check_engine_settings(settings: Settings) -> None:
    """Refuse what cannot work across machines, before anything starts."""
    shared = settings.jobs_db is not None and not settings.jobs_db.startswith("sqlite")
    if settings.ray_address and not shared:
        raise ConfigError(
            "--engine ray with --ray-address: replicas and trainings may run on other machines, which cannot "
            "share a SQLite job store. Give --jobs-db postgresql://user@host/db (and a --data-dir that every "
            "node mounts), or leave out --ray-address to serve on a private Ray on this machine."
        )


class RayEngine:
    def __init__(self, settings: Settings) -> None:
        check_engine_settings(settings)
        # trainings run on the same Ray as the replicas
        self.settings = dataclasses.replace(settings, jobs_backend="ray")
        self.server_id = new_server_id()
        self._stopping = False

    def run(self) -> int:
        configure_logging(self.settings.log_level)
        self._check_access()
        bind_socket(self.settings.listen_ip, self.settings.listen_port).close()  # a taken port: say so now
        if self.settings.workers != 1:
            log.warning("--workers is for the process engine: with --engine ray, each replica is one process.")
        try:
            from ray import serve
        except ImportError:
            raise ConfigError(MISSING_SERVE) from None
        from modelaas.jobs.backends.ray import RayConnection, import_ray

        ray = import_ray()
        connection = RayConnection(ray, self.settings.ray_address, log_to_driver=True)  # ConfigError if it cannot
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        scheduler = None
        deployed = False
        try:
            s = self.settings
            try:
                serve.start(
                    http_options={
                        "host": s.listen_ip,
                        "port": s.listen_port,
                        "keep_alive_timeout_s": s.keep_alive_timeout,
                    }
                )
            except Exception as exc:
                raise ConfigError(
                    f"Ray Serve could not start its HTTP proxy on {s.listen_ip}:{s.listen_port}: {first_line(exc)}"
                ) from None
            if s.train_endpoint:
                scheduler = self._start_scheduler()
            deployed = True
            exit_code = self._deploy(serve)
            if exit_code == 0:
                self._announce()
                while not self._stopping:
                    time.sleep(0.2)
            return exit_code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shutdown(serve, deployed, scheduler, connection)

    def _check_access(self) -> None:
        tokens = load_tokens(self.settings)
        if tokens.enabled:
            log.info("Access control is on: %d token(s).", len(tokens))
        elif not is_loopback(self.settings.listen_ip):
            log.warning(
                "Listening on %s without access tokens: anyone who can reach this address can run predictions "
                "and start, read and delete trainings. Set MODELAAS_TOKENS or --tokens-file (docs/security.md).",
                self.settings.listen_ip,
            )

    def _start_scheduler(self) -> Any:
        from modelaas.jobs.wiring import SchedulerHost
        from modelaas.versions.trainings import training_hook

        host = SchedulerHost(self.settings, self.server_id, ended=training_hook(self.settings))
        host.start()
        return host

    def _deploy(self, serve: Any) -> int:
        """Deploy and wait until every replica is warm; 3 if the models cannot start."""
        from modelaas.serve.ray_replica import deployment

        try:
            serve.run(deployment(self.settings, self.server_id), name=APP_NAME, route_prefix="/")
        except ModelLoadError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            return 3
        except Exception as exc:  # Ray reports a replica that failed to start as its own error
            if self._stopping:
                return 0
            reason = model_error(deployment_message(serve)) or first_line(exc)
            print(f"Error: the Ray Serve replicas did not start: {reason}", file=sys.stderr)
            return 3
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stopping:
            log.info("Received %s; finishing in-flight requests and stopping.", signal.Signals(signum).name)
        self._stopping = True

    def _announce(self) -> None:
        s = self.settings
        host = f"[{s.listen_ip}]" if ":" in s.listen_ip else s.listen_ip
        url = f"http://{host}:{s.listen_port}{s.base_path}"
        scale = f"{s.min_replicas} to {s.max_replicas} autoscaled" if s.max_replicas is not None else str(s.replicas)
        docs = f"; API docs at {url}/api" if s.doc_endpoint else ""
        log.info("modelaas is ready on %s with %s Ray Serve replica(s)%s", url, scale, docs)

    def _shutdown(self, serve: Any, deployed: bool, scheduler: Any, connection: Any) -> None:
        """Each step bounded: a Ray that is going away (Ctrl-C reaches a private Ray's processes too)
        must not keep the server from exiting."""
        from modelaas.serve.supervisor import GRACE_SECONDS

        try:
            if deployed:
                _bounded(serve.delete, APP_NAME, timeout=GRACE_SECONDS + 10)  # the replicas drain
            if scheduler is not None:
                scheduler.stop()
                scheduler.store.close()
            status = _bounded(serve.status, timeout=10)
            if status is not None and not getattr(status, "applications", None):
                _bounded(serve.shutdown, timeout=30)  # the controller and proxies, unless others' apps use them
        finally:
            connection.close(timeout=30)


def _bounded(func: Any, *args: Any, timeout: float) -> Any:
    """``func(*args)`` on a thread of its own, given up after ``timeout`` seconds (None then, or on error)."""
    import threading

    result: list[Any] = [None]

    def call() -> None:
        try:
            result[0] = func(*args)
        except Exception as exc:  # Ray may be going away already
            log.debug("%s failed during shutdown: %s", getattr(func, "__name__", func), exc)

    thread = threading.Thread(target=call, name="modelaas-ray-shutdown", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("Ray did not answer %s within %.0f s; going on.", getattr(func, "__name__", func), timeout)
    return result[0]


def deployment_message(serve: Any) -> str:
    """What Ray Serve says of the deployment (a failed replica's traceback), or ''."""
    try:
        app = serve.status().applications[APP_NAME]
        return "\n".join([str(app.message), *(str(d.message) for d in app.deployments.values())])
    except Exception:
        return ""


def model_error(text: str) -> str | None:
    """The ModelLoadError line of a replica's traceback: what modelaas says of the model."""
    found = re.findall(r"ModelLoadError: (.+)", text)
    return found[-1].strip() if found else None


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
