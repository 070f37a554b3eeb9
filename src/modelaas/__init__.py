"""modelaas: serve DEEPaaS and typed Python models over REST.

The public surface; everything else may change between releases.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from modelaas.client import Client, Event, Job
    from modelaas.errors import (
        BadRequest,
        ConfigError,
        JobFailed,
        ModelaasError,
        ModelError,
        ModelLoadError,
        ModelNotFound,
        NotImplementedByModel,
        ServerUnreachable,
        ValidationError,
    )
    from modelaas.model.batch import Batch, batched
    from modelaas.model.files import File
    from modelaas.model.interface import Input, Model, Output, TrainingContext
    from modelaas.model.urlfile import URLFile
    from modelaas.settings import Settings
    from modelaas.web.app import create_app

__all__ = [
    "BadRequest",
    "Batch",
    "Client",
    "ConfigError",
    "Event",
    "File",
    "Input",
    "Job",
    "JobFailed",
    "Model",
    "ModelError",
    "ModelLoadError",
    "ModelNotFound",
    "ModelaasError",
    "NotImplementedByModel",
    "Output",
    "ServerUnreachable",
    "Settings",
    "TrainingContext",
    "URLFile",
    "ValidationError",
    "batched",
    "create_app",
]


_WHERE = {
    "BadRequest": "modelaas.errors",
    "ConfigError": "modelaas.errors",
    "JobFailed": "modelaas.errors",
    "ModelaasError": "modelaas.errors",
    "ModelError": "modelaas.errors",
    "ModelLoadError": "modelaas.errors",
    "ModelNotFound": "modelaas.errors",
    "NotImplementedByModel": "modelaas.errors",
    "ServerUnreachable": "modelaas.errors",
    "ValidationError": "modelaas.errors",
    "Batch": "modelaas.model.batch",
    "batched": "modelaas.model.batch",
    "File": "modelaas.model.files",
    "Input": "modelaas.model.interface",
    "Model": "modelaas.model.interface",
    "Output": "modelaas.model.interface",
    "TrainingContext": "modelaas.model.interface",
    "URLFile": "modelaas.model.urlfile",
    "Settings": "modelaas.settings",
    "Client": "modelaas.client",
    "Event": "modelaas.client",
    "Job": "modelaas.client",
    "create_app": "modelaas.web.app",
}
"""Where each public name lives: imported when first asked for, so that ``import modelaas``
(which every serving process and every model module does) costs next to nothing."""


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'modelaas' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
