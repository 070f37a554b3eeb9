"""``modelaas reload MODEL``: every server of a job store reloads a model (a rolling reload).

With ``--remote URL`` the server is asked (``POST <b>/v2/models/<m>/reload``, admin scope);
without it, the local job store (``--data-dir`` / ``--jobs-db``, as for ``modelaas serve``)
is changed directly. Either way the model's generation rises and each server that uses the
store replaces its serving processes one at a time (within its ``--serving-poll`` seconds).
"""

from __future__ import annotations

from typing import Any

import click

from modelaas.cli.options import setting_options
from modelaas.cli.output import emit_json
from modelaas.settings import Settings


@click.command()
@click.argument("model")
@click.option("--remote", metavar="URL", help="The modelaas server to ask (default: the local job store).")
@click.option("--token", envvar="MODELAAS_TOKEN", help="Bearer token for --remote (the 'admin' scope).")
@setting_options("data_dir", "jobs_db", "config_file")
def reload(model: str, remote: str | None, token: str | None, **local: Any) -> int:
    """Reload MODEL in every server of its job store: new serving processes load it (its active
    version; a model whose warm() loads its latest checkpoint loads that) and replace the old ones
    one at a time, without failing a request. Prints the model's serving state."""
    given = [name for name, value in local.items() if value is not None]
    if remote and given:
        options = " and ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(
            f"{options} {'are' if len(given) > 1 else 'is'} for a local job store: not with --remote."
        )
    if remote:
        from modelaas.client import Client

        with Client(remote, token) as client:
            state = client.reload(model)
    else:
        state = _reload_locally(Settings.load(local), model)
    emit_json(state, None)
    click.echo(
        f"Generation {state['generation']} of {model!r} requested: its servers replace their serving "
        "processes one at a time (within --serving-poll seconds).",
        err=True,
    )
    return 0


def _reload_locally(settings: Settings, model: str) -> dict[str, Any]:
    from modelaas.jobs.database import relative_sqlite_warning, store_url
    from modelaas.versions.serving import ServingStore

    warning = relative_sqlite_warning(settings.jobs_db)
    if warning:
        click.echo(f"Warning: {warning}", err=True)
    if not settings.jobs_db:
        settings.make_data_dir()
    store = ServingStore(store_url(settings.jobs_db, settings.data_dir))
    try:
        store.migrate()
        state = store.request_reload(model, by="cli")
    finally:
        store.close()
    return {"model": model, "active": state.active_version, "generation": state.generation}
