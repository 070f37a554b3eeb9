"""Finding and loading models: entry points and ``module:attr`` references.

Entry-point groups, strongest first when one name appears in several:
``modelaas.model`` (typed), ``deepaas.v2.model`` (v2), ``deepaas.model`` (v1, the seed).
A target may be a module, an object, or a class (instantiated once per process).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from modelaas.errors import ModelLoadError
from modelaas.model.adapters import ADAPTERS, ModelAdapter, V1Adapter, detect_interface
from modelaas.model.interface import Model
from modelaas.settings import Settings

GROUPS: dict[str, str] = {
    "modelaas.model": "typed",
    "deepaas.v2.model": "v2",
    "deepaas.model": "v1",
}
DEMO_NAME = "modelaas-demo"


@dataclass(frozen=True)
class ModelRef:
    """A model that can be loaded: its name, where it lives and which interface it speaks."""

    name: str
    target: str
    """``pkg.module`` or ``pkg.module:attr``."""
    interface: str | None
    """``v1``, ``v2``, ``typed``; ``None`` to detect from the object."""
    source: str
    """Where it was found: an entry-point group, ``--model`` or ``builtin``."""
    distribution: str | None = None


def installed_models() -> list[ModelRef]:
    """Every model declared by an installed package, one per name."""
    found: dict[str, ModelRef] = {}
    for group, interface in GROUPS.items():  # strongest group first
        for ep in metadata.entry_points(group=group):
            if ep.name in found:
                continue
            dist = getattr(getattr(ep, "dist", None), "name", None)
            found[ep.name] = ModelRef(ep.name, ep.value, interface, group, dist)
    return sorted(found.values(), key=lambda r: r.name)


def select_models(settings: Settings) -> list[ModelRef]:
    """The models a server with these settings serves (not yet imported)."""
    if settings.model:
        name = settings.model_name or settings.model.split(":")[0].split(".")[0].replace("_", "-")
        return [ModelRef(name, settings.model, None, "--model")]
    installed = installed_models()
    if settings.model_name:
        chosen = [r for r in installed if r.name == settings.model_name]
        if not chosen:
            names = ", ".join(r.name for r in installed) or "none"
            raise ModelLoadError(f"No installed model is named {settings.model_name!r}. Installed models: {names}.")
        return chosen
    if installed:
        return installed
    return [ModelRef(DEMO_NAME, "modelaas.model.demo:DemoModel", "typed", "builtin")]


def load(ref: ModelRef, settings: Settings | None = None) -> ModelAdapter:
    """Import a model, instantiate it if it is a class, and describe it (``settings``: how to call it)."""
    target = import_target(ref)
    if inspect.isclass(target):
        try:
            target = target()
        except Exception as exc:
            raise ModelLoadError(
                f"Model {ref.name!r}: creating {ref.target} failed: {exc}", traceback_text=traceback.format_exc()
            ) from exc
    interface = "typed" if isinstance(target, Model) else ref.interface or detect_interface(target)
    if interface == "v1":
        return V1Adapter(ref.name, target, call_form=settings.v1_call_form if settings else "auto")
    return ADAPTERS[interface](ref.name, target)


def import_target(ref: ModelRef) -> Any:
    module_name, _, attr = ref.target.partition(":")
    if ref.source == "--model":
        importable_from_cwd()
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ModelLoadError(
            f"Model {ref.name!r}: importing {ref.target} ({ref.source}) failed: {type(exc).__name__}: {exc}",
            traceback_text=traceback.format_exc(),
        ) from exc
    return obj


def importable_from_cwd() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` and uvicorn's ``--app-dir``
    default do: ``--model my_model.api:Model`` finds ``./my_model/`` from the ``modelaas`` script too."""
    cwd = os.getcwd()
    if not any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()


def load_models(settings: Settings) -> list[ModelAdapter]:
    return [load(ref, settings) for ref in select_models(settings)]
