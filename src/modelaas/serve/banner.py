"""What the supervisor says once the server is ready: version, models, job store, URLs."""

from __future__ import annotations

import platform
import sys
from urllib.parse import urlsplit, urlunsplit

from modelaas.errors import REDACTED, ModelaasError
from modelaas.model.loader import ModelRef, select_models
from modelaas.settings import Settings
from modelaas.telemetry.metrics import version


def banner(settings: Settings, served: list[tuple[str, str]], url: str) -> list[str]:
    """The start-up lines; ``served`` is ``(name, interface)`` of each model, as a serving process loaded it."""
    lines = [f"modelaas {version()} on Python {platform.python_version()} ({sys.prefix})"]
    interfaces = dict(served)
    try:
        refs = select_models(settings)
    except ModelaasError:  # the serving processes loaded them: this cannot fail now, but never stop here
        refs = []
    for ref in refs:
        lines.append(f"Model {ref.name!r} ({interfaces.get(ref.name, ref.interface or '?')}): {origin(ref)}")
    if settings.train_endpoint:
        lines.append(f"Job store: {shown_store(settings)}; trainings run on backend {settings.jobs_backend!r}")
    else:
        lines.append("Trainings are off (--notrain-endpoint)")
    lines.append(f"Serving processes: {settings.workers}")
    if settings.doc_endpoint:
        lines.append(f"API docs: {url}/api; web UI: {url}/ui")
    if settings.metrics:
        where = (
            url
            if settings.metrics_port is None
            else url.replace(f":{settings.listen_port}", f":{settings.metrics_port}")
        )
        lines.append(f"Prometheus metrics: {where}/metrics")
    return lines


def origin(ref: ModelRef) -> str:
    """Where a model comes from, in words (the built-in demo says why it is served)."""
    if ref.source == "builtin":
        return (
            "the built-in demo, served because no model is installed in this Python environment "
            f"({sys.prefix}); install yours there (pip install -e .) or give --model pkg.module:attr"
        )
    if ref.source == "--model":
        return f"--model {ref.target}"
    package = f" of package {ref.distribution}" if ref.distribution else ""
    return f"entry point {ref.target} (group {ref.source}){package}"


def shown_store(settings: Settings) -> str:
    """The job store's URL with any password replaced by ``<redacted>``."""
    if not settings.jobs_db:
        return f"SQLite {settings.data_dir / 'jobs.sqlite3'}"
    parts = urlsplit(settings.jobs_db)
    if parts.password is None:
        return settings.jobs_db
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":" + REDACTED
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
