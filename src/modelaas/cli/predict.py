"""``modelaas predict <model> --<arg> ...`` (in-process, or on a server with ``--remote``)."""

from __future__ import annotations

from modelaas.cli.modelcmd import ModelCommands

predict = ModelCommands(
    "predict",
    name="predict",
    help="Run a model's predict with the model's arguments as options; the answer goes to stdout.",
)
