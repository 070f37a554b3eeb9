"""Command-line options generated from the parameter description (the IR).

Each argument becomes ``--<wire-name>`` with its type, choices, default and help; file
arguments take local paths; list arguments repeat the option. The values the user typed
are turned back into the raw values the model's validator expects.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from modelaas.model.files import File
from modelaas.model.params import Kind, Param

_TYPES: dict[Kind, Any] = {
    Kind.INTEGER: click.INT,
    Kind.NUMBER: click.FLOAT,
    Kind.STRING: click.STRING,
    Kind.DATE: click.STRING,
    Kind.DATETIME: click.STRING,
    Kind.OBJECT: click.STRING,
    Kind.TENSOR: click.STRING,
    Kind.ANY: click.STRING,
}
_METAVARS = {
    Kind.INTEGER: "INT",
    Kind.NUMBER: "FLOAT",
    Kind.BOOLEAN: "BOOL",
    Kind.DATE: "YYYY-MM-DD",
    Kind.DATETIME: "DATETIME",
    Kind.OBJECT: "JSON",
    Kind.TENSOR: "JSON|FILE.npy",
    Kind.FILE: "PATH",
}


def option_dest(param: Param) -> str:
    """The click parameter name of an argument (any wire name is fine)."""
    return "arg_" + "".join(c if c.isalnum() else "_" for c in param.wire_name)


def build_options(params: Iterable[Param], *, taken: Iterable[str] = ()) -> list[click.Option]:
    """One click option per argument. Names already used by the command are prefixed ``--arg-``."""
    taken = set(taken)
    options = []
    for p in params:
        flag = "--" + p.wire_name
        if p.wire_name in taken or flag.startswith("---"):
            flag = "--arg-" + p.wire_name.lstrip("-")
        item = p.item if p.is_array else p.kind
        if p.is_file:
            ptype: Any = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
        elif p.choices is not None and p.choices_checked and all(isinstance(c, str) for c in p.choices):
            ptype = click.Choice([str(c) for c in p.choices])
        elif item is Kind.BOOLEAN:
            ptype = click.BOOL
        else:
            ptype = _TYPES.get(item or Kind.ANY, click.STRING)
        options.append(
            click.Option(
                [flag, option_dest(p)],
                type=ptype,
                multiple=p.is_array,
                default=None,
                help=describe(p),
                metavar=None if isinstance(ptype, click.Choice) else _METAVARS.get(item or Kind.ANY, "TEXT"),
                show_default=False,
            )
        )
    return options


def describe(p: Param) -> str:
    """Help text: the description, then type, range, choices, default and required."""
    parts = [p.description.strip()] if p.description else []
    kind = f"list of {p.item.value}" if p.is_array and p.item else p.kind.value
    if p.tensor is not None:
        kind = f"{p.tensor.datatype} tensor of shape {list(p.tensor.shape)}: nested JSON arrays or a .npy file"
    elif p.is_file:
        kind = "file path" if not p.is_array else "file paths (repeat the option)"
    elif p.is_array:
        kind += " (repeat the option)"
    facts = [kind]
    if p.choices is not None:
        facts.append(("one of: " if p.choices_checked else "usually one of: ") + ", ".join(str(c) for c in p.choices))
    if p.minimum is not None or p.maximum is not None:
        low = "" if p.minimum is None else f"{p.minimum}{' <' if p.exclusive_minimum else ' <='} "
        high = "" if p.maximum is None else f"{' <' if p.exclusive_maximum else ' <='} {p.maximum}"
        facts.append(f"{low}value{high}".strip())
    if p.has_default and not p.is_file:
        facts.append(f"default: {json.dumps(p.default) if not isinstance(p.default, str) else p.default}")
    if p.required:
        facts.append("required")
    return " ".join([*parts, f"[{'; '.join(facts)}]"])


def raw_values(params: Iterable[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """The typed option values -> raw values keyed by wire name (files as :class:`File`)."""
    raw: dict[str, Any] = {}
    for p in params:
        value = values.get(option_dest(p))
        if value is None or (p.is_array and not value):
            continue
        if p.is_file:
            files = [local_file(p.wire_name, path) for path in (value if p.is_array else [value])]
            raw[p.wire_name] = files if p.is_array else files[0]
        elif p.is_array:
            raw[p.wire_name] = list(value)
        elif p.kind is Kind.TENSOR and isinstance(value, str):
            raw[p.wire_name] = tensor_value(p.wire_name, value)
        elif p.kind is Kind.OBJECT and isinstance(value, str):
            try:
                raw[p.wire_name] = json.loads(value)
            except ValueError:
                raw[p.wire_name] = value
        else:
            raw[p.wire_name] = value
    return raw


def tensor_value(name: str, value: str) -> Any:
    """A tensor option: the nested lists of a ``.npy`` file (numpy's own format, no pickles) or of JSON text."""
    if value.endswith(".npy") and os.path.isfile(value):
        import numpy as np

        try:
            return np.load(value, allow_pickle=False).tolist()
        except ValueError as exc:
            raise click.BadParameter(f"{value} is not a .npy file numpy can read without pickles: {exc}") from None
    try:
        return json.loads(value)
    except ValueError:
        raise click.BadParameter(f"--{name}: give nested JSON arrays or the path of a .npy file.") from None


def local_file(name: str, path: Path | str) -> File:
    """A local file handed to a model as if it had been uploaded (nothing is copied)."""
    path = Path(path)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return File(name=name, filename=os.fspath(path.resolve()), content_type=content_type, original_filename=path.name)
