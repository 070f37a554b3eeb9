"""One Ray Serve replica of ``modelaas serve --engine ray``: the same ASGI app as a serving process.

Ray Serve builds the app on the replica (:meth:`ModelaasReplica.__serve_build_asgi_app__`):
the models are loaded and warmed there, before Ray sends the replica any request, so a
replica that joins (a new one, or one replacing a dead one) never answers cold. A model
that fails to load or warm fails the replica's start, which Ray reports to the server.

Trainings are queued under the server's id, like a serving process's; the server's
scheduler (in the ``modelaas serve`` process) claims and runs them on Ray.

Every response names its replica in the ``X-Modelaas-Replica`` header.
"""

from __future__ import annotations

import logging
from typing import Any

from modelaas.settings import Settings

REPLICA_HEADER = "x-modelaas-replica"
log = logging.getLogger("modelaas.serve")


class ModelaasReplica:
    """The deployment class; :func:`deployment` wraps it with Ray Serve's ingress."""

    def __init__(self, settings: Settings, server_id: str) -> None:
        self._settings = settings
        self._server_id = server_id
        self._runtime: Any = None

    async def __serve_build_asgi_app__(self) -> Any:
        from modelaas.jobs.wiring import SupervisedTrainings
        from modelaas.runtime import Runtime
        from modelaas.serve.logs import configure_logging
        from modelaas.web.app import create_app

        settings = self._settings
        configure_logging(settings.log_level)
        runtime = self._runtime = Runtime.load(settings)
        await runtime.warm()  # raises ModelLoadError: this replica does not start
        trainings = SupervisedTrainings(settings, self._server_id) if settings.train_endpoint else None
        app = create_app(settings, runtime=runtime, trainings=trainings)
        return NamedReplica(app, replica_name())

    def check_health(self) -> None:
        """Ray Serve's health check: a replica whose models failed is replaced."""
        runtime = self._runtime
        if runtime is not None and getattr(runtime, "warm_error", None) is not None:
            raise RuntimeError(runtime.warm_error.message)


class NamedReplica:
    """ASGI middleware: adds ``X-Modelaas-Replica: <name>`` to every HTTP response."""

    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self._header = (REPLICA_HEADER.encode(), name.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self._header]}
            await send(message)

        await self.app(scope, receive, named_send)


def replica_name() -> str:
    """Ray Serve's id of this replica (unique in the cluster)."""
    from ray import serve

    return str(serve.get_replica_context().replica_id.unique_id)


def deployment(settings: Settings, server_id: str, *, name: str = "modelaas") -> Any:
    """The bound Ray Serve application: replicas, autoscaling and limits from ``settings``."""
    from ray import serve

    from modelaas.serve.supervisor import GRACE_SECONDS

    options: dict[str, Any] = {
        "name": name,
        # The app's own gate queues and refuses (503 + Retry-After); event streams hold a request open.
        "max_ongoing_requests": settings.predict_concurrency + settings.predict_queue + settings.max_event_streams,
        "graceful_shutdown_timeout_s": GRACE_SECONDS,
        "max_constructor_retry_count": 2,
        "ray_actor_options": {"num_cpus": 1},
    }
    if settings.max_replicas is not None:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = settings.replicas
    ingress = serve.ingress()(ModelaasReplica)
    return serve.deployment(**options)(ingress).bind(settings, server_id)
