"""A trivial v2 model: an int argument, a small JSON answer; a CPU-bound training."""

import time

from marshmallow import fields


def get_metadata():
    return {"name": "trivial", "description": "benchmark model"}


def get_predict_args():
    return {"x": fields.Int(load_default=1)}


def predict(**kwargs):
    return {"y": kwargs["x"] * 2}


def get_train_args():
    return {"seconds": fields.Float(load_default=5.0)}


def train(**kwargs):
    deadline = time.monotonic() + kwargs["seconds"]
    n = 0
    while time.monotonic() < deadline:  # burns one core, as trainings do
        n += sum(i * i for i in range(1000))
    return {"n": n}
