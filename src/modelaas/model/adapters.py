"""One calling convention over v1, v2 and typed models.

A :class:`ModelAdapter` is what the rest of modelaas sees of a model: its name and
interface, metadata, ``warm()``, the parameter descriptions of predict and train, and
``predict(kwargs)`` / ``train(kwargs, context)`` taking validated keyword arguments.
Argument descriptions are read once, when the adapter is built, so a model whose
``get_*_args()`` fails is reported at start-up with its name, method and traceback; they
are read in a forked child (:mod:`modelaas.model.describe`), so that, as under DEEPaaS,
the process that runs ``warm()``, ``predict()`` and ``train()`` never ran ``get_*_args()``.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelaas.errors import (
    BadRequest,
    ModelError,
    ModelLoadError,
    NotImplementedByModel,
    ValidationError,
)
from modelaas.model import legacy, v1calls
from modelaas.model.batch import BatchAssembly, BatchSpec, batch_spec
from modelaas.model.describe import Described, read_descriptions
from modelaas.model.files import as_deepaas_files, deepaas_file_class
from modelaas.model.interface import Model
from modelaas.model.outputs import MarshmallowOutput, OutputSchema, PydanticOutput
from modelaas.model.params import Kind, Param, ParamSet


class ModelAdapter:
    """Base adapter: subclasses fill in params, outputs and the calls."""

    interface = "unknown"

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self.target = target
        self.predict_params: ParamSet | None = None
        self.train_params: ParamSet | None = None
        self.output_schema: OutputSchema | None = None
        self.output_tensors: tuple[tuple[str, Any], ...] | None = None
        """Typed models returning arrays: ``(name, TensorSpec)`` of each output tensor."""
        self.predict_is_async = False
        self.batch: BatchSpec | None = None
        """How predict batches (``@batched`` typed models), or None: one request per call."""
        self.serving_version: int | None = None
        """The registered version this process serves (its artefacts given to the model), or None."""
        self.generation = 0
        """The model's serving generation when this process loaded it (src/modelaas/versions/)."""
        self.artefacts: Path | None = None
        """The folder of the served version's files, or None."""
        self.serving_headers: list[tuple[bytes, bytes]] = [(b"x-modelaas-generation", b"0")]
        """Response headers of its answers: the generation, and the version when one is active."""
        self._described: dict[str, Described] = {}

    # ---------------------------------------------------------------- describing
    @property
    def media_types(self) -> tuple[str, ...]:
        """Content types the model can answer predict with (from its ``accept`` argument)."""
        accept = self.predict_params.get("accept") if self.predict_params else None
        if accept is None or not accept.choices:
            return ()
        return tuple(str(c) for c in accept.choices)

    def metadata(self) -> dict[str, Any]:
        getter = getattr(self.target, "get_metadata", None)
        if getter is None:
            return self._fallback_metadata()
        try:
            meta = getter()
        except NotImplementedError:
            return self._fallback_metadata()
        except Exception as exc:
            raise ModelError(f"Model {self.name!r} failed in get_metadata(): {exc}") from exc
        return dict(meta) if isinstance(meta, dict) else {"metadata": meta}

    def _fallback_metadata(self) -> dict[str, Any]:
        return {"description": f"Model {self.name!r} does not describe itself (no get_metadata())."}

    def serve(self, version: int | None, generation: int, artefacts: Path | None) -> None:
        """Serve a registered version (None: the model as installed); typed models find its files
        in their ``artefacts`` attribute before ``warm()``."""
        self.serving_version, self.generation, self.artefacts = version, generation, artefacts
        self.serving_headers = [(b"x-modelaas-generation", str(generation).encode())]
        if version is not None:
            self.serving_headers.append((b"x-modelaas-model-version", str(version).encode()))

    def warm(self) -> None:
        """Call the model's ``warm()``; its failure is a :class:`ModelLoadError` with its traceback."""
        warm = getattr(self.target, "warm", None)
        if not callable(warm):
            return
        try:
            warm()
        except NotImplementedError:
            pass
        except Exception as exc:
            raise ModelLoadError(
                f"Model {self.name!r} failed in warm(): {exc}", traceback_text=traceback.format_exc()
            ) from exc

    # ------------------------------------------------------------------- calling
    def params_for(self, method: str) -> ParamSet:
        """The arguments of ``predict`` or ``train``; :class:`NotImplementedByModel` (501) if the model lacks it."""
        params = self.predict_params if method == "predict" else self.train_params
        if params is None:
            raise NotImplementedByModel.of(self.name, method)
        return params

    def predict(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedByModel.of(self.name, "predict")

    def train(self, kwargs: dict[str, Any], context: Any = None) -> Any:
        raise NotImplementedByModel.of(self.name, "train")

    def predict_batch(self, items: list[dict[str, Any]]) -> Any:
        """Call a batched predict with the validated arguments of several requests (see :attr:`batch`)."""
        raise NotImplementedByModel.of(self.name, "predict")

    async def predict_batch_async(self, items: list[dict[str, Any]]) -> list[Any]:
        """:meth:`predict_batch` for a model whose predict is ``async def``."""
        raise NotImplementedByModel.of(self.name, "predict")

    def batch_weight(self, kwargs: dict[str, Any]) -> int:
        """What one request counts for against a batch's ``max_size``."""
        return 1

    def urls_fetched_by_model(self, kwargs: dict[str, Any]) -> list[str]:
        """URLs in validated predict arguments that the model's own code will fetch.

        The runtime checks their destinations (``modelaas.fetch.destinations.check_destination``)
        before calling the model; it cannot check what the model's code then does.
        """
        return []

    # ------------------------------------------------------------------- helpers
    def _read_descriptions(self, *methods: str) -> None:
        """Call the model's ``get_*_args()`` methods, in a process that is not this one."""
        self._described = read_descriptions(self.target, methods, model=self.name)

    def _describe(self, method: str, build: Callable[[Any], ParamSet]) -> ParamSet | None:
        described = self._described.get(method)
        if described is None or described.not_implemented:
            return None
        if described.error is not None:
            raise ModelLoadError(
                f"Model {self.name!r} failed in {method}(): {described.error}",
                traceback_text=described.traceback_text,
            )
        try:
            return build(described.value)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"Model {self.name!r}: what {method}() returned cannot be used: {exc}",
                traceback_text=traceback.format_exc(),
            ) from exc


class V2Adapter(ModelAdapter):
    """DEEPaaS v2: ``get_predict_args()``/``get_train_args()`` marshmallow fields, ``predict(**kw)``."""

    interface = "v2"

    def __init__(self, name: str, target: Any) -> None:
        super().__init__(name, target)
        wanted = [("predict", "get_predict_args"), ("train", "get_train_args")]
        self._read_descriptions(*(getter for method, getter in wanted if callable(getattr(target, method, None))))
        if callable(getattr(target, "predict", None)):
            self.predict_params = self._describe(
                "get_predict_args", lambda a: legacy.params_from_fields(a, model=name, method="get_predict_args")
            ) or ParamSet((), lambda raw: {})
            self.predict_is_async = inspect.iscoroutinefunction(target.predict)
        if callable(getattr(target, "train", None)):
            self.train_params = self._describe(
                "get_train_args", lambda a: legacy.params_from_fields(a, model=name, method="get_train_args")
            ) or ParamSet((), lambda raw: {})
        schema = getattr(target, "schema", None)
        if schema is not None:
            self.output_schema = MarshmallowOutput(schema, model=name)
        # files reach the model as DEEPaaS's own UploadedFile when DEEPaaS is installed
        self._predict_files = self.predict_params is not None and self.predict_params.has_files
        self._train_files = self.train_params is not None and self.train_params.has_files
        if self._predict_files or self._train_files:
            deepaas_file_class()  # looked up now, not during the first request

    def predict(self, kwargs: dict[str, Any]) -> Any:
        return self.target.predict(**(as_deepaas_files(kwargs) if self._predict_files else kwargs))

    def train(self, kwargs: dict[str, Any], context: Any = None) -> Any:
        return self.target.train(**(as_deepaas_files(kwargs) if self._train_files else kwargs))


class V1Adapter(ModelAdapter):
    """DEEPaaS v1: ``predict_data``/``predict_url`` (and ``predict_file``), ``train(args)``.

    On every route predict takes ``data`` (one or more files) or ``url`` (one or more
    strings), never both, plus the model's ``get_test_args()``. Functions in the dict form
    of DEEPaaS 0.5 to 1.3 get one dict per request; functions in the seed form get one call
    per file or URL, and several items answer a list of results (see :mod:`modelaas.model.v1calls`).
    """

    interface = "v1"

    def __init__(self, name: str, target: Any, *, call_form: str = "auto") -> None:
        super().__init__(name, target)
        t = target
        predicts = any(callable(getattr(t, m, None)) for m in ("predict_file", "predict_data", "predict_url"))
        trains = callable(getattr(t, "train", None))
        self._read_descriptions(*(["get_test_args"] if predicts else []), *(["get_train_args"] if trains else []))
        if predicts:
            test = self._describe(
                "get_test_args", lambda a: legacy.params_from_v1(a, model=name, method="get_test_args")
            ) or ParamSet((), lambda raw: {})
            self.predict_params = _with_data_and_url(test)
        if trains:
            self.train_params = self._describe(
                "get_train_args", lambda a: legacy.params_from_v1(a, model=name, method="get_train_args")
            ) or ParamSet((), lambda raw: {})
        data, url, file = (_callable(t, m) for m in ("predict_data", "predict_url", "predict_file"))
        self._data_dict = v1calls.uses_dict_form(data, call_form)
        self._url_dict = v1calls.uses_dict_form(url, call_form)
        # the seed's predict_file, unless the model is written for DEEPaaS 1.x (which never called it)
        seed_file = file is not None and (call_form == "seed" or not v1calls.uses_dict_form(file, call_form))
        self._file_func = file if seed_file and not self._data_dict else None
        self._train_bare = trains and v1calls.takes_no_arguments(t.train)

    def predict(self, kwargs: dict[str, Any]) -> Any:
        files = kwargs.pop("data", None) or []
        urls = kwargs.pop("url", None) or []
        if files and self._data_dict:
            args, opened = v1calls.dict_for_files(files, kwargs)
            try:
                return self.target.predict_data(args)
            finally:
                for upload in opened:
                    upload.close()
        if urls and self._url_dict:
            return self.target.predict_url(v1calls.dict_for_urls(urls, kwargs))
        results = [self._predict_file(f, kwargs) for f in files] or [self._predict_url(u, kwargs) for u in urls]
        return results[0] if len(results) == 1 else results

    def urls_fetched_by_model(self, kwargs: dict[str, Any]) -> list[str]:
        if kwargs.get("data") or not callable(getattr(self.target, "predict_url", None)):
            return []
        return [str(u) for u in kwargs.get("url") or []]

    def _predict_file(self, upload: Any, kwargs: dict[str, Any]) -> Any:
        if self._file_func is not None:
            return v1calls.call_seed(self._file_func, upload.filename, kwargs)
        if callable(getattr(self.target, "predict_data", None)):
            with open(upload.filename, "rb") as fh:
                return v1calls.call_seed(self.target.predict_data, fh.read(), kwargs)
        raise NotImplementedByModel(f"Model {self.name!r} cannot predict from files (no predict_data).")

    def _predict_url(self, url: str, kwargs: dict[str, Any]) -> Any:
        if callable(getattr(self.target, "predict_url", None)):
            return v1calls.call_seed(self.target.predict_url, url, kwargs)
        raise NotImplementedByModel(f"Model {self.name!r} cannot predict from URLs (no predict_url).")

    def train(self, kwargs: dict[str, Any], context: Any = None) -> Any:
        return self.target.train() if self._train_bare else self.target.train(dict(kwargs))


def _callable(target: Any, name: str) -> Callable[..., Any] | None:
    func = getattr(target, name, None)
    return func if callable(func) else None


def _with_data_and_url(test: ParamSet) -> ParamSet:
    data = Param("data", Kind.ARRAY, item=Kind.FILE, description="One or more files to predict on.")
    url = Param("url", Kind.ARRAY, item=Kind.STRING, description="One or more URLs of data to predict on.")
    reserved = {"data", "url"}
    params = (data, url, *(p for p in test.params if p.wire_name not in reserved))

    def validate(raw: Any) -> dict[str, Any]:
        files = [f for f in _as_list(raw.get("data")) if f is not None]
        urls = [str(u) for u in _as_list(raw.get("url")) if u not in (None, "")]
        errors: dict[str, list[str]] = {}
        bad = [f for f in files if not hasattr(f, "filename")]
        if bad:
            errors["data"] = ["Must be a file upload (multipart/form-data)."]
        try:
            rest = test.validate({k: v for k, v in raw.items() if k not in reserved})
        except ValidationError as exc:
            errors.update(exc.errors)
            rest = {}
        if errors:
            raise ValidationError(errors)
        if bool(files) == bool(urls):
            raise BadRequest("You must provide either 'url' or 'data' in the payload, not both.")
        return {"data": files, "url": urls, **rest}

    return ParamSet(params, validate)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class TypedAdapter(ModelAdapter):
    """Native modelaas models: annotated ``predict``/``train`` methods."""

    interface = "typed"

    def __init__(self, name: str, target: Any) -> None:
        from modelaas.model import typed  # pydantic: only for typed models

        super().__init__(name, target)
        self._context_param: str | None = None
        predict = getattr(target, "predict", None)
        if callable(predict):
            self.batch = batch_spec(predict)
            batched = self.batch is not None
            self.predict_params = typed.params_from_signature(predict, model=name, method="predict", batched=batched)
            self.predict_is_async = inspect.iscoroutinefunction(predict)
            ret = typed.response_model(predict, batched=batched)
            if ret is not None:
                self.output_schema = PydanticOutput(ret)
            self.output_tensors = typed.output_tensors(predict, model=name)
            self._assembly = BatchAssembly(name, self.predict_params, tensor_output=self.output_tensors is not None)
        train = getattr(target, "train", None)
        if callable(train):
            if batch_spec(train) is not None:
                raise ModelLoadError(f"Model {name!r}: @batched applies to predict() only, not to train().")
            self.train_params = typed.params_from_signature(train, model=name, method="train")
            self._context_param = typed.context_parameter(train)

    def serve(self, version: int | None, generation: int, artefacts: Path | None) -> None:
        super().serve(version, generation, artefacts)
        self.target.artefacts = artefacts

    def metadata(self) -> dict[str, Any]:
        meta = getattr(self.target, "metadata", None)
        if callable(meta):
            meta = meta()
        out = dict(meta or {})
        doc = inspect.getdoc(type(self.target))
        if doc and doc != inspect.getdoc(Model) and "description" not in out:
            out["description"] = doc
        return out

    def predict(self, kwargs: dict[str, Any]) -> Any:
        if self.batch is not None:  # one request alone: a batch of one
            if self.predict_is_async:
                return self._alone(kwargs)
            return self.predict_batch([kwargs])[0]
        return self.target.predict(**kwargs)

    async def _alone(self, kwargs: dict[str, Any]) -> Any:
        return (await self.predict_batch_async([kwargs]))[0]

    def predict_batch(self, items: list[dict[str, Any]]) -> Any:
        columns, rows = self._assembly.columns(items)
        return self._assembly.answers(self.target.predict(**columns), len(items), rows)

    async def predict_batch_async(self, items: list[dict[str, Any]]) -> list[Any]:
        columns, rows = self._assembly.columns(items)
        return self._assembly.answers(await self.target.predict(**columns), len(items), rows)

    def batch_weight(self, kwargs: dict[str, Any]) -> int:
        return self._assembly.weight(kwargs)

    @property
    def wants_context(self) -> bool:
        """Whether ``train`` takes the job context (and so can stop cooperatively)."""
        return self._context_param is not None

    def train(self, kwargs: dict[str, Any], context: Any = None) -> Any:
        if self._context_param:
            kwargs = {**kwargs, self._context_param: context}
        return self.target.train(**kwargs)


def detect_interface(target: Any) -> str:
    """Guess the interface of an object given without an entry-point group."""
    if isinstance(target, Model):
        return "typed"
    if callable(getattr(target, "get_predict_args", None)) or callable(getattr(target, "predict", None)):
        return "v2"
    if any(
        callable(getattr(target, m, None)) for m in ("predict_file", "predict_data", "predict_url", "get_test_args")
    ):
        return "v1"
    if callable(getattr(target, "train", None)):
        return "v2"
    raise ModelLoadError(
        f"{target!r} is not a model: it has none of predict(), predict_file/predict_data/predict_url() or train()."
    )


ADAPTERS: dict[str, type[ModelAdapter]] = {"v1": V1Adapter, "v2": V2Adapter, "typed": TypedAdapter}
