"""modelaas: serve DEEPaaS and typed Python models over REST.

The public surface; everything else may change between releases.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from modelaas.client import Client, Event, Job
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
    from modelaas.model.interface import Input, Model, Output, TrainingContext
    from modelaas.model.urlfile import URLFile
    from modelaas.settings import Settings
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
    "Output",
    "ServerUnreachable",
    "Settings",
    "TrainingContext",
    "URLFile",
    "ValidationError",
    "create_app",
]


_WHERE = {
    "BadRequest": "modelaas.errors",
    "ConfigError": "modelaas.errors",
    "ModelaasError": "modelaas.errors",
    "ModelError": "modelaas.errors",
    "ModelLoadError": "modelaas.errors",
    "ModelNotFound": "modelaas.errors",
    "NotImplementedByModel": "modelaas.errors",
    "ServerUnreachable": "modelaas.errors",
    "ValidationError": "modelaas.errors",
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
