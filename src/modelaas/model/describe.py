"""Reading a model's argument descriptions in a process that never runs the model.

DEEPaaS calls ``get_predict_args()``/``get_train_args()`` in its main process and runs
``warm()``, ``predict()`` and ``train()`` in worker processes that never called them; real
models rely on it (they fill module-level configuration in ``get_*_args()`` and their
``warm()`` checks a saved configuration against the pristine one). modelaas validates and
runs the model in the same process, so it reads the descriptions in a forked child: the
child calls the methods and sends back what they returned (marshmallow fields, v1 dicts),
copied with cloudpickle (plain pickle where it is missing); the calling process never runs them. A fork costs a few
milliseconds (the model is already imported); the child exits at once.

Where ``os.fork`` does not exist, or a description cannot be copied between processes,
the method runs in the calling process instead, with a warning in the log saying so.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import struct
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelaas.errors import ModelLoadError

log = logging.getLogger("modelaas.model")

_LENGTH = struct.Struct("!Q")


@dataclass(frozen=True)
class Described:
    """What one ``get_*_args()`` call gave: its value, or why there is none."""

    value: Any = None
    not_implemented: bool = False
    """The method raised ``NotImplementedError`` (the model has no such arguments)."""
    error: str | None = None
    """``str()`` of what the method raised, if it failed."""
    traceback_text: str | None = None


def read_descriptions(target: Any, methods: Sequence[str], *, model: str) -> dict[str, Described]:
    """Call each of ``methods`` the target has, in a forked child; what each gave, by name."""
    present = [m for m in methods if callable(getattr(target, m, None))]
    if not present:
        return {}
    if not hasattr(os, "fork"):  # pragma: no cover - every platform modelaas serves on has fork
        log.warning("Model %r: %s run in the serving process (no fork here).", model, ", ".join(present))
        return {m: _call(target, m) for m in present}
    results, unsent = _in_child(target, present, model=model)
    for method, reason in unsent.items():
        log.warning(
            "Model %r: what %s() returned cannot be copied from a separate process (%s); it ran again in "
            "this process, so its side effects reach warm(), predict() and train() here.",
            model,
            method,
            reason,
        )
        results[method] = _call(target, method)
    return results


def _call(target: Any, method: str) -> Described:
    try:
        return Described(value=getattr(target, method)())
    except NotImplementedError:
        return Described(not_implemented=True)
    except Exception as exc:
        return Described(error=str(exc) or type(exc).__name__, traceback_text=traceback.format_exc())


def _in_child(target: Any, methods: list[str], *, model: str) -> tuple[dict[str, Described], dict[str, str]]:
    """Fork, call the methods in the child, read back ``(results, {method: why it could not be sent})``."""
    sys.stdout.flush()  # what is buffered now must not be written twice (by the child too)
    sys.stderr.flush()
    _import_pickler()  # here, not in the child: importing after a fork of a threaded process can hang
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(target, methods, write_fd)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            head = pipe.read(_LENGTH.size)
            payload = pipe.read(_LENGTH.unpack(head)[0]) if len(head) == _LENGTH.size else b""
    finally:
        _, status = os.waitpid(pid, 0)
    if not payload:
        raise ModelLoadError(
            f"Model {model!r}: the process reading its {', '.join(m + '()' for m in methods)} ended "
            f"({_ending(status)}) without an answer."
        )
    sent: dict[str, tuple[str, Any]] = pickle.loads(payload)  # plain tuples and bytes: always readable
    results: dict[str, Described] = {}
    unsent: dict[str, str] = {}
    for method, (kind, value) in sent.items():
        if kind == "unsent":
            unsent[method] = value
            continue
        try:
            results[method] = pickle.loads(value)  # our own child's bytes
        except Exception as exc:
            unsent[method] = f"reading it back failed: {type(exc).__name__}: {exc}"
    return results, unsent


def _child(target: Any, methods: list[str], write_fd: int) -> None:
    code = 0
    try:
        out: dict[str, tuple[str, Any]] = {}
        for method in methods:
            described = _call(target, method)
            try:
                out[method] = ("ok", _dumps(described))
            except Exception as exc:
                out[method] = ("unsent", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(_LENGTH.pack(len(data)) + data)
    except BaseException:
        code = 1
    finally:
        try:
            sys.stdout.flush()  # what the model printed
            sys.stderr.flush()
        finally:
            os._exit(code)


def _import_pickler() -> None:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        pass


def _dumps(obj: Any) -> bytes:
    """``obj`` pickled; with cloudpickle (lambdas, classes made at run time) when it is installed."""
    try:
        import cloudpickle

        base: Any = cloudpickle.Pickler
    except ImportError:  # pragma: no cover - a dependency; a model's environment may still lack it
        base = pickle.Pickler

    class Pickler(base):
        def reducer_override(self, obj: Any) -> Any:
            # marshmallow tells "no default" by the identity of its `missing` object: keep it
            if type(obj).__module__.startswith("marshmallow") and obj is _marshmallow_missing():
                return _marshmallow_missing, ()
            parent = getattr(super(), "reducer_override", None)
            return parent(obj) if parent is not None else NotImplemented

    buf = io.BytesIO()
    Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _marshmallow_missing() -> Any:
    try:
        from marshmallow.utils import missing
    except ImportError:  # pragma: no cover - only called for marshmallow's own objects
        return None
    return missing


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        import signal

        try:
            return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        except ValueError:
            return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.WEXITSTATUS(status)}"
