"""Versions of a model and what it serves: list, register, activate, delete, reload.

``GET  <b>/v2/models/<m>/versions/``                the versions, newest first, and the active one
``POST <b>/v2/models/<m>/versions/``                register: ``{"job": id}``, ``{"mlflow": uri}``, an ``archive``
``GET  <b>/v2/models/<m>/versions/<v>``             one version (with the model's OIP metadata: web/oip.py)
``POST <b>/v2/models/<m>/versions/<v>/activate``    serve it (every server follows: a rolling reload)
``DELETE <b>/v2/models/<m>/versions/<v>``           remove it (not the active one)
``POST <b>/v2/models/<m>/reload``                   reload the model everywhere (same version)

Activation and reload change the serving state in the job store; this server's supervisor is
told at once and the others see it at their next poll (``--serving-poll``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelaas.errors import BadRequest, Forbidden, NotFound
from modelaas.tokens import ADMIN, TRAIN, grants
from modelaas.web.render import JSON
from modelaas.web.state import AppState, state
from modelaas.web.uploads import read_body

if TYPE_CHECKING:  # the job store's modules load when a version route is first used
    from modelaas.versions.registry import VersionRegistry


def registry_of(st: AppState) -> VersionRegistry:
    """The app's version registry (opened and migrated on first use, in a worker thread)."""
    from modelaas.jobs.database import store_url
    from modelaas.versions.registry import VersionRegistry

    if st.versions is None:
        from modelaas.jobs.database import store_url
        from modelaas.versions.registry import VersionRegistry

        registry = VersionRegistry(store_url(st.settings.jobs_db, st.settings.data_dir), st.settings.data_dir)
        from modelaas.versions import mlflow as versions_mlflow  # late: serving processes start without it

        registry.registered = versions_mlflow.registered_hook(st.settings)
        registry.migrate()
        st.versions = registry
    found: VersionRegistry = st.versions
    return found


async def _registry(request: Request) -> VersionRegistry:
    st = state(request)
    if st.versions is not None:
        return st.versions
    return await asyncio.to_thread(registry_of, st)


def _model_name(request: Request) -> str:
    name: str = request.path_params["model"]
    state(request).runtime.model(name)  # 404 for a model this server does not serve
    return name


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise NotFound(f"There is no version {text!r}: versions are numbered 1, 2, 3...")
    return int(text)


def _who(request: Request) -> str | None:
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, str) else None


def _require(request: Request, scope: str, doing: str) -> None:
    """Routes sharing a path with a readable one (any token) check their own scope."""
    if state(request).tokens.enabled and not grants(request.scope.get("state", {}).get("scopes", ()), scope):
        raise Forbidden(f"This token may not {doing}: that needs the {scope!r} scope (or 'admin').")


def _notify(request: Request) -> None:
    hook = state(request).serving_changed
    if hook is not None:
        hook()


async def index(request: Request) -> Response:
    model = _model_name(request)
    registry = await _registry(request)
    versions, serving = await asyncio.gather(
        asyncio.to_thread(registry.list, model), asyncio.to_thread(registry.state, model)
    )
    return JSON(
        {
            "model": model,
            "active": serving.active_version,
            "generation": serving.generation,
            "versions": [v.to_json(active=v.version == serving.active_version) for v in versions],
        }
    )


async def register(request: Request) -> Response:
    from modelaas.versions.sources import register_archive, register_job

    _require(request, TRAIN, "register versions")
    model = _model_name(request)
    st = state(request)
    registry = await _registry(request)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
    body = await read_body(
        request.receive,
        headers,
        spool_root=st.spool_root,
        max_body=st.settings.client_max_size,
        max_parts=st.settings.max_parts,
        max_field_size=st.settings.max_field_size,
    )
    try:
        by = _who(request)
        if body.files:
            fields = dict(body.fields)
            archive = dict(body.files).get("archive")
            if archive is None:
                raise BadRequest("Upload the version's files as an archive in the form field 'archive'.")
            name = archive.original_filename or "archive"
            version = await asyncio.to_thread(
                register_archive,
                registry,
                Path(archive.filename),
                model=model,
                filename=name,
                max_size=st.settings.client_max_size,
                description=fields.get("description") or None,
                by=by,
            )
        else:
            doc: Any = body.json
            description = doc.get("description") if isinstance(doc, dict) else None
            if description is not None and not isinstance(description, str):
                raise BadRequest("'description' must be a string.")
            if isinstance(doc, dict) and "mlflow" in doc:  # an import from MLflow's Model Registry
                from modelaas.versions import mlflow as versions_mlflow

                version = await asyncio.to_thread(
                    versions_mlflow.import_version,
                    st.settings,
                    registry,
                    model,
                    doc["mlflow"],
                    description=description,
                    by=by,
                )
            else:
                if not isinstance(doc, dict) or not isinstance(doc.get("job"), str):
                    raise BadRequest(
                        'Register a finished training with JSON {"job": "<job id>"}, import one from MLflow with '
                        '{"mlflow": "models:/<name>/<n>"}, or upload an archive (multipart/form-data, field "archive").'
                    )
                jobs = st.jobs
                if jobs is None:
                    raise NotFound("Training is switched off on this server: it cannot look up jobs.")
                job = await asyncio.to_thread(_find_job, jobs, model, doc["job"])
                version = await asyncio.to_thread(
                    register_job, registry, job, jobs.output_dir(job.id), model=model, description=description, by=by
                )
    finally:
        body.cleanup()
    location = f"{st.settings.base_path}/v2/models/{model}/versions/{version.version}"
    return JSON(version.to_json(active=False), status_code=201, headers={"Location": location})


def _find_job(jobs: Any, model: str, given: str) -> Any:
    """The job with id ``given``, or the one job of ``model`` whose id starts with it."""
    from modelaas.errors import JobNotFound

    try:
        return jobs.get(model, given)
    except JobNotFound:
        ids = jobs.store.ids_starting(given, model=model) if len(given) >= 4 else []
        if len(ids) == 1:
            return jobs.get(model, ids[0])
        if len(ids) > 1:
            raise BadRequest(f"{given!r} starts the ids of several jobs: {', '.join(ids)}.") from None
        raise


async def record(request: Request, model: str, version: str) -> dict[str, Any] | None:
    """The record of a registered version (for the OIP metadata route), or None."""
    if not version.isdigit() or len(version) > 9:
        return None
    registry = await _registry(request)
    try:
        found = await asyncio.to_thread(registry.get, model, int(version))
    except NotFound:
        return None
    serving = await asyncio.to_thread(registry.state, model)
    return found.to_json(active=found.version == serving.active_version)


async def activate(request: Request) -> Response:
    model = _model_name(request)
    number = _number(request.path_params["version"])
    registry = await _registry(request)
    serving = await asyncio.to_thread(registry.activate, model, number, by=_who(request))
    _notify(request)
    return JSON({"model": model, "active": serving.active_version, "generation": serving.generation})


async def delete(request: Request) -> Response:
    _require(request, ADMIN, "delete versions")
    model = _model_name(request)
    number = _number(request.path_params["version"])
    registry = await _registry(request)
    await asyncio.to_thread(registry.delete, model, number)
    return Response(status_code=204)


async def reload(request: Request) -> Response:
    model = _model_name(request)
    registry = await _registry(request)
    serving = await asyncio.to_thread(registry.request_reload, model, by=_who(request))
    _notify(request)
    body = {"model": model, "active": serving.active_version, "generation": serving.generation}
    return JSON(body, status_code=202)
