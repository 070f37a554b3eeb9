"""``modelaas serve``: every setting as a flag (the ``deepaas-run`` flags included)."""

from __future__ import annotations

from typing import Any

import click

from modelaas.cli.options import settings_options
from modelaas.settings import Settings


@click.command()
@settings_options
def serve(**flags: Any) -> int:
    """Serve the installed models (or the built-in demo model) over HTTP.

    Accepts the flags of ``deepaas-run`` with the same meaning. Settings also come from
    MODELAAS_* environment variables and --config-file; flags win.
    """
    settings = Settings.load(flags)
    if settings.engine == "ray":
        from modelaas.serve.ray_engine import RayEngine

        return RayEngine(settings).run()
    from modelaas.serve.supervisor import Supervisor

    return Supervisor(settings).run()
