"""Command-line options generated from the two descriptions there are.

* A model's parameter description (the IR): each argument becomes ``--<wire-name>`` with
  its type, choices, default and help; file arguments take local paths; list arguments
  repeat the option. The values the user typed are turned back into the raw values the
  model's validator expects.
* The settings (:class:`~modelaas.settings.Settings`): each field becomes
  ``--<field-with-dashes>`` with the doc, range and choices its metadata declares.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from modelaas.model.files import File
from modelaas.model.params import Kind, Param
from modelaas.settings import Settings, field_type

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
    """One click option per argument. Names already used by the command are prefixed ``--arg-``.
    An argument with an alias also takes the model's keyword for it (``--top-k`` and ``--top_k``)."""
    params = list(params)
    taken = set(taken)
    wire_names = {p.wire_name for p in params}
    options = []
    for p in params:
        flag = "--" + p.wire_name
        if p.wire_name in taken or flag.startswith("---"):
            flag = "--arg-" + p.wire_name.lstrip("-")
        flags = [flag]
        if p.name != p.wire_name and p.name not in wire_names | taken and not p.name.startswith("-"):
            flags.append("--" + p.name)  # the model's keyword for an alias (--top_k for --top-k), as the routes take it
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
                [*flags, option_dest(p)],
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


# ------------------------------------------------------------------ settings
def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with one option per settings field.

    Options default to ``None`` (not given) so that the config file and environment are
    only overridden by flags the user actually typed.
    """
    return setting_options(*(f.name for f in dataclasses.fields(Settings)))(func)


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding the options of these settings fields (secret ones never: ps shows flags)."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            func = _setting_option(fields[name])(func)
        return func

    return decorate


def _setting_option(f: dataclasses.Field[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One settings field as an option that defaults to ``None`` (not given), its help showing
    the field's default and its choices."""
    if f.metadata.get("secret"):  # never on a command line (ps shows it): env or --tokens-file
        return lambda func: func
    kind = field_type(f.name)
    flag = "--" + f.name.replace("_", "-")
    shown = {"help": f.metadata.get("doc", ""), "cls": SettingOption, "default_text": shown_default(f)}
    decls = [flag]
    if f.metadata.get("short"):
        decls.append(f.metadata["short"])
    if kind is bool:  # --x/--nox as deepaas-run has them, and --no-x
        dashed = f.name.replace("_", "-")
        return click.option(f"{flag}/--no{dashed}", f" /--no-{dashed}", f.name, default=None, **shown)
    if f.metadata.get("choices"):
        choice = click.Choice(f.metadata["choices"], case_sensitive=False)
        return click.option(*decls, f.name, type=choice, default=None, **shown)
    ptype: Any = _ranged(kind, f.metadata) or (click.Path(path_type=Path) if kind is Path else str)
    metavar = f.metadata.get("metavar") or _metavar(kind)
    return click.option(*decls, f.name, type=ptype, default=None, metavar=metavar, **shown)


class SettingOption(click.Option):
    """An option whose help shows the default of its settings field, though its own default is
    ``None`` (not given: the config file and environment are not overridden)."""

    def __init__(self, *args: Any, default_text: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_text = default_text

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.default_text is None:
            return record
        names, text = record
        extra = f"default: {self.default_text}"
        head, bracket, tail = text.rpartition("  [")
        if bracket and tail.endswith("]"):  # click's own note (a range): one bracket for both
            return names, f"{head}  [{extra}; {tail}"
        return names, f"{text}  [{extra}]"


def shown_default(f: dataclasses.Field[Any]) -> str | None:
    """What ``--help`` shows as a settings field's default (None: its doc says it already)."""
    if "default" in f.metadata.get("doc", "").lower():
        return None
    if "shown_default" in f.metadata:
        return str(f.metadata["shown_default"])
    if f.default_factory is not dataclasses.MISSING:
        value: Any = f.default_factory()
    else:
        value = f.default
    if isinstance(value, bool):
        return "--" + ("" if value else "no") + f.name.replace("_", "-")
    if value is None or value == "":
        return "none"
    return str(value)


def _ranged(kind: type, meta: Any) -> click.ParamType | None:
    """An int or float option held to the range the settings field declares (checked before start-up)."""
    if kind not in (int, float):
        return None
    low, high, above = meta.get("minimum"), meta.get("maximum"), meta.get("above")
    if above is not None:
        return click.FloatRange(min=above, min_open=True) if kind is float else click.IntRange(min=above + 1)
    if low is None and high is None:
        return click.INT if kind is int else click.FLOAT
    return click.IntRange(min=low, max=high) if kind is int else click.FloatRange(min=low, max=high)


def _metavar(kind: type) -> str:
    return {int: "INT", float: "SECONDS", Path: "PATH"}.get(kind, "TEXT")
