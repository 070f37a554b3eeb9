"""Field metadata that only documents: a password ``format`` and an ``enum`` without ``OneOf``.

In DEEPaaS the ``enum`` of a field's metadata goes into the API description and nothing
checks it: a value outside it reaches the model, which here says so.
"""

from marshmallow import fields

SHAPES = ["circle", "square"]


def get_metadata():
    return {"description": "Echoes a documented-only choice and the length of a secret.", "version": "0.1.0"}


def get_predict_args():
    return {
        "api-key": fields.Str(
            load_default="",
            metadata={"format": "password", "description": "A secret, typed in a password box."},
        ),
        "shape": fields.Str(
            load_default=SHAPES[0],
            metadata={"enum": list(SHAPES), "description": "The usual shapes; any other is drawn as a blob."},
        ),
    }


def predict(**kwargs):
    shape = kwargs["shape"]
    return {"api_key_length": len(kwargs["api-key"]), "shape": shape, "documented": shape in SHAPES}
