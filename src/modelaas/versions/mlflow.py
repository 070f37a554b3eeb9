"""Versions and the MLflow Model Registry (``--mlflow-tracking-uri``).

* Registering a version also registers it in MLflow's Model Registry, under the model's
  name: its source is the MLflow run of its training when it has one (the run's artefacts
  are the training's files), else a run made for it that holds its files. MLflow failing
  never fails a registration: a warning says so.
* A version can be imported from MLflow (``models:/name/N``): its artefacts are downloaded
  into a temporary folder, which the registry then imports.

mlflow is imported late, in these functions only: modelaas works without it.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelaas.errors import BadRequest, MlflowFailed
from modelaas.jobs.paths import JobPaths
from modelaas.jobs.tracking import configure_client, read_run
from modelaas.settings import Settings
from modelaas.versions.registry import Version, VersionRegistry

log = logging.getLogger("modelaas.versions")

MODELS_URI = re.compile(r"^models:/(?P<name>[^/@\s]+)(/(?P<version>\d+)|@(?P<alias>[\w-]+))$")
VERSION_TAG = "modelaas.version"


def parse_uri(uri: Any) -> str:
    """``uri`` when it names a model version of MLflow's registry (``models:/name/N`` or ``models:/name@alias``)."""
    if not isinstance(uri, str) or not MODELS_URI.match(uri.strip()):
        raise BadRequest(f"'mlflow' must be a model version URI such as models:/name/3, not {uri!r}.")
    return uri.strip()


def _client(settings: Settings) -> Any:
    if not settings.mlflow_tracking_uri:
        raise BadRequest("Importing from MLflow needs an MLflow server: set --mlflow-tracking-uri.")
    configure_client()
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise BadRequest(
            f"Importing from MLflow needs the mlflow extra (pip install 'modelaas[mlflow]'): {exc}"
        ) from exc
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def download(settings: Settings, uri: str, dest: Path) -> Path:
    """Download the artefacts of the model version ``uri`` into ``dest``; answers the folder holding them."""
    uri = parse_uri(uri)
    client = _client(settings)  # checks the setting and the extra
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    found = MODELS_URI.match(uri)
    assert found is not None
    name, number, alias = found.group("name"), found.group("version"), found.group("alias")
    try:  # resolved here: MLflow's models:/ resolution makes a client of the default (local) store
        if alias:
            number = client.get_model_version_by_alias(name, alias).version
        source = client.get_model_version_download_uri(name, number)
        path = download_artifacts(artifact_uri=source, dst_path=str(dest), tracking_uri=settings.mlflow_tracking_uri)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise BadRequest(f"MLflow has no model version {uri}: {_first_line(exc)}") from exc
        raise MlflowFailed(f"MLflow failed to give {uri}: {_first_line(exc)}") from exc
    except Exception as exc:  # the server unreachable, an artefact store refusing
        raise MlflowFailed(f"MLflow could not give {uri}: {_first_line(exc)}") from exc
    return Path(path)


def register(
    settings: Settings,
    model: str,
    version: int,
    files: Path,
    *,
    job_dir: Path | None = None,
    description: str | None = None,
) -> int | None:
    """Register version ``version`` of ``model`` in MLflow's Model Registry; answers MLflow's version number.

    Does nothing (answers None) without --mlflow-tracking-uri; a failure is a warning.
    """
    if not settings.mlflow_tracking_uri:
        return None
    try:
        client = _client(settings)
        number = _register(client, settings, model, version, files, job_dir, description)
    except Exception as exc:
        log.warning("Version %d of %r is not in MLflow's Model Registry (%s).", version, model, _first_line(exc))
        return None
    log.info("Version %d of %r is version %d of %r in MLflow's Model Registry.", version, model, number, model)
    return number


def _register(
    client: Any,
    settings: Settings,
    model: str,
    version: int,
    files: Path,
    job_dir: Path | None,
    description: str | None,
) -> int:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model, tags={"modelaas.model": model})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    run = read_run(job_dir) if job_dir is not None else None
    if run is not None and run.get("tracking_uri") == settings.mlflow_tracking_uri:
        run_id = run["run_id"]
    else:  # no tracked training: a run that holds the version's files
        run_id = _files_run(client, settings.mlflow_experiment or model, model, version, files)
    source = client.get_run(run_id).info.artifact_uri
    made = client.create_model_version(
        model, source, run_id=run_id, tags={VERSION_TAG: str(version)}, description=description
    )
    return int(made.version)


def _files_run(client: Any, experiment: str, model: str, version: int, files: Path) -> str:
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    tags = {"modelaas.model": model, VERSION_TAG: str(version), "mlflow.runName": f"{model}-version-{version}"}
    run_id: str = client.create_run(experiment_id, tags=tags).info.run_id
    try:
        if files.is_dir() and any(files.iterdir()):
            client.log_artifacts(run_id, str(files))
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def registered_hook(settings: Settings) -> Callable[[Version, Path], None] | None:
    """What :class:`VersionRegistry` calls after each registration (``registered``): None without MLflow."""
    if not settings.mlflow_tracking_uri:
        return None

    def hook(version: Version, folder: Path) -> None:
        if version.source.get("kind") == "mlflow":
            return  # it came from MLflow's registry: it is there already
        job = version.source.get("job") if version.source.get("kind") == "job" else None
        job_dir = JobPaths.of(settings).job(job) if isinstance(job, str) else None
        register(settings, version.model, version.version, folder, job_dir=job_dir, description=version.description)

    return hook


def import_version(
    settings: Settings,
    registry: VersionRegistry,
    model: str,
    uri: Any,
    *,
    description: str | None = None,
    by: str | None = None,
) -> Version:
    """A new version of ``model`` holding the artefacts of MLflow's model version ``uri``, with the
    params and metrics of its run when it has one."""
    uri = parse_uri(uri)
    client = _client(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mlflow-", dir=settings.data_dir) as tmp:
        folder = download(settings, uri, Path(tmp) / "artefacts")
        args, metrics = _run_data(client, uri)
        staged = registry.staging(model)
        try:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    target = staged / path.relative_to(folder)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, target)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    return registry.register(
        model,
        staged,
        source={"kind": "mlflow", "uri": uri},
        args=args,
        metrics=metrics,
        description=description,
        by=by,
    )


def _run_data(client: Any, uri: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params and metrics of the run a model version came from ({} and {} when none or unreadable)."""
    found = MODELS_URI.match(uri)
    assert found is not None
    try:
        name, number = found.group("name"), found.group("version")
        made = (
            client.get_model_version(name, number)
            if number
            else client.get_model_version_by_alias(name, found.group("alias"))
        )
        if not made.run_id:
            return {}, {}
        run = client.get_run(made.run_id)
        return dict(run.data.params), dict(run.data.metrics)
    except Exception as exc:
        log.warning("The run of %s could not be read (%s): the version has no args or metrics.", uri, _first_line(exc))
        return {}, {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
