"""A v2 model with a file argument that reads only the file's size."""

import os

from marshmallow import fields


def get_predict_args():
    return {"data": fields.Field(required=True, metadata={"type": "file", "location": "form"})}


def predict(**kwargs):
    return {"size": os.path.getsize(kwargs["data"].filename)}
