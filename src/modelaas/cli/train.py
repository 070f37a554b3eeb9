"""``modelaas train <model> --<arg> ...``: a training here, or a job on a server with ``--remote``."""

from __future__ import annotations

from modelaas.cli.modelcmd import ModelCommands

train = ModelCommands(
    "train",
    name="train",
    help="Run a model's training with its arguments as options (here, or as a job with --remote).",
)
