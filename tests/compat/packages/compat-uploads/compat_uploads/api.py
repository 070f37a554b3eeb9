"""A model that trusts only ``deepaas.model.v2.wrapper.UploadedFile``.

Some real image models check ``isinstance(arg, UploadedFile)`` before they open
``arg.filename`` and refuse anything else. Predict and train take one required file
and an optional list of files; each answers what it received, file by file: the
class, the four attributes (but the temporary path) and the size and SHA-256 of the
bytes read from ``arg.filename``.
"""

import hashlib

from deepaas.model.v2.wrapper import UploadedFile
from marshmallow import fields


def get_metadata():
    return {"description": "Reports its uploads; refuses any that is not an UploadedFile.", "version": "0.1.0"}


def _args(single, many):
    upload = {"type": "file", "location": "form"}
    return {
        single: fields.Field(required=True, metadata={**upload, "description": "One file."}),
        many: fields.List(fields.Field(metadata=upload), metadata={"description": "Several files (repeat the part)."}),
    }


def get_predict_args():
    return _args("image", "batch")


def get_train_args():
    return _args("dataset", "extra")


def _report(argument, upload):
    if not isinstance(upload, UploadedFile):
        kind = type(upload)
        raise TypeError(f"{argument}: got a {kind.__module__}.{kind.__qualname__}, not an UploadedFile")
    digest = hashlib.sha256()
    size = 0
    with open(upload.filename, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
            size += len(block)
    return {
        "class": "UploadedFile",
        "name": upload.name,
        "original_filename": upload.original_filename,
        "content_type": upload.content_type,
        "size": size,
        "sha256": digest.hexdigest(),
    }


def _answer(single, many):
    """``single`` and ``many`` are (argument name, value) pairs."""
    (one_name, one), (many_name, several) = single, many
    return {
        one_name: _report(one_name, one),
        many_name: [_report(f"{many_name}[{i}]", u) for i, u in enumerate(several or [])],
    }


def predict(image, batch=None, **options):
    return _answer(("image", image), ("batch", batch))


def train(dataset, extra=None, **options):
    return _answer(("dataset", dataset), ("extra", extra))
