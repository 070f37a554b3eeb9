"""How settings become the Ray Serve deployment (no Ray started), and the replica's header."""

from __future__ import annotations

import os

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from modelaas.serve.ray_replica import REPLICA_HEADER, NamedReplica
from modelaas.serve.supervisor import GRACE_SECONDS
from modelaas.settings import Settings

if not os.environ.get("CI"):  # in CI, a missing Ray Serve fails the tests
    pytest.importorskip("ray.serve", reason="needs modelaas[ray]")


def config(settings: Settings):
    from modelaas.serve.ray_replica import deployment

    return deployment(settings, "server-id")._bound_deployment._deployment_config


def test_fixed_replicas_and_limits_come_from_the_settings():
    c = config(Settings(engine="ray", replicas=3, predict_concurrency=2, predict_queue=10, max_event_streams=5))
    assert c.num_replicas == 3 and c.autoscaling_config is None
    assert c.max_ongoing_requests == 17  # the app's own gate and stream slots refuse beyond
    assert c.graceful_shutdown_timeout_s == GRACE_SECONDS


def test_max_replicas_turns_on_autoscaling():
    c = config(Settings(engine="ray", min_replicas=2, max_replicas=5, target_ongoing_requests=3))
    a = c.autoscaling_config
    assert (a.min_replicas, a.max_replicas, a.target_ongoing_requests) == (2, 5, 3)


def test_every_response_names_its_replica():
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi", headers={"x-a": "1"}))])
    with TestClient(NamedReplica(app, "r-1")) as client:
        r = client.get("/")
        r404 = client.get("/nope")
    assert r.headers[REPLICA_HEADER] == "r-1" and r.headers["x-a"] == "1" and r.text == "hi"
    assert r404.status_code == 404 and r404.headers[REPLICA_HEADER] == "r-1"
