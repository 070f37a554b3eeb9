"""DEEPaaS argument descriptions -> the parameter IR.

Two shapes exist in the wild:

* v1 dict-of-dicts ``{name: {"default": "<str>", "help": "...", "required": bool}}``:
  values stay strings (a v1 ``train(user_conf)`` calls ``json.loads`` on them itself);
* v2 marshmallow / webargs fields (marshmallow 3 or 4, webargs 5+): read duck-typed from
  the field objects, and validated by marshmallow itself so that error messages are the
  ones DEEPaaS clients already see.

marshmallow is imported only when a model hands us marshmallow fields: modelaas itself
does not depend on it, so it installs beside a model that pins an old release.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from modelaas.errors import ModelLoadError, ValidationError
from modelaas.model.params import MISSING, Kind, Param, ParamSet

# ---------------------------------------------------------------------- v1 dicts


def params_from_v1(args: Any, *, model: str, method: str) -> ParamSet:
    """Describe v1 ``get_train_args()``/``get_test_args()`` output."""
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise ModelLoadError(f"Model {model!r}: {method}() must return a dict of dicts, not {type(args).__name__}")
    params = []
    for name, spec in args.items():
        if not isinstance(spec, Mapping):
            raise ModelLoadError(
                f"Model {model!r}: {method}() entry {name!r} must be a dict, not {type(spec).__name__}"
            )
        default = spec.get("default", MISSING)
        if default is not MISSING and default is not None and not isinstance(default, str):
            default = json.dumps(default)
        choices = spec.get("choices")
        params.append(
            Param(
                name=str(name),
                kind=Kind.STRING,
                required=bool(spec.get("required", False)),
                default=MISSING if default is None else default,
                description=str(spec.get("help") or spec.get("description") or ""),
                choices=tuple(str(c) for c in choices) if choices else None,
            )
        )
    return ParamSet(tuple(params), _v1_validator(tuple(params)))


def _v1_validator(params: tuple[Param, ...]) -> Any:
    def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for p in params:
            value = raw.get(p.wire_name, MISSING)  # a list only comes from a JSON body: its JSON text
            if value is MISSING:
                if p.required:
                    errors[p.wire_name] = ["Missing data for required field."]
                elif p.has_default:
                    out[p.name] = p.default
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            if p.choices is not None and text not in p.choices:
                errors[p.wire_name] = [f"Must be one of: {', '.join(p.choices)}."]
                continue
            out[p.name] = text
        if errors:
            raise ValidationError(errors)
        return out

    return validate


# ------------------------------------------------------------ marshmallow fields


def params_from_fields(args: Any, *, model: str, method: str) -> ParamSet:
    """Describe v2 ``get_predict_args()``/``get_train_args()`` output (name -> field)."""
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise ModelLoadError(f"Model {model!r}: {method}() must return a dict of fields, not {type(args).__name__}")
    if not args:
        return ParamSet((), lambda raw: {})
    try:
        import marshmallow
    except ImportError:  # pragma: no cover - a model returning fields has marshmallow
        raise ModelLoadError(f"Model {model!r}: {method}() returned fields but marshmallow is not installed") from None
    for name, fld in args.items():
        if not isinstance(fld, marshmallow.fields.Field):
            raise ModelLoadError(
                f"Model {model!r}: {method}() entry {name!r} is a {type(fld).__name__}, not a marshmallow field"
            )
    params = tuple(describe_field(str(name), fld) for name, fld in args.items())
    schema = marshmallow.Schema.from_dict(dict(args), name=f"{model}.{method}")()
    return ParamSet(params, _marshmallow_validator(schema, params))


def _marshmallow_validator(schema: Any, params: tuple[Param, ...]) -> Any:
    import marshmallow

    wire = {p.wire_name for p in params}

    def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
        data = {key: value for key, value in raw.items() if key in wire}
        try:
            return dict(schema.load(data))
        except marshmallow.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise ValidationError(_jsonable_keys(messages)) from None

    return validate


def _jsonable_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable_keys(v) for v in value]
    return value


def describe_field(name: str, fld: Any) -> Param:
    """One marshmallow field -> one :class:`Param` (marshmallow 3 or 4, webargs 5+)."""
    meta: Mapping[str, Any] = getattr(fld, "metadata", None) or {}
    kind, item = field_kind(fld)
    enum = meta.get("enum")  # documentation only, in DEEPaaS: not checked
    one_of = None
    minimum = maximum = None
    exclusive_min = exclusive_max = False
    min_length = max_length = None
    for v in _validators(fld):
        vname = type(v).__name__
        if vname == "OneOf" and one_of is None:
            one_of = list(getattr(v, "choices", []) or [])
        elif vname == "Range":
            minimum, maximum = getattr(v, "min", None), getattr(v, "max", None)
            exclusive_min = not getattr(v, "min_inclusive", True)
            exclusive_max = not getattr(v, "max_inclusive", True)
        elif vname == "Length":
            equal = getattr(v, "equal", None)
            min_length = equal if equal is not None else getattr(v, "min", None)
            max_length = equal if equal is not None else getattr(v, "max", None)
    choices = one_of if one_of is not None else enum
    checked = one_of is not None or enum is None
    if kind is Kind.ARRAY and choices is None:  # List(Str(validate=OneOf(...))): the items' choices
        inner = getattr(fld, "inner", None) or getattr(fld, "container", None)
        if inner is not None:
            described = describe_field(name, inner)
            choices, checked = described.choices, described.choices_checked
    default = _field_default(fld)
    location = meta.get("location") or getattr(fld, "location", None)
    return Param(
        name=name,
        kind=kind,
        wire_name=getattr(fld, "data_key", None) or name,
        item=item,
        required=bool(getattr(fld, "required", False)),
        default=default,
        description=str(meta.get("description") or meta.get("help") or ""),
        choices=tuple(choices) if choices is not None else None,
        choices_checked=checked,
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_min,
        exclusive_maximum=exclusive_max,
        min_length=min_length,
        max_length=max_length,
        location=str(location) if location else None,
        extra={**_string_format(fld), **{k: v for k, v in meta.items() if k in _KEPT_METADATA}},
    )


_KEPT_METADATA = ("example", "examples", "format", "unit")
_STRING_FORMATS = (
    ("UUID", "uuid"),
    ("Url", "uri"),
    ("URL", "uri"),
    ("Email", "email"),
    ("IPv4", "ipv4"),
    ("IPv6", "ipv6"),
)


def _string_format(fld: Any) -> dict[str, str]:
    """The JSON-schema format of marshmallow's string-like fields (``UUID`` -> ``uuid``...)."""
    names = {cls.__name__ for cls in type(fld).__mro__}
    for name, fmt in _STRING_FORMATS:
        if name in names:
            return {"format": fmt}
    return {}


def field_kind(fld: Any) -> tuple[Kind, Kind | None]:
    from marshmallow import fields as mf

    meta = getattr(fld, "metadata", None) or {}
    if meta.get("type") == "file" or getattr(fld, "type", None) == "file":
        return Kind.FILE, None
    if isinstance(fld, mf.List):
        inner = getattr(fld, "inner", None) or getattr(fld, "container", None)
        return Kind.ARRAY, field_kind(inner)[0] if inner is not None else Kind.ANY
    if isinstance(fld, mf.Tuple):
        return Kind.ARRAY, Kind.ANY
    ordered: list[tuple[type, Kind]] = [
        (mf.UUID, Kind.STRING),  # marshmallow 4: not a String
        (mf.IP, Kind.STRING),
        (mf.Boolean, Kind.BOOLEAN),
        (mf.Integer, Kind.INTEGER),
        (mf.Number, Kind.NUMBER),
        (mf.Date, Kind.DATE),
        (mf.DateTime, Kind.DATETIME),
        (mf.String, Kind.STRING),
        (mf.Mapping, Kind.OBJECT),
        (mf.Nested, Kind.OBJECT),
    ]
    for cls, kind in ordered:
        if isinstance(fld, cls):
            return kind, None
    return Kind.ANY, None


def _validators(fld: Any) -> list[Any]:
    validators = getattr(fld, "validators", None)
    if validators is None:
        single = getattr(fld, "validate", None)
        validators = [single] if single is not None else []
    out: list[Any] = []
    for v in validators:
        # validate.And(...) wraps several
        out.extend(getattr(v, "validators", None) or [v])
    return out


def _field_default(fld: Any) -> Any:
    for attr in ("load_default", "missing"):
        try:
            value = getattr(fld, attr)
        except AttributeError:  # marshmallow 4 has no .missing, marshmallow < 3.13 no .load_default
            continue
        if type(value).__name__ in ("_Missing", "MissingType"):
            return MISSING
        if callable(value):
            return MISSING  # computed at load time; nothing static to show
        return _plain(value)
    return MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
