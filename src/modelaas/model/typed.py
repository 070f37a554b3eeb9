"""Typed signatures (annotations + ``Input``) -> the parameter IR, validated by pydantic."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

import pydantic
from pydantic_core import PydanticCustomError

from modelaas.errors import ModelLoadError, ValidationError
from modelaas.model.batch import batch_item
from modelaas.model.files import File
from modelaas.model.interface import InputSpec, OutputSpec
from modelaas.model.params import MISSING, Kind, Param, ParamSet
from modelaas.model.tensors import TensorSpec, is_ndarray_annotation, spec_from_annotation, to_array
from modelaas.model.urlfile import URLFile

_SCALARS: dict[Any, Kind] = {
    str: Kind.STRING,
    int: Kind.INTEGER,
    float: Kind.NUMBER,
    bool: Kind.BOOLEAN,
    dict: Kind.OBJECT,
    dt.date: Kind.DATE,
    dt.datetime: Kind.DATETIME,
    File: Kind.FILE,
    Any: Kind.ANY,
}


def is_context_annotation(annotation: Any) -> bool:
    """Parameters annotated with a context class (``TrainingContext``) are not arguments."""
    return bool(getattr(annotation, "__modelaas_context__", False))


def params_from_signature(func: Callable[..., Any], *, model: str, method: str, batched: bool = False) -> ParamSet:
    """Describe the parameters of a typed model method (``self`` already bound).

    For a ``@batched`` method, each parameter must be annotated ``Batch[T]``: what is
    described (and validated, for each request) is ``T``; or be a tensor (``NDArray``) whose
    first axis is the batch axis (shape ``(-1, ...)``): the requests' arrays arrive stacked.
    """
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # a bad annotation is the model author's bug: say where
        raise ModelLoadError(f"Model {model!r}: cannot read the annotations of {method}(): {exc}") from exc
    params: list[Param] = []
    fields: dict[str, Any] = {}
    for pname, sig_param in inspect.signature(func).parameters.items():
        if sig_param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        if is_context_annotation(annotation):
            continue
        stacked = batched and _is_tensor(annotation)
        if batched and not stacked:
            annotation = _batch_item(annotation, pname, model=model, method=method)
        param, field = _describe(pname, annotation, sig_param.default, model=model, method=method)
        if stacked:
            param = _stacked(param, model=model, method=method)
        params.append(param)
        fields[pname] = field
    validator = _pydantic_validator(f"{model}.{method}", fields, params)
    return ParamSet(tuple(params), validator)


def context_parameter(func: Callable[..., Any]) -> str | None:
    """The name of the parameter that wants the job context, if any."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        return None
    for pname, annotation in hints.items():
        if pname != "return" and is_context_annotation(annotation):
            return pname
    return None


def response_model(func: Callable[..., Any], *, batched: bool = False) -> type[pydantic.BaseModel] | None:
    """The pydantic model a method declares as its return type (``list[X]``: ``X`` when batched), if any."""
    try:
        ret = typing.get_type_hints(func).get("return")
    except Exception:
        return None
    if batched:
        args = get_args(ret)
        ret = args[0] if get_origin(ret) is list and len(args) == 1 else None
    if isinstance(ret, type) and issubclass(ret, pydantic.BaseModel):
        return ret
    return None


def _is_tensor(annotation: Any) -> bool:
    base, _ = _strip_optional(get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation)
    return is_ndarray_annotation(base)


def _stacked(param: Param, *, model: str, method: str) -> Param:
    """A tensor argument of a ``@batched`` method: the requests' arrays are stacked along its first axis."""
    tensor = param.tensor
    if not param.required:
        raise ModelLoadError(
            f"Model {model!r}: tensor argument {param.name!r} of the @batched {method}() is stacked with the "
            "other requests' tensors, so it must be required (no default)."
        )
    if tensor is None or not tensor.shape or tensor.shape[0] != -1:
        raise ModelLoadError(
            f"Model {model!r}: tensor argument {param.name!r} of the @batched {method}() must have a batch axis "
            "first: declare its shape as (-1, ...) with Input(shape=...)."
        )
    return dataclasses.replace(param, extra={**param.extra, "stacked": True})


def _batch_item(annotation: Any, name: str, *, model: str, method: str) -> Any:
    item = batch_item(annotation)
    if item is None:
        raise ModelLoadError(
            f"Model {model!r}: argument {name!r} of the @batched {method}() must be annotated Batch[...] "
            f"(e.g. Batch[str]): it receives a list with one value per request, not {annotation!r}."
        )
    return item


def _describe(name: str, annotation: Any, default: Any, *, model: str, method: str) -> tuple[Param, Any]:
    spec = InputSpec()
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        spec = next((m for m in meta if isinstance(m, InputSpec)), spec)
        annotation = base
    if isinstance(default, InputSpec):
        spec = default
        default = spec.default
    elif default is inspect.Parameter.empty:
        default = spec.default

    annotation, optional = _strip_optional(annotation)
    if is_ndarray_annotation(annotation):
        return _describe_tensor(name, annotation, default, optional, spec, where=f"Model {model!r}: argument {name!r}")
    fetched = _url_file_annotation(annotation)
    extra: dict[str, Any] = {}
    if fetched is not None:
        if method != "predict":
            raise ModelLoadError(
                f"Model {model!r}: argument {name!r} of {method}() is a URLFile; "
                "URL inputs are fetched for predict only."
            )
        # The client sends a URL string; the runtime fetches it (modelaas.fetch) before calling the model.
        annotation, extra = fetched, {"fetch": True, "format": "uri"}
    kind, item, choices = _kind_of(annotation, model=model, method=method, name=name)
    if spec.choices is not None:
        choices = tuple(spec.choices)
    if default is None and not optional:
        optional = True
    required = default is MISSING
    param = Param(
        name=name,
        kind=kind,
        wire_name=spec.alias or name,
        item=item,
        required=required,
        default=default,
        description=spec.description,
        choices=choices,
        minimum=spec.ge if spec.ge is not None else spec.gt,
        maximum=spec.le if spec.le is not None else spec.lt,
        exclusive_minimum=spec.ge is None and spec.gt is not None,
        exclusive_maximum=spec.le is None and spec.lt is not None,
        min_length=spec.min_length,
        max_length=spec.max_length,
        media_types=tuple(spec.media_types),
        extra=extra,
    )
    field_type = _field_type(annotation, choices)
    if optional:
        field_type = field_type | None
    field_info = pydantic.Field(
        default=... if required else default,  # no alias: the validator maps wire names to keywords
        ge=spec.ge,
        le=spec.le,
        gt=spec.gt,
        lt=spec.lt,
        min_length=spec.min_length,
        max_length=spec.max_length,
    )
    return param, (field_type, field_info)


def _describe_tensor(
    name: str, annotation: Any, default: Any, optional: bool, spec: InputSpec, *, where: str
) -> tuple[Param, Any]:
    """An ``NDArray[...]`` argument: a TENSOR param, validated into an array of its dtype and shape."""
    tensor = spec_from_annotation(annotation, spec.shape, where=where)

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        try:
            return to_array(value, tensor)
        except ValueError as exc:
            raise PydanticCustomError("tensor", "Tensor {problem}.", {"problem": str(exc)}) from None

    required = default is MISSING
    param = Param(
        name=name,
        kind=Kind.TENSOR,
        wire_name=spec.alias or name,
        required=required,
        default=None if default is None else default,
        description=spec.description,
        extra={"tensor": tensor},
    )
    field_type = Annotated[Any, pydantic.BeforeValidator(check)]
    return param, (field_type, pydantic.Field(default=... if required else default, alias=spec.alias))


def output_tensors(func: Callable[..., Any], *, model: str) -> tuple[tuple[str, TensorSpec], ...] | None:
    """The tensor(s) a typed ``predict`` returns, if its return annotation is an ``NDArray``."""
    try:
        ret = typing.get_type_hints(func, include_extras=True).get("return")
    except Exception:
        return None
    out: OutputSpec | None = None
    if get_origin(ret) is Annotated:
        ret, *meta = get_args(ret)
        out = next((m for m in meta if isinstance(m, OutputSpec)), None)
    if not is_ndarray_annotation(ret):
        return None
    out = out or OutputSpec()
    shape = tuple(out.shape) if out.shape is not None else (-1,)
    return ((out.name, spec_from_annotation(ret, shape, where=f"Model {model!r}: the return of predict()")),)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    args = get_args(annotation)
    if args and type(None) in args and get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return annotation, False


def _url_file_annotation(annotation: Any) -> Any:
    """``str`` for ``URLFile``, ``list[str]`` for ``list[URLFile]``; ``None`` for anything else."""
    if annotation is URLFile:
        return str
    if get_origin(annotation) is list and get_args(annotation) == (URLFile,):
        return list[str]
    return None


def _kind_of(
    annotation: Any, *, model: str, method: str, name: str
) -> tuple[Kind, Kind | None, tuple[Any, ...] | None]:
    origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        return _SCALARS.get(type(values[0]), Kind.STRING), None, tuple(values)
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        inner = (get_args(annotation) or (Any,))[0]
        item_kind, _, item_choices = _kind_of(inner, model=model, method=method, name=name)
        return Kind.ARRAY, item_kind, item_choices  # choices of an array are its items' choices
    if origin is dict or annotation is dict:
        return Kind.OBJECT, None, None
    if annotation in _SCALARS:
        return _SCALARS[annotation], None, None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return Kind.OBJECT, None, None
    raise ModelLoadError(
        f"Model {model!r}: argument {name!r} of {method}() has an unsupported type {annotation!r}; "
        "use str, int, float, bool, dict, list[...], Literal[...], datetime, File, URLFile, NDArray[...] "
        "or a pydantic model."
    )


def _field_type(annotation: Any, choices: tuple[Any, ...] | None) -> Any:
    origin = get_origin(annotation)
    if origin in (list, set, frozenset) and choices is not None:  # the choices are each item's
        (inner,) = get_args(annotation) or (Any,)
        return origin[_field_type(inner, choices)]
    if annotation in (list, set, frozenset) and choices is not None:
        return annotation[_field_type(Any, choices)]
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return annotation
        return Annotated[type(values[0]), pydantic.AfterValidator(_one_of(values))]
    if choices is not None:
        return Annotated[annotation, pydantic.AfterValidator(_one_of(choices))]
    return annotation


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    expected = ", ".join(repr(c) for c in choices)

    def check(value: Any) -> Any:
        if value not in choices:
            raise PydanticCustomError("one_of", "Must be one of: {expected}.", {"expected": expected})
        return value

    return check


def _pydantic_validator(
    title: str, fields: Mapping[str, Any], params: list[Param]
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    model_cls = pydantic.create_model(
        "Arguments",
        __config__=pydantic.ConfigDict(arbitrary_types_allowed=True, title=title),
        **fields,
    )
    wire_names = {p.name: p.wire_name for p in params}
    keywords = {p.wire_name: p.name for p in params}

    def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
        # keyed by wire name (a keyword that is no other argument's wire name is taken too)
        by_keyword = {key: value for key, value in raw.items() if key not in keywords}
        by_keyword.update({keywords[key]: value for key, value in raw.items() if key in keywords})
        try:
            parsed = model_cls.model_validate(by_keyword)
        except pydantic.ValidationError as exc:
            errors: dict[str, list[str]] = {}
            for err in exc.errors(include_url=False):
                loc = err["loc"]
                key = str(loc[0]) if loc else "_schema"
                key = wire_names.get(key, key)
                errors.setdefault(key, []).append(_message(err))
            raise ValidationError(errors) from None
        return {name: getattr(parsed, name) for name in fields}

    return validate


def _message(err: Any) -> str:
    if err["type"] == "missing":
        return "Missing data for required field."
    msg = str(err["msg"])
    if len(err["loc"]) > 1:
        msg = f"{'.'.join(str(x) for x in err['loc'][1:])}: {msg}"
    return msg
