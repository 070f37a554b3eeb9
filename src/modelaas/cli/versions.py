"""``modelaas versions list|show|register|activate|delete`` and ``modelaas reload``.

On the server at ``--remote URL``, or in this machine's job store and data dir (the
options 'modelaas serve' reads): servers on that store follow an activation made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from modelaas.cli.output import emit_json
from modelaas.settings import Settings

_remote = click.option("--remote", metavar="URL", help="The modelaas server to ask (default: the local job store).")
_token = click.option("--token", envvar="MODELAAS_TOKEN", help="Bearer token for --remote.")


def _where(func: Callable[..., Any]) -> Callable[..., Any]:
    from modelaas.cli.options import setting_options

    return _remote(_token(setting_options("data_dir", "jobs_db", "config_file")(func)))


class _Local:
    """The local job store and data dir, answering as the routes do."""

    def __init__(self, settings: Settings) -> None:
        from modelaas.jobs.database import store_url
        from modelaas.versions import mlflow as versions_mlflow
        from modelaas.versions.registry import VersionRegistry

        self.settings = settings
        self.registry = VersionRegistry(store_url(settings.jobs_db, settings.data_dir), settings.data_dir)
        self.registry.registered = versions_mlflow.registered_hook(settings)
        self.registry.migrate()

    def versions(self, model: str) -> dict[str, Any]:
        state = self.registry.state(model)
        listed = [v.to_json(active=v.version == state.active_version) for v in self.registry.list(model)]
        return {"model": model, "active": state.active_version, "generation": state.generation, "versions": listed}

    def register_version(
        self, model: str, *, job: str | None, archive: str | None, description: str | None
    ) -> dict[str, Any]:
        from modelaas.jobs.paths import JobPaths
        from modelaas.jobs.store import open_store
        from modelaas.versions.sources import register_archive, register_job

        if archive is not None:
            version = register_archive(
                self.registry,
                Path(archive),
                model=model,
                filename=Path(archive).name,
                max_size=self.settings.client_max_size,
                description=description,
            )
            return version.to_json(active=False)
        assert job is not None
        from modelaas.errors import JobNotFound

        store = open_store(self.settings)
        try:
            ids = [job] if store.get(job) is not None else store.ids_starting(job, model=model)
            if len(ids) != 1:
                raise JobNotFound(model, job)
            found = store.get(ids[0])
            assert found is not None
            version = register_job(
                self.registry, found, JobPaths.of(self.settings).output(found.id), model=model, description=description
            )
        finally:
            store.close()
        return version.to_json(active=False)

    def activate_version(self, model: str, version: int) -> dict[str, Any]:
        state = self.registry.activate(model, version)
        return {"model": model, "active": state.active_version, "generation": state.generation}

    def delete_version(self, model: str, version: int) -> None:
        self.registry.delete(model, version)

    def reload(self, model: str) -> dict[str, Any]:
        state = self.registry.request_reload(model)
        return {"model": model, "active": state.active_version, "generation": state.generation}

    def close(self) -> None:
        self.registry.close()


@contextmanager
def _source(remote: str | None, token: str | None, local: dict[str, Any]) -> Iterator[Any]:
    given = [name for name, value in local.items() if value is not None]
    if remote and given:
        options = " and ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(f"{options}: for a local job store, not with --remote.")
    if remote:
        from modelaas.client import Client

        source: Any = Client(remote, token)
    else:
        source = _Local(Settings.load(local))
    try:
        yield source
    finally:
        source.close()


@click.group()
def versions() -> None:
    """Versions of a model: of the server at --remote URL, or in this machine's job store and data
    dir (--data-dir / --jobs-db, as for 'modelaas serve'; servers on that store follow)."""


@versions.command("list")
@click.argument("model")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def list_versions(model: str, remote: str | None, token: str | None, as_json: bool, **local: Any) -> int:
    """List MODEL's versions, newest first (* marks the active one)."""
    with _source(remote, token, local) as source:
        answer = source.versions(model)
    if as_json:
        emit_json(answer, None)
        return 0
    if not answer["versions"]:
        click.echo(f"Model {model!r} has no versions; it serves the model as installed.", err=True)
        return 0
    for v in answer["versions"]:
        mark = "*" if v["active"] else " "
        where = v["source"].get("job") or v["source"].get("filename") or ""
        metrics = " ".join(f"{k}={val}" for k, val in sorted(v["metrics"].items()))
        click.echo(f"{mark} {v['version']:>4}  {v['created_at'][:19]}  {where}  {metrics}".rstrip())
    return 0


@versions.command("show")
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_where
def show_version(model: str, version: int, remote: str | None, token: str | None, **local: Any) -> int:
    """Print one version's record as JSON."""
    with _source(remote, token, local) as source:
        found = [v for v in source.versions(model)["versions"] if v["version"] == version]
    if not found:
        raise click.ClickException(f"Model {model!r} has no version {version}.")
    emit_json(found[0], None)
    return 0


@versions.command("register")
@click.argument("model")
@click.option("--job", help="A finished training's id (or a unique start of it).")
@click.option("--archive", type=click.Path(exists=True, dir_okay=False), help="A .zip, .tar.gz or .tar of the files.")
@click.option("--description", help="What this version is.")
@_where
def register_version(
    model: str,
    job: str | None,
    archive: str | None,
    description: str | None,
    remote: str | None,
    token: str | None,
    **local: Any,
) -> int:
    """Register a new version of MODEL: a finished training's output (--job) or an archive's files."""
    if (job is None) == (archive is None):
        raise click.UsageError("Give --job or --archive (one of them).")
    with _source(remote, token, local) as source:
        record = source.register_version(model, job=job, archive=archive, description=description)
    click.echo(f"Registered version {record['version']} of {model!r}.", err=True)
    emit_json(record, None)
    return 0


@versions.command("activate")
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_where
def activate_version(model: str, version: int, remote: str | None, token: str | None, **local: Any) -> int:
    """Serve VERSION of MODEL: every server replaces its processes one at a time (rolling back:
    activate an older version)."""
    with _source(remote, token, local) as source:
        state = source.activate_version(model, version)
    click.echo(f"Version {state['active']} of {model!r} is active (generation {state['generation']}).")
    return 0


@versions.command("delete")
@click.argument("model")
@click.argument("version", type=click.IntRange(min=1))
@_where
def delete_version(model: str, version: int, remote: str | None, token: str | None, **local: Any) -> int:
    """Delete VERSION of MODEL and its files (not the active one)."""
    with _source(remote, token, local) as source:
        source.delete_version(model, version)
    click.echo(f"Deleted version {version} of {model!r}.")
    return 0


@click.command("reload")
@click.argument("model")
@_where
def reload(model: str, remote: str | None, token: str | None, **local: Any) -> int:
    """Reload MODEL in every server, one serving process at a time (its warm() runs again: a DEEPaaS
    model loads its latest checkpoint)."""
    with _source(remote, token, local) as source:
        state = source.reload(model)
    click.echo(f"Reload of {model!r} asked for (generation {state['generation']}).")
    return 0
