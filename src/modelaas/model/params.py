"""The parameter description (IR) every model interface is translated into.

v1 dict-of-dicts, marshmallow/webargs fields and typed signatures all become a
:class:`ParamSet`: an ordered tuple of frozen :class:`Param` plus the validator that
turns raw request values into the keyword arguments the model receives. Request
parsing, validation, the OpenAPI document, CLI options and the web UI read it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """Marker for "no default"; falsy, and the same object after a copy."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Kind(str, enum.Enum):
    """What a value is, in JSON-schema terms plus files."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"
    DATE = "date"
    DATETIME = "date-time"
    FILE = "file"
    TENSOR = "tensor"
    """A numpy array of a declared datatype and shape (``extra["tensor"]``, a ``TensorSpec``)."""
    ANY = "any"


@dataclass(frozen=True)
class Param:
    """One argument of a model method."""

    name: str
    """The keyword the model receives."""
    kind: Kind
    wire_name: str = ""
    """The name clients send (a marshmallow ``data_key``); defaults to ``name``."""
    item: Kind | None = None
    """For ``ARRAY``: the kind of each item."""
    required: bool = False
    default: Any = MISSING
    description: str = ""
    choices: tuple[Any, ...] | None = None
    choices_checked: bool = True
    """False when ``choices`` only document usual values (a DEEPaaS ``enum`` in field metadata):
    other values are accepted, as DEEPaaS accepts them."""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    location: str | None = None
    """Where DEEPaaS metadata said to read it (``query``, ``form``, ``json``, ``headers``)."""
    media_types: tuple[str, ...] = ()
    """For files: content types the argument expects (``image/*``), when known."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Free-form extras kept for the docs (example values, units...)."""

    def __post_init__(self) -> None:
        if not self.wire_name:
            object.__setattr__(self, "wire_name", self.name)

    @property
    def is_file(self) -> bool:
        return self.kind is Kind.FILE or (self.kind is Kind.ARRAY and self.item is Kind.FILE)

    @property
    def is_array(self) -> bool:
        return self.kind is Kind.ARRAY

    @property
    def tensor(self) -> Any:
        """The ``TensorSpec`` of a ``TENSOR`` argument (None for others)."""
        return self.extra.get("tensor") if self.kind is Kind.TENSOR else None

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING


Validator = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Raw values keyed by wire name -> keyword arguments for the model.

Raises :class:`modelaas.errors.ValidationError` with a field -> messages map."""


@dataclass(frozen=True)
class ParamSet:
    """The ordered arguments of one model method and how to validate them."""

    params: tuple[Param, ...]
    validator: Validator

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def get(self, wire_name: str) -> Param | None:
        for p in self.params:
            if p.wire_name == wire_name:
                return p
        return None

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return self.validator(raw)

    @property
    def has_files(self) -> bool:
        return any(p.is_file for p in self.params)

    def without(self, wire_name: str) -> ParamSet:
        """The same set minus one argument (the validator is unchanged)."""
        return ParamSet(tuple(p for p in self.params if p.wire_name != wire_name), self.validator)


def empty_params() -> ParamSet:
    return ParamSet((), lambda raw: {})
