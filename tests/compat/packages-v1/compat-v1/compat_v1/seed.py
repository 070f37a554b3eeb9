"""A v1 model written from the seed document's text: ``predict_file(path, **kwargs)`` and
``predict_url(url, *args)``, one call per file or URL, test arguments after the item.

It has no ``predict_data``: the seed's REST API hands an upload over as a file on disk.
"""

import hashlib
from urllib.parse import urlparse


def get_metadata():
    return {"name": "compat-v1-seed", "version": "0.1.0", "description": "A v1 model in the seed's form."}


def get_test_args():
    return {"scale": {"default": "1", "help": "Multiplies the size reported.", "required": False}}


def get_train_args():
    return {"steps": {"default": "5", "help": "Training steps.", "required": False}}


def predict_file(path, **kwargs):
    with open(path, "rb") as fh:
        content = fh.read()
    return {
        "bytes": len(content) * int(kwargs.get("scale", "1")),
        "sha256": hashlib.sha256(content).hexdigest(),
        "options": sorted(kwargs),
    }


def predict_url(url, *args):
    parsed = urlparse(url)
    return {"host": parsed.hostname, "path": parsed.path, "extra": list(args)}


def train(user_conf):
    return {"steps": int(user_conf["steps"])}
