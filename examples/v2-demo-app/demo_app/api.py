"""The DEEPaaS v2 API of demo-app (entry point group ``deepaas.v2.model``).

A module of functions, as most v2 models are: ``get_metadata``, ``warm``,
``get_predict_args``/``predict``, ``get_train_args``/``train`` and a ``schema`` that the
JSON output of ``predict`` is validated against.

Only marshmallow APIs present in both marshmallow 3.13+ and marshmallow 4 are used
(``load_default=``, ``metadata={...}``, ``validate=``), so the same package serves under
DEEPaaS 2.6.0 (webargs 5.5.3, marshmallow 3) and under modelaas with marshmallow 4.
"""

import base64
import hashlib
import json
import time

from marshmallow import Schema, ValidationError, fields, validate

LABELS = ("cat", "dog", "bird", "fish")
MEDIA_ARGS = ("demo-image", "demo-audio", "demo-video")
CHOICES = ("choice1", "choice2", "choice3")
ACCEPT = ("application/json", "image/png")

_warmed = {}


def get_metadata():
    return {
        "description": "A demonstration model: echoes its arguments and returns the uploaded media as base64.",
        "author": "modelaas developers",
        "license": "Apache-2.0",
        "version": "0.1.0",
        "summary": "DEEPaaS v2 demo application",
    }


def warm():
    """Prepare the (fake) label weights once per serving process."""
    _warmed["weights"] = {label: (i + 1) / len(LABELS) for i, label in enumerate(LABELS)}


def _json_object(text):
    """Validator of ``demo-dict``: the text must be a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError("Not a valid JSON object.") from None
    if not isinstance(value, dict):
        raise ValidationError("Not a valid JSON object.")


def _file_arg(description):
    return fields.Field(
        required=True,
        metadata={"type": "file", "location": "form", "description": description},
    )


def get_predict_args():
    return {
        "demo-str": fields.Str(load_default="some-string", metadata={"description": "A string."}),
        "demo-str-choice": fields.Str(
            load_default="choice2",
            validate=validate.OneOf(list(CHOICES)),
            metadata={"enum": list(CHOICES), "description": "One of a few strings."},
        ),
        "demo-int": fields.Int(required=True, metadata={"description": "A required integer."}),
        "demo-int-range": fields.Int(
            load_default=50,
            validate=validate.Range(min=1, max=100),
            metadata={"description": "An integer between 1 and 100."},
        ),
        "demo-float": fields.Float(load_default=0.1, metadata={"description": "A number."}),
        "demo-bool": fields.Bool(load_default=True, metadata={"description": "A boolean."}),
        "demo-dict": fields.Str(
            load_default='{"a": 0}',
            validate=_json_object,
            metadata={"description": "A JSON object, as text."},
        ),
        "demo-list-of-floats": fields.List(
            fields.Float(),
            load_default=[0.1, 0.2, 0.3],
            metadata={"description": "A list of numbers."},
        ),
        "demo-image": _file_arg("An image file."),
        "demo-audio": _file_arg("An audio file."),
        "demo-video": _file_arg("A video file."),
        "accept": fields.Str(
            load_default=ACCEPT[0],
            validate=validate.OneOf(list(ACCEPT)),  # a fresh list: DEEPaaS appends "*/*" to it
            metadata={
                "location": "headers",
                "description": "Answer as JSON, or with the uploaded image itself (image/png).",
            },
        ),
    }


def _media(upload):
    """Describe one uploaded file (DEEPaaS ``UploadedFile`` or anything alike)."""
    with open(upload.filename, "rb") as fh:
        data = fh.read()
    return {
        "field": upload.name,
        "original_filename": upload.original_filename,
        "content_type": upload.content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "base64": base64.b64encode(data).decode("ascii"),
    }


def _probabilities(media):
    weights = _warmed.get("weights")
    if weights is None:
        warm()
        weights = _warmed["weights"]
    digest = hashlib.sha256("".join(m["sha256"] for m in media).encode("ascii")).digest()
    raw = {label: (digest[i] + 1) * weights[label] for i, label in enumerate(LABELS)}
    total = sum(raw.values())
    scored = sorted(raw.items(), key=lambda item: -item[1])
    return [label for label, _ in scored], [round(score / total, 6) for _, score in scored]


def predict(**kwargs):
    """Echo the arguments; return the three media as base64 (or the image itself as PNG)."""
    accept = kwargs.get("accept", ACCEPT[0])
    if accept == "image/png":
        return open(kwargs["demo-image"].filename, "rb")  # the server sends and closes it
    media = [_media(kwargs[name]) for name in MEDIA_ARGS]
    labels, probabilities = _probabilities(media)
    return {
        "args": {
            "demo-str": kwargs["demo-str"],
            "demo-str-choice": kwargs["demo-str-choice"],
            "demo-int": kwargs["demo-int"],
            "demo-int-range": kwargs["demo-int-range"],
            "demo-float": kwargs["demo-float"],
            "demo-bool": kwargs["demo-bool"],
            "demo-dict": json.loads(kwargs["demo-dict"]),
            "demo-list-of-floats": list(kwargs["demo-list-of-floats"]),
        },
        "media": media,
        "labels": labels,
        "probabilities": probabilities,
    }


class MediaSchema(Schema):
    field = fields.Str(required=True)
    original_filename = fields.Str(required=True, allow_none=True)
    content_type = fields.Str(required=True, allow_none=True)
    size = fields.Int(required=True)
    sha256 = fields.Str(required=True)
    base64 = fields.Str(required=True)


ArgsSchema = Schema.from_dict(
    {
        "demo-str": fields.Str(required=True),
        "demo-str-choice": fields.Str(required=True, validate=validate.OneOf(list(CHOICES))),
        "demo-int": fields.Int(required=True),
        "demo-int-range": fields.Int(required=True, validate=validate.Range(min=1, max=100)),
        "demo-float": fields.Float(required=True),
        "demo-bool": fields.Bool(required=True),
        "demo-dict": fields.Dict(required=True),
        "demo-list-of-floats": fields.List(fields.Float(), required=True),
    },
    name="DemoArgs",
)

schema = {
    "args": fields.Nested(ArgsSchema, required=True),
    "media": fields.List(fields.Nested(MediaSchema), required=True),
    "labels": fields.List(fields.Str(validate=validate.OneOf(LABELS)), required=True),
    "probabilities": fields.List(fields.Float(validate=validate.Range(min=0, max=1)), required=True),
}
"""The shape of predict's JSON answer; servers validate the output against it."""


def get_train_args():
    return {
        "epoch_num": fields.Int(
            load_default=3,
            validate=validate.Range(min=1, max=100),
            metadata={"description": "Epochs to train; each takes one second."},
        ),
    }


def train(**kwargs):
    """A pretend training: one second per epoch, a loss that halves each epoch."""
    epochs = kwargs.get("epoch_num", 3)
    loss = 1.0
    history = []
    for epoch in range(1, epochs + 1):
        time.sleep(1)
        loss /= 2
        history.append({"epoch": epoch, "loss": loss})
    return {"epochs": epochs, "final_loss": loss, "history": history}
