"""What a model's output becomes: JSON values, validated schemas, raw media."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from modelaas.errors import OutputInvalid
from modelaas.model.jsonable import to_jsonable


class OutputSchema(Protocol):
    """A declared shape for a model's predict output."""

    def validate(self, output: Any) -> Any:
        """Return the JSON value to answer with, or raise :class:`OutputInvalid`."""

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of a valid output (for the API docs)."""


class PydanticOutput:
    """Output validated by a pydantic model (a typed model's return annotation)."""

    def __init__(self, model: Any) -> None:
        from pydantic import TypeAdapter

        self.model = model
        self._adapter = TypeAdapter(model)

    def validate(self, output: Any) -> Any:
        import pydantic

        try:
            value = self._adapter.validate_python(output, from_attributes=True)
        except pydantic.ValidationError as exc:
            raise OutputInvalid(f"The model's output does not match its declared schema: {_first_error(exc)}") from None
        return self._adapter.dump_python(value, mode="json")

    def json_schema(self) -> dict[str, Any]:
        return dict(self._adapter.json_schema(ref_template="#/components/schemas/{model}", mode="serialization"))


class MarshmallowOutput:
    """Output validated by a DEEPaaS v2 ``schema`` (a Schema subclass or a dict of fields)."""

    def __init__(self, schema: Any, *, model: str) -> None:
        import marshmallow

        if isinstance(schema, Mapping):
            schema = marshmallow.Schema.from_dict(dict(schema), name=f"{model}Response")
        if not (isinstance(schema, type) and issubclass(schema, marshmallow.Schema)):
            from modelaas.errors import ModelLoadError

            raise ModelLoadError(f"Model {model!r}: schema must be a marshmallow Schema subclass or a dict of fields")
        self.schema_cls = schema
        self._schema = schema()

    def validate(self, output: Any) -> Any:
        import marshmallow

        value = to_jsonable(output)
        try:
            self._schema.load(value)
        except marshmallow.ValidationError as exc:
            raise OutputInvalid(f"The model's output does not match its declared schema: {exc.messages}") from None
        return value

    def json_schema(self) -> dict[str, Any]:
        from modelaas.model.legacy import describe_field
        from modelaas.model.schema import object_schema

        fields = self._schema.fields
        return object_schema([describe_field(name, f) for name, f in fields.items()])


def _first_error(exc: Any) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    err = errors[0]
    where = ".".join(str(x) for x in err["loc"]) or "output"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {err['msg']}{more}"


def file_path_of(output: Any) -> str | None:
    """The local path a raw output designates, if it is a path or a returned-file tuple."""
    if isinstance(output, (str, bytes)):
        return None
    if isinstance(output, os.PathLike):
        return str(os.fspath(output))
    filename = getattr(output, "filename", None)  # DEEPaaS ReturnedFile / our File
    if isinstance(filename, str) and not hasattr(output, "read"):
        return filename
    return None
