"""modelaas: serve DEEPaaS and typed Python models over REST.

The public surface; everything else may change between releases.
"""

from modelaas.errors import (
    BadRequest,
    ConfigError,
    ModelaasError,
    ModelError,
    ModelLoadError,
    ModelNotFound,
    NotImplementedByModel,
    ServerUnreachable,
    ValidationError,
)
from modelaas.model.files import File
from modelaas.model.interface import Input, Model, TrainingContext
from modelaas.model.urlfile import URLFile
from modelaas.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from modelaas.client import Client, Event, Job
    from modelaas.web.app import create_app

__all__ = [
    "BadRequest",
    "Client",
    "ConfigError",
    "Event",
    "File",
    "Input",
    "Job",
    "Model",
    "ModelError",
    "ModelLoadError",
    "ModelNotFound",
    "ModelaasError",
    "NotImplementedByModel",
    "ServerUnreachable",
    "Settings",
    "TrainingContext",
    "URLFile",
    "ValidationError",
    "create_app",
]


def __getattr__(name: str) -> object:
    # The web stack is imported only when asked for, so that a model module doing
    # ``from modelaas import Model`` stays cheap to import.
    if name in ("Client", "Event", "Job"):
        from modelaas import client

        return getattr(client, name)
    if name == "create_app":
        from modelaas.web.app import create_app

        return create_app
    raise AttributeError(f"module 'modelaas' has no attribute {name!r}")
