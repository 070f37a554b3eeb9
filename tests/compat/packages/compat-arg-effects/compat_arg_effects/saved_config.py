"""An image classifier's configuration habits, reduced to what breaks.

The module holds a configuration dict. ``get_predict_args()``/``get_train_args()`` fill
the ``choices`` of ``checkpoint`` with the checkpoint folders found on disk (to offer them
in the API). ``warm()`` loads the configuration saved beside the newest checkpoint and
checks every saved value against the ``choices`` of the configuration. The saved
``checkpoint`` is the name the model was trained under (``cat-dog-v1``), one of the
choices the package ships; the folder on disk was renamed when it was downloaded
(``downloaded-model``). So ``warm()`` succeeds in a process that never called
``get_*_args()`` (a DEEPaaS worker) and fails in one that did.
"""

import json
from pathlib import Path

from marshmallow import fields, validate

CHECKPOINTS = Path(__file__).parent / "checkpoints"

CONFIG = {
    "checkpoint": {"value": "cat-dog-v1", "choices": ["cat-dog-v1", "cat-dog-v2"]},
    "threshold": {"value": 0.5, "choices": None},
}

LOADED = {}


def _folders():
    return sorted(p.name for p in CHECKPOINTS.iterdir() if p.is_dir())


def _offer_folders():
    CONFIG["checkpoint"]["choices"] = _folders()
    return list(CONFIG["checkpoint"]["choices"])


def _apply(saved):
    for key, value in saved.items():
        choices = CONFIG[key]["choices"]
        if choices is not None and value not in choices:
            raise ValueError(f"saved configuration: {key}={value!r} is not one of {choices}")
        CONFIG[key]["value"] = value


def warm():
    folder = _folders()[-1]
    saved = json.loads((CHECKPOINTS / folder / "saved_config.json").read_text())
    _apply(saved)
    LOADED.update(folder=folder, config=saved)


def get_metadata():
    return {"description": "Loads the configuration saved beside its checkpoint.", "version": "0.1.0"}


def _checkpoint_arg():
    folders = _offer_folders()
    return {"checkpoint": fields.Str(load_default=folders[-1], validate=validate.OneOf(folders))}


def get_predict_args():
    return _checkpoint_arg()


def get_train_args():
    return _checkpoint_arg()


def _state(checkpoint):
    return {"asked": checkpoint, "loaded": dict(LOADED), "threshold": CONFIG["threshold"]["value"]}


def predict(checkpoint):
    return _state(checkpoint)


def train(checkpoint):
    return _state(checkpoint)
